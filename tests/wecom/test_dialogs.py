"""End to end: WeCom callbacks encrypted by wechatpy, pufa's aiohttp app over real HTTP, the
outbox, the WeCom senders and the fake WeCom API — surveys and binding as on Telegram."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import col

from bot.binding.invites import create_invite
from storage.db import transaction
from storage.models import ChatIdentity
from storage.models_outbox import OutboxMessage
from storage.models_surveys import SurveyAnswer, SurveyResponse
from storage.types import utcnow
from surveys.dialog import respondent_for
from tests.helpers import TEST_SECRET
from tests.wecom.harness import WeCom


def _card(message: dict[str, Any]) -> dict[str, Any]:
    assert message["msgtype"] == "template_card", message
    return message


def _text(message: dict[str, Any]) -> str:
    assert message["msgtype"] == "text", message
    return str(message["text"]["content"])


def _card_text(message: dict[str, Any]) -> str:
    card = _card(message)["template_card"]
    return str(card.get("main_title", {}).get("title") or card["sub_title_text"])


def _labels(message: dict[str, Any]) -> list[str]:
    return [b["text"] for b in message["template_card"]["button_list"]]


async def test_survey_answered_in_wecom_is_stored(wecom: WeCom) -> None:
    user = "ZhangSan"
    sent = await wecom.chat(user, "survey")  # a command word without the slash
    # WeCom cannot edit: the opening's lead (title, intro) is a text of its own, then the card
    assert len(sent) == 2 and "满意度调查" in _text(sent[0])
    q1 = _card(sent[-1])
    assert _card_text(q1).startswith("(1/10)")
    assert _labels(q1) == ["非常满意", "满意", "基本满意", "不满意", "非常不满意", "不了解"]
    assert all(len(b["key"].encode()) <= 64 for b in q1["template_card"]["button_list"])

    # 1: a card button; WeCom gets an encrypted passive reply greying the card out
    answer = await wecom.press(user, q1, 1)
    assert answer.status == 200
    envelope, passive = wecom.callbacks.decrypt_reply(answer.body)
    assert envelope["Nonce"] == answer.params["nonce"]
    assert passive["MsgType"] == "update_button"
    assert passive["ToUserName"] == user
    assert passive["Button"]["ReplaceName"] == "已收到"
    await wecom.deliver()
    after_press = wecom.fake.messages_to(user)[-2:]
    assert _text(after_press[0]).endswith("✓ 满意")  # the edited question, as text
    assert _text(after_press[0]).startswith("(1/10)")  # without the intro again
    assert _card_text(after_press[1]).startswith("(2/10)")

    # 2..5: the option's number, its words, a full-width number, words again
    for typed, asked in [
        ("2", "(3/10)"),
        ("非常满意", "(4/10)"),
        ("１", "(5/10)"),
        ("不了解", "(6/10)"),
    ]:
        sent = await wecom.chat(user, typed)
        assert _card_text(sent[-1]).startswith(asked), typed
    # 6..8: card buttons
    for n in range(3):
        card = _card(wecom.fake.messages_to(user)[-1])
        answer = await wecom.press(user, card, 2)
        assert answer.status == 200
        assert await wecom.deliver() == []
        assert f"({7 + n}/10)" in str(wecom.fake.messages_to(user)[-1])

    # 9: a multiple-choice question with long labels comes as numbered text
    multiple = _text(wecom.fake.messages_to(user)[-1])
    assert multiple.startswith("(9/10)")
    assert "\n1. 政务服务大厅或镇街便民服务中心" in multiple and "\n7. 完成" in multiple
    await wecom.chat(user, "1")
    ticked = _text(wecom.fake.messages_to(user)[-1])
    assert "1. ✅ 政务服务大厅或镇街便民服务中心" in ticked
    await wecom.chat(user, "12345政务服务便民热线")  # an option's words
    sent = await wecom.chat(user, "完成")
    assert "✓ 政务服务大厅或镇街便民服务中心、12345政务服务便民热线" in _text(sent[0])
    last = _card(sent[-1])
    assert _card_text(last).startswith("(10/10)")
    assert _labels(last) == ["跳过"]

    # 10: free text that looks like the number of the Skip button shown with the question
    sent = await wecom.chat(user, "1")
    assert "感谢" in _text(sent[-1])

    async with transaction(wecom.sessions) as session:
        mine = respondent_for(TEST_SECRET.encode(), "wecom", user)
        response = (
            await session.execute(select(SurveyResponse).where(SurveyResponse.respondent == mine))
        ).scalar_one()
        rows = (
            await session.execute(
                select(SurveyAnswer).where(SurveyAnswer.response_id == response.id)
            )
        ).scalars()
        answers: dict[str, list[str]] = {}
        for row in rows:
            answers.setdefault(row.question, []).append(row.value or row.text or "")
    assert (response.survey, response.channel) == ("fazhi-2026", "wecom")
    assert user not in response.respondent
    assert answers == {
        "business_env": ["satisfied"],
        "public_service": ["satisfied"],
        "major_decisions": ["very_satisfied"],
        "law_enforcement": ["very_satisfied"],
        "oversight": ["unknown"],
        "info_disclosure": ["fairly_satisfied"],
        "dispute_resolution": ["fairly_satisfied"],
        "rule_of_law_overall": ["fairly_satisfied"],
        "channels": ["service_hall", "hotline"],
        "comment": ["1"],
    }
    # every reply went through the outbox and was sent
    async with transaction(wecom.sessions) as session:
        statuses = set((await session.execute(select(col(OutboxMessage.status)))).scalars().all())
    assert statuses == {"sent"}


async def test_words_of_options_no_longer_shown_are_ordinary_text(wecom: WeCom) -> None:
    user = "lisi"
    await wecom.chat(user, "/survey")
    sent = await wecom.chat(user, "cancel")
    assert _text(sent[-1]).startswith("已结束")
    sent = await wecom.chat(user, "满意")  # the options of the cancelled question are gone
    # answered as any text outside a conversation, not as a press of an old button
    assert _text(sent[-1]) == "发送 /survey 参加问卷调查，发送 /help 查看全部功能。"


async def test_bind_code_in_wecom_gives_the_role(wecom: WeCom) -> None:
    async with transaction(wecom.sessions) as session:
        created = await create_invite(
            session, TEST_SECRET.encode(), "staff", now=utcnow(), township="zbp"
        )
    sent = await wecom.chat("wangwu", f"bind {created.code.lower()}")
    assert "镇北堡" in _text(sent[-1])
    sent = await wecom.chat("zhaoliu", f"bind {created.code}")
    assert "已被使用" in _text(sent[-1])
    async with transaction(wecom.sessions) as session:
        roles = dict(
            (
                await session.execute(
                    select(col(ChatIdentity.external_id), col(ChatIdentity.role)).where(
                        col(ChatIdentity.channel) == "wecom"
                    )
                )
            ).all()
        )
    assert roles == {"wangwu": "staff", "zhaoliu": "resident"}


async def test_menu_click_runs_the_command_and_other_events_are_ignored(wecom: WeCom) -> None:
    user = "menuuser"
    answer = await wecom.post(wecom.callbacks.event(user, "click", EventKey="help"))
    assert answer.status == 200 and answer.body == ""
    answer = await wecom.post(wecom.callbacks.event(user, "enter_agent", EventKey=""))
    assert answer.status == 200 and answer.body == ""
    assert await wecom.deliver() == []
    texts = wecom.fake.texts_to(user)
    assert len(texts) == 1 and "/survey" in texts[0]


async def test_steps_of_one_member_run_in_arrival_order(wecom: WeCom) -> None:
    user = "fast"
    await wecom.chat(user, "survey")
    posts = [wecom.callbacks.encrypt(wecom.callbacks.text(user, n)) for n in ("1", "2", "3")]
    for params, body in posts:  # three answers in quick succession, not waiting in between
        assert (await wecom.post_raw(params, body)).status == 200
    assert await wecom.channel.idle(30)
    assert await wecom.deliver() == []
    texts = [t for t in wecom.fake.texts_to(user) if "✓" in t]
    assert [t.rsplit("✓ ", 1)[1] for t in texts] == ["非常满意", "满意", "基本满意"]
