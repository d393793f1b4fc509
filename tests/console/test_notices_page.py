"""Notices from the console, over real HTTP: the same audiences as ``pufa notify`` (the units
of one rota, the staff of one township, the coordinator), one message per bound chat queued in
the outbox, idempotent when the form is sent twice, refused with a reason when it cannot go,
and listed (escaped) with the audit entry."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from storage.models_outbox import OutboxMessage
from tests.console.conftest import (
    add_townships,
    audit_actions,
    bind,
    csrf_of,
    flash_of,
    logged_in,
    make_account,
)

HOSTILE = "<b>明天</b>下午3点开会 & 请准时"


async def _queued(sessions: Any) -> list[tuple[str, str]]:
    async with sessions() as session:
        rows = await session.execute(
            select(OutboxMessage.recipient, OutboxMessage.body).order_by(OutboxMessage.id)
        )
        return [(recipient, body["text"]) for recipient, body in rows.all()]


def _key(html: str) -> str:
    return html.split('name="key" value="', 1)[1].split('"', 1)[0]


async def test_notices_reach_the_chosen_audience_once(
    client: TestClient[Any, Any], sessions: Any
) -> None:
    await add_townships(sessions, ZBP="镇北堡镇", XJZ="兴泾镇")
    await bind(sessions, "21", "unit", unit="sfj")  # in both rotas
    await bind(sessions, "26", "unit", unit="gongan")  # 区委常委会 only
    await bind(sessions, "27", "unit", unit="wangxin")  # 政府常务会 only
    await bind(sessions, "41", "staff", township="ZBP")
    await bind(sessions, "42", "staff", township="XJZ")
    await make_account(sessions, "coord", role="coordinator")
    await logged_in(client, "coord")
    page = await (await client.get("/admin/notices")).text()
    token, key = csrf_of(page), _key(page)

    sent = await client.post(
        "/admin/notices",
        data={
            "csrf_token": token,
            "key": key,
            "audience": "units",
            "committee": "standing",
            "text": HOSTILE,
        },
    )
    assert "已排队发送给2个聊天" in flash_of(await sent.text())
    assert sorted(r for r, _ in await _queued(sessions)) == ["21", "26"]
    assert all(text == f"【通知】{HOSTILE}" for _, text in await _queued(sessions))
    # The same form sent again (a double click) queues nothing new.
    twice = await client.post(
        "/admin/notices",
        data={
            "csrf_token": token,
            "key": key,
            "audience": "units",
            "committee": "standing",
            "text": HOSTILE,
        },
    )
    assert "没有重复发送" in flash_of(await twice.text())
    assert len(await _queued(sessions)) == 2

    fresh = _key(await twice.text())
    assert fresh != key
    staff = await client.post(
        "/admin/notices",
        data={
            "csrf_token": token,
            "key": fresh,
            "audience": "staff",
            "township": "XJZ",
            "text": "请周五前报送名单",
        },
    )
    assert "1个聊天" in flash_of(await staff.text())
    assert (await _queued(sessions))[-1] == ("42", "【通知】请周五前报送名单")

    # What cannot go is refused with the reason, the text kept in the form.
    for data, reason in (
        ({"audience": "staff", "committee": "standing", "text": "x"}, "只有通知讲课责任单位时"),
        ({"audience": "units", "township": "ZBP", "text": "x"}, "只有通知镇街工作人员时"),
        ({"audience": "staff", "township": "NOPE", "text": "x"}, "没有代码为NOPE的镇街"),
        ({"audience": "everyone", "text": "x"}, "请选择通知对象"),
        ({"audience": "units", "text": "   "}, "请填写通知内容"),
        ({"audience": "units", "text": "长" * 4001}, "通知最多4000个字"),
        ({"audience": "coordinator", "text": "没人收"}, "尚未绑定任何聊天账号"),
    ):
        refused = await client.post("/admin/notices", data={"csrf_token": token, **data})
        html = await refused.text()
        assert refused.status == 422, data
        assert reason in html.split('class="error"', 1)[1].split("</p>", 1)[0], data
    assert "没人收</textarea>" in html
    assert len(await _queued(sessions)) == 3

    # Sent notices are listed, as text, and audited with their audience.
    listed = await (await client.get("/admin/notices")).text()
    recent = listed.split('id="recent-notices"', 1)[1]
    assert "&lt;b&gt;明天&lt;/b&gt;下午3点开会 &amp; 请准时" in recent and "<b>明天" not in listed
    assert "区委常委会" in recent and "兴泾镇" in recent
    entries = await audit_actions(sessions, "notice.send")
    assert [
        (e.actor, e.detail["after"]["audience"], e.detail["after"]["queued"]) for e in entries
    ] == [
        ("console:coord", "units", 2),
        ("console:coord", "staff", 1),
    ]
