"""Delivering outbox rows with the WeCom senders against the fake WeCom API: pushes to members
and group robots, the access token, rate limits and final failures."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import col

from bot.channels.wecom import ROBOT_CHANNEL, ROBOT_SEAL_PURPOSE
from bot.dialogs import DIALOGS
from bot.outbox.queue import Outgoing, Recipient, enqueue, push_button, recipients, set_push_target
from bot.outbox.sender import PermanentSendError, TransientSendError
from core import payloads
from core.crypto import Sealer
from core.dialog import Step
from core.messages import Link, Reply
from storage.db import transaction
from storage.models import ChatIdentity, Unit
from storage.models_outbox import OutboxMessage
from storage.types import utcnow
from tests.helpers import TEST_SECRET
from tests.wecom.harness import WeCom

SECRET = TEST_SECRET.encode()


async def _robot(wecom: WeCom, unit_code: str, url: str) -> int:
    """What ``pufa rota robot UNIT URL`` stores: a push target with the sealed URL."""
    async with transaction(wecom.sessions) as session:
        unit = (await session.execute(select(Unit).where(col(Unit.code) == unit_code))).scalar_one()
        await set_push_target(
            session,
            channel=ROBOT_CHANNEL,
            address=f"robot:{unit.code}",
            role="unit",
            unit_id=unit.id,
            label=unit.name,
            secret=Sealer(SECRET, ROBOT_SEAL_PURPOSE).seal(url),
        )
        assert unit.id is not None
        return unit.id


async def _queue(wecom: WeCom, *messages: Outgoing) -> None:
    async with transaction(wecom.sessions) as session:
        assert await enqueue(session, messages, utcnow()) == len(messages)


async def _statuses(wecom: WeCom) -> list[tuple[str, int]]:
    async with transaction(wecom.sessions) as session:
        rows = await session.execute(
            select(col(OutboxMessage.status), col(OutboxMessage.attempts)).order_by(
                col(OutboxMessage.id)
            )
        )
        return [(status, attempts) for status, attempts in rows.all()]


async def test_reminder_reaches_the_units_group_robot_and_its_wecom_account(wecom: WeCom) -> None:
    url = wecom.fake.add_robot("robot-key-sfj")
    unit_id = await _robot(wecom, "sfj", url)
    async with transaction(wecom.sessions) as session:  # a WeCom account bound to the unit
        session.add(
            ChatIdentity(channel="wecom", external_id="sfj-li", role="unit", unit_id=unit_id)
        )

    async def confirm(step: Step, arg: str) -> None:
        step.say(f"confirmed {arg} by {step.inbound.external_id}")

    wecom.client.app[DIALOGS].add_action("z", confirm)
    async with transaction(wecom.sessions) as session:
        targets = await recipients(session, "unit", unit_id=unit_id)
    assert {(r.channel, r.address) for r in targets} == {
        ("wecom", "sfj-li"),
        ("wecom_robot", "robot:sfj"),
    }
    await _queue(
        wecom,
        *[
            Outgoing(
                f"reminder:m1:{r.channel}:{r.address}",
                r,
                Reply(
                    "提醒：司法局12月3日（星期四）在区委常委会会前讲授普法微课堂。",
                    ((push_button(SECRET, r, "确认", "z", "m1"),),),
                    (Link("日程", "https://pufa.example.cn/rota/unit/abc.ics"),),
                ),
                kind="reminder",
            )
            for r in targets
        ],
    )
    assert await wecom.deliver() == []

    [posted] = wecom.fake.robot_messages["robot-key-sfj"]
    assert posted["msgtype"] == "markdown"
    content = posted["markdown"]["content"]
    assert content.startswith("提醒：司法局12月3日")
    assert "[日程](https://pufa.example.cn/rota/unit/abc.ics)" in content
    assert "确认" not in content  # a robot cannot take a button press

    [card] = wecom.fake.messages_to("sfj-li")
    button = card["template_card"]["button_list"][0]
    assert button["text"] == "确认"
    pressed = payloads.verify(SECRET, payloads.push_owner("wecom", "sfj-li"), button["key"])
    assert (pressed.action, pressed.arg) == ("z", "m1")
    assert card["template_card"]["jump_list"][0]["url"].endswith("abc.ics")
    # the press comes back through the callback and reaches the global action
    await wecom.press("sfj-li", card, 0)
    assert await wecom.deliver() == []
    assert wecom.fake.texts_to("sfj-li")[-1] == "confirmed m1 by sfj-li"
    assert [s for s, _ in await _statuses(wecom)] == ["sent"] * 3


async def test_expired_token_is_refreshed_once_and_the_send_retried(wecom: WeCom) -> None:
    await wecom.chat("u1", "help")
    assert wecom.fake.token_requests == 1
    wecom.fake.expire_tokens()
    sent = await wecom.chat("u1", "help")  # chat() asserts delivery raised nothing
    assert len(sent) == 1
    assert wecom.fake.token_requests == 2
    codes = [c.answer["errcode"] for c in wecom.fake.calls_to("message/send")]
    assert codes == [0, 42001, 0]

    wecom.fake.revoke_tokens()  # an invalid token (40014) is handled the same way
    assert len(await wecom.chat("u1", "help")) == 1
    assert wecom.fake.token_requests == 3


async def test_token_refused_after_the_refresh_is_retried_later_not_looped(wecom: WeCom) -> None:
    await wecom.chat("u2", "help")
    wecom.fake.fail_next("message/send", 42001, times=2)
    await wecom.say("u2", "help")
    errors = await wecom.deliver()
    assert len(errors) == 1 and isinstance(errors[0], TransientSendError)
    assert wecom.fake.token_requests == 2  # one refresh, not a loop
    assert len(wecom.fake.calls_to("message/send")) == 3
    assert await wecom.deliver() == []
    assert len(wecom.fake.messages_to("u2")) == 2


async def test_rate_limited_send_is_transient_and_delivered_on_the_next_try(wecom: WeCom) -> None:
    wecom.fake.fail_next("message/send", 45009, "api freq out of limit")
    await wecom.say("u3", "help")
    errors = await wecom.deliver()
    assert len(errors) == 1
    assert isinstance(errors[0], TransientSendError) and errors[0].retry_after == 60
    assert await _statuses(wecom) == [("pending", 1)]
    assert wecom.fake.messages_to("u3") == []
    assert await wecom.deliver() == []
    assert await _statuses(wecom) == [("sent", 2)]
    assert len(wecom.fake.messages_to("u3")) == 1


async def test_group_robot_gets_at_most_20_a_minute(wecom: WeCom) -> None:
    url = wecom.fake.add_robot("busy")
    await _robot(wecom, "fayuan", url)
    robot = Recipient(ROBOT_CHANNEL, "robot:fayuan", "zh_CN")
    await _queue(wecom, *[Outgoing(f"n{i}", robot, Reply(f"通知 {i}")) for i in range(21)])
    errors = await wecom.deliver()
    assert len(errors) == 1 and isinstance(errors[0], TransientSendError)
    assert errors[0].retry_after is not None and 0 < errors[0].retry_after <= 60
    assert len(wecom.fake.calls_to("webhook/send")) == 20  # the 21st was never posted
    assert [m["markdown"]["content"] for m in wecom.fake.robot_messages["busy"]] == [
        f"通知 {i}" for i in range(20)
    ]
    assert (await _statuses(wecom))[-1] == ("pending", 1)
    # WeCom's own limit (another process posting too) is a transient error as well
    wecom.fake.fail_next("webhook/send", 45009)
    other = wecom.fake.add_robot("other")
    await _robot(wecom, "jiwei", other)
    await _queue(
        wecom, Outgoing("x", Recipient(ROBOT_CHANNEL, "robot:jiwei", "zh_CN"), Reply("hi"))
    )
    errors = await wecom.deliver()
    assert any(isinstance(e, TransientSendError) and e.retry_after == 60 for e in errors)


async def test_final_failures_fail_at_once(wecom: WeCom) -> None:
    wecom.fake.members = {"known"}
    gone = f"{wecom.fake.api_base}/cgi-bin/webhook/send?key=removed"
    await _robot(wecom, "sfj", gone)
    await _robot(wecom, "fayuan", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k")
    async with transaction(wecom.sessions) as session:  # sealed under another secret key
        await set_push_target(
            session,
            channel=ROBOT_CHANNEL,
            address="robot:fayuan",
            role="unit",
            secret=Sealer(b"another secret key", ROBOT_SEAL_PURPOSE).seal(gone),
        )
    await _queue(
        wecom,
        Outgoing("a", Recipient("wecom", "ghost", "zh_CN"), Reply("hello")),
        Outgoing("b", Recipient(ROBOT_CHANNEL, "robot:sfj", "zh_CN"), Reply("hello")),
        Outgoing("c", Recipient(ROBOT_CHANNEL, "robot:fayuan", "zh_CN"), Reply("hello")),
        Outgoing("d", Recipient(ROBOT_CHANNEL, "robot:nobody", "zh_CN"), Reply("hello")),
        Outgoing("e", Recipient("wecom", "known", "zh_CN"), Reply("hello")),
    )
    errors = await wecom.deliver()
    assert len(errors) == 4 and all(isinstance(e, PermanentSendError) for e in errors)
    assert [s for s, _ in await _statuses(wecom)] == ["failed"] * 4 + ["sent"]
    assert "ghost" in str(errors[0]) and "93000" in str(errors[1])


async def test_card_refused_by_wecom_is_sent_as_numbered_text(wecom: WeCom) -> None:
    await wecom.chat("u4", "help")
    wecom.fake.fail_next("message/send", 40058, "template_card not allowed")
    sent = await wecom.chat("u4", "lang")
    [text] = sent
    assert text["msgtype"] == "text"
    assert text["text"]["content"].endswith("1. 中文\n2. English")
    sent = await wecom.chat("u4", "English")  # and answered by the option's words
    assert sent[0]["text"]["content"] == "I will write to you in English from now on."


async def test_long_text_is_split_under_wecom_limit(wecom: WeCom) -> None:
    text = "\n".join(f"第{i}条：" + "普法" * 40 for i in range(40))  # about 10 KB
    await _queue(wecom, Outgoing("long", Recipient("wecom", "reader", "zh_CN"), Reply(text)))
    assert await wecom.deliver() == []
    parts = [m["text"]["content"] for m in wecom.fake.messages_to("reader")]
    assert len(parts) > 1
    assert all(len(p.encode()) <= 2048 for p in parts)
    assert "\n".join(parts) == text


async def test_a_long_text_cut_short_by_a_failure_goes_on_where_it_stopped(wecom: WeCom) -> None:
    text = "\n".join(f"第{i}条：" + "普法" * 40 for i in range(40))  # about 10 KB, 5 pieces
    await _queue(wecom, Outgoing("long", Recipient("wecom", "reader", "zh_CN"), Reply(text)))
    wecom.fake.fail_next("message/send", -1, "system busy", after=2)  # the third piece
    [error] = await wecom.deliver()
    assert isinstance(error, TransientSendError) and error.parts_sent == 2
    assert await wecom.deliver() == []
    parts = [m["text"]["content"] for m in wecom.fake.messages_to("reader")]
    assert len(parts) == 5 and "\n".join(parts) == text  # every piece once, in order
    assert await _statuses(wecom) == [("sent", 2)]


async def test_refused_credentials_are_retried_later_and_shown_in_health(wecom: WeCom) -> None:
    await wecom.chat("u5", "help")
    wecom.fake.secret = "rotated-in-the-admin-console"
    wecom.fake.revoke_tokens()
    await wecom.say("u5", "lang")  # a reply that is a template card
    sends_before = len(wecom.fake.calls_to("message/send"))
    tokens_before = wecom.fake.token_requests
    errors = await wecom.deliver()
    assert len(errors) == 1
    assert isinstance(errors[0], TransientSendError) and "40001" in str(errors[0])
    # one card attempt (40014), then the token fetch failed: no text fallback was tried
    assert len(wecom.fake.calls_to("message/send")) == sends_before + 1
    assert wecom.fake.token_requests == tokens_before + 1
    health = await (await wecom.client.get("/healthz")).json()
    assert health["status"] == "ok" and health["channels"]["wecom"]["state"] == "rejected"
    assert health["channels"]["wecom"]["detail"] == "error 40001"
