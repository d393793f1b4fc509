"""The rota pages over real HTTP against a real database: the calendar with the unit on duty and
its status, scheduling, moving, cancelling and marking meetings, swap requests approved,
rejected and found out of date, a swap recorded for a unit, the appraisal report and its
workbook; every change made through the rota's own functions, in the audit log, with the
units told through the outbox; what units typed shown as text."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from typing import Any

import openpyxl
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.rota.config import load_offsets
from bot.rota.service import Env, request_swap, set_topic
from bot.rota.store import load
from core.clock import utcnow
from storage.db import transaction
from storage.models_outbox import OutboxMessage
from storage.models_rota import RotaMeeting, RotaSwap
from tests.console.conftest import (
    audit_actions,
    bind,
    csrf_of,
    flash_of,
    form_time,
    local_day,
    logged_in,
    make_account,
    on_duty,
    schedule,
)

HOSTILE = '<script>alert(1)</script><img src=x onerror="x()"> & “引号”'
ESCAPED = (
    "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=&#34;x()&#34;&gt; &amp; “引号”"
)


async def _unit_id(sessions: Any, code: str) -> int:
    async with sessions() as session:
        snapshot = await load(session)
    return next(i for i, u in snapshot.units.items() if u.code == code)


async def _env_do(sessions: Any, settings: Any, work: Any, actor: str = "telegram:21") -> Any:
    async with transaction(sessions) as session:
        return await work(Env.of(session, settings, load_offsets(), utcnow(), actor))


async def _outbox(sessions: Any) -> list[OutboxMessage]:
    async with sessions() as session:
        rows = await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))
        return list(rows.scalars())


def _item(html: str, meeting_id: int) -> str:
    return html.split(f'id="meeting-{meeting_id}"', 1)[1].split("</li>", 1)[0]


async def test_calendar_changes_go_through_the_rota_and_into_the_audit_log(
    client: TestClient[Any, Any], sessions: Any, settings: Any
) -> None:
    standing = await schedule(
        sessions, settings, "standing", local_day(3), local_day(10), local_day(17)
    )
    (executive,) = await schedule(sessions, settings, "executive", local_day(5, "09:00"))
    # a meeting held yesterday, scheduled when it was still ahead
    (held,) = await schedule(
        sessions, settings, "executive", local_day(-1, "09:00"), now=utcnow() - timedelta(days=3)
    )
    await bind(sessions, "21", "unit", unit="sfj")
    await bind(sessions, "29", "coordinator")
    sfj = await _unit_id(sessions, "sfj")
    await _env_do(
        sessions,
        settings,
        lambda env: set_topic(env, standing[0], sfj, HOSTILE, "第一点\n<b>第二点</b>"),
    )
    await make_account(sessions, "coord", role="coordinator")
    await logged_in(client, "coord")

    page = await (await client.get("/admin/rota")).text()
    duty = page.split('id="duty-standing"', 1)[1].split("</div>", 1)[0]
    assert "司法局" in duty and "第1期" in duty and "未确认" in duty
    assert ESCAPED in duty and "<script>alert" not in page  # the topic a unit typed is text
    assert "政办</strong> · 第2期" in page.split('id="duty-executive"', 1)[1].split("</div>", 1)[0]
    held_item = _item(page, held)
    assert "尚未登记" in held_item and 'value="delivered"' in held_item
    assert 'value="delivered"' not in _item(page, standing[0])  # not held yet: no marking
    token = csrf_of(page)
    english = await (await client.get("/admin/rota?lang=en")).text()
    assert "Coming meetings" in english and "Justice Bureau" in english
    assert "District Party Standing Committee" in english
    meeting = await (await client.get(f"/admin/rota/meetings/{standing[0]}")).text()
    assert "第一点\n&lt;b&gt;第二点&lt;/b&gt;" in meeting
    assert (await client.get("/admin/rota/meetings/99999")).status == 404

    # Schedule a meeting; one in the past and a clash are refused with the rota's reasons.
    new_time = local_day(24, "15:00")
    added = await client.post(
        "/admin/rota/meetings",
        data={"csrf_token": token, "committee": "standing", "when": form_time(new_time)},
    )
    assert "已安排" in flash_of(await added.text())
    again = await client.post(
        "/admin/rota/meetings",
        data={"csrf_token": token, "committee": "standing", "when": form_time(new_time)},
    )
    assert "区委常委会" in flash_of(await again.text()) and "已有会议" in flash_of(
        await again.text()
    )
    past = await client.post(
        "/admin/rota/meetings",
        data={"csrf_token": token, "committee": "standing", "when": form_time(local_day(-2))},
    )
    assert "已经过去" in flash_of(await past.text())
    garbled = await client.post(
        "/admin/rota/meetings", data={"csrf_token": token, "committee": "standing", "when": "x"}
    )
    assert "请填写日期和时间" in flash_of(await garbled.text())
    unknown = await client.post(
        "/admin/rota/meetings",
        data={"csrf_token": token, "committee": "nosuch", "when": form_time(new_time)},
    )
    assert "nosuch" in flash_of(await unknown.text())
    async with sessions() as session:
        rows = (await session.execute(select(RotaMeeting))).scalars().all()
    assert len(rows) == 6

    # Move the first meeting: the unit on duty, told already, hears where it went.
    moved_to = local_day(4, "15:00")
    response = await client.post(
        f"/admin/rota/meetings/{standing[0]}/move",
        data={"csrf_token": token, "when": form_time(moved_to)},
    )
    assert response.url.path == f"/admin/rota/meetings/{standing[0]}"
    assert "已改到" in flash_of(await response.text())
    async with sessions() as session:
        row = await session.get(RotaMeeting, standing[0])
        assert row is not None and row.starts_at == moved_to and row.revision == 2
    told = [m for m in await _outbox(sessions) if m.recipient == "21" and "moved" in m.dedupe_key]
    assert len(told) == 1
    bad_move = await client.post(
        f"/admin/rota/meetings/{standing[0]}/move",
        data={"csrf_token": token, "when": form_time(local_day(-5))},
    )
    assert "已经过去" in flash_of(await bad_move.text())

    # Cancel the second: its unit passes to the next meeting.
    assert await on_duty(sessions, standing[1], standing[2]) == ["dangban", "fayuan"]
    response = await client.post(
        f"/admin/rota/meetings/{standing[1]}/cancel", data={"csrf_token": token}
    )
    assert "已取消" in flash_of(await response.text())
    assert await on_duty(sessions, standing[2]) == ["dangban"]
    again = await client.post(
        f"/admin/rota/meetings/{standing[1]}/cancel", data={"csrf_token": token}
    )
    assert f"会议 #{standing[1]} 已取消" in flash_of(await again.text())

    # Mark the meeting held yesterday; a coming one cannot be marked yet.
    response = await client.post(
        f"/admin/rota/meetings/{held}/mark",
        data={"csrf_token": token, "outcome": "delivered", "next": f"/admin/rota#meeting-{held}"},
    )
    assert response.url.path == "/admin/rota"
    assert "已讲" in _item(await response.text(), held)
    early = await client.post(
        f"/admin/rota/meetings/{executive}/mark",
        data={"csrf_token": token, "outcome": "missed"},
    )
    assert "尚未召开" in flash_of(await early.text())
    # A mark can be corrected; the page it returns to is always one of the console's.
    offsite = await client.post(
        f"/admin/rota/meetings/{held}/mark",
        data={"csrf_token": token, "outcome": "missed", "next": "https://evil.example/"},
        allow_redirects=False,
    )
    assert offsite.status == 303 and offsite.headers["Location"] == "/admin/"
    async with sessions() as session:
        marked = await session.get(RotaMeeting, held)
        assert marked is not None and marked.outcome == "missed"

    actions = [
        (e.actor, e.action, e.subject) for e in await audit_actions(sessions, "rota.meeting")
    ]
    assert [a for a in actions if a[0] == "console:coord"] == [
        ("console:coord", "rota.meeting.add", f"meeting:{max(r.id for r in rows if r.id)}"),
        ("console:coord", "rota.meeting.move", f"meeting:{standing[0]}"),
        ("console:coord", "rota.meeting.cancel", f"meeting:{standing[1]}"),
        ("console:coord", "rota.meeting.mark", f"meeting:{held}"),
        ("console:coord", "rota.meeting.mark", f"meeting:{held}"),
    ]
    move = next(e for e in await audit_actions(sessions, "rota.meeting.move"))
    assert move.detail["before"]["starts_at"] != move.detail["after"]["starts_at"]


async def test_swaps_are_approved_rejected_recorded_and_found_out_of_date(
    client: TestClient[Any, Any], sessions: Any, settings: Any
) -> None:
    ids = await schedule(
        sessions, settings, "standing", local_day(8), local_day(15), local_day(22), local_day(29)
    )
    await bind(sessions, "22", "unit", unit="dangban")
    await bind(sessions, "29", "coordinator")
    sfj, fayuan = await _unit_id(sessions, "sfj"), await _unit_id(sessions, "fayuan")
    first = await _env_do(
        sessions, settings, lambda env: request_swap(env, ids[0], ids[1], sfj, HOSTILE)
    )
    second = await _env_do(
        sessions,
        settings,
        lambda env: request_swap(env, ids[2], ids[3], fayuan, "局长出差"),
        actor="telegram:23",
    )
    await make_account(sessions, "coord", role="coordinator")
    await logged_in(client, "coord")
    page = await (await client.get("/admin/rota")).text()
    card = page.split('id="swap-', 1)[1]
    assert ESCAPED in card and "<img src=x" not in page  # the reason a unit typed is text
    assert "telegram:21" in card
    token = csrf_of(page)

    approved = await client.post(
        f"/admin/rota/swaps/{first.id}/decide", data={"csrf_token": token, "decision": "approve"}
    )
    assert f"调换 #{first.id} 已批准" in flash_of(await approved.text())
    assert await on_duty(sessions, ids[0], ids[1]) == ["dangban", "sfj"]
    again = await client.post(
        f"/admin/rota/swaps/{first.id}/decide", data={"csrf_token": token, "decision": "approve"}
    )
    assert "已经答复过了" in flash_of(await again.text())
    rejected = await client.post(
        f"/admin/rota/swaps/{second.id}/decide", data={"csrf_token": token, "decision": "reject"}
    )
    assert "未批准调换" in flash_of(await rejected.text())
    assert await on_duty(sessions, ids[2], ids[3]) == ["fayuan", "jianchayuan"]
    bogus = await client.post(
        f"/admin/rota/swaps/{second.id}/decide", data={"csrf_token": token, "decision": "maybe"}
    )
    assert bogus.status == 422

    # A swap recorded in the console for a unit that asked by phone, with its reason…
    recorded = await client.post(
        "/admin/rota/swaps",
        data={
            "csrf_token": token,
            "meeting_a": str(ids[2]),
            "meeting_b": str(ids[3]),
            "reason": "  局长\n到北京开会  ",
        },
    )
    assert "已记录" in flash_of(await recorded.text())
    async with sessions() as session:
        third = (
            await session.execute(select(RotaSwap).where(RotaSwap.status == "requested"))
        ).scalar_one()
    assert (third.reason, third.requested_by) == ("局长 到北京开会", "console:coord")
    asked = [m for m in await _outbox(sessions) if m.dedupe_key.startswith(f"rota:swap{third.id}:")]
    assert [m.recipient for m in asked] == ["29"]  # the coordinator (检察院 has no chat)
    assert "局长 到北京开会" in asked[0].body["text"]
    wordy = await client.post(
        "/admin/rota/swaps",
        data={
            "csrf_token": token,
            "meeting_a": str(ids[0]),
            "meeting_b": str(ids[1]),
            "reason": "因" * 501,
        },
    )
    assert "理由请控制在500个字以内（现有501个字）" in flash_of(await wordy.text())
    same = await client.post(
        "/admin/rota/swaps",
        data={"csrf_token": token, "meeting_a": str(ids[0]), "meeting_b": str(ids[0])},
    )
    assert "同一会议中其他单位" in flash_of(await same.text())

    # …then the calendar changes before it is answered: out of date, and recorded so.
    await client.post(f"/admin/rota/meetings/{ids[3]}/cancel", data={"csrf_token": token})
    page = await (await client.get("/admin/rota")).text()
    assert "日程已变化" in page.split(f'id="swap-{third.id}"', 1)[1].split("</li>", 1)[0]
    stale = await client.post(
        f"/admin/rota/swaps/{third.id}/decide", data={"csrf_token": token, "decision": "approve"}
    )
    assert "不再适用" in flash_of(await stale.text())
    async with sessions() as session:
        statuses = [
            s.status
            for s in (await session.execute(select(RotaSwap).order_by(RotaSwap.id))).scalars()
        ]
    assert statuses == ["accepted", "declined", "expired"]
    decided = [(e.actor, e.action) for e in await audit_actions(sessions, "rota.swap")]
    assert decided == [
        ("telegram:21", "rota.swap.request"),
        ("telegram:23", "rota.swap.request"),
        ("console:coord", "rota.swap.approve"),
        ("console:coord", "rota.swap.reject"),
        ("console:coord", "rota.swap.request"),
        ("console:coord", "rota.swap.expire"),
    ]
    # The other unit was asked in chat with the reason given.
    request = next(
        m
        for m in await _outbox(sessions)
        if m.dedupe_key.startswith(f"rota:swap{first.id}:request")
    )
    assert HOSTILE in request.body["text"] and "理由" in request.body["text"]


async def test_appraisal_report_and_its_workbook(
    client: TestClient[Any, Any], sessions: Any, settings: Any
) -> None:
    year = utcnow().astimezone(settings.tz).year
    (held,) = await schedule(
        sessions, settings, "standing", local_day(-1), now=utcnow() - timedelta(days=3)
    )
    await make_account(sessions, "ops")
    await logged_in(client, "ops")
    page = await (await client.get("/admin/rota")).text()
    await client.post(
        f"/admin/rota/meetings/{held}/mark",
        data={"csrf_token": csrf_of(page), "outcome": "delivered"},
    )
    report = await (await client.get(f"/admin/rota/report?year={year}")).text()
    body = report.split('id="report"', 1)[1]
    rows = re.findall(
        r"<tr><td>(.*?)</td><td class=\"num\">(\d+)</td><td>(.*?)</td>(.*?)</tr>", body
    )
    assert len(rows) == 40  # every place of both rotas
    first = rows[0]
    assert (first[0], first[1], first[2]) == ("区委常委会", "1", "司法局")
    assert re.findall(r'<td class="num">(\d+)</td>', first[3]) == ["1", "0", "0", "1", "0"]
    english = await (await client.get(f"/admin/rota/report?year={year}&lang=en")).text()
    assert "Justice Bureau" in english or "Bureau of Justice" in english

    xlsx = await client.get(f"/admin/rota/report.xlsx?year={year}")
    assert xlsx.status == 200 and "attachment" in xlsx.headers["Content-Disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(await xlsx.read())).worksheets[0]
    values = [[c.value for c in row] for row in sheet.iter_rows(min_row=4, max_row=4)]
    assert values[0][:8] == ["区委常委会", 1, "司法局", 1, 0, 0, 1, 0]
    assert (await client.get("/admin/rota/report?year=abc")).status == 404
