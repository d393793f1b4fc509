"""``pufa rota …`` on a real database (in-process click runner), the calendar feeds over HTTP, the
WeCom group robot, the report and the demo data."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from icalendar import Calendar
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.outbox.queue import recipients
from bot.rota.config import load_offsets
from bot.rota.robot import mask_robot_url, robot_url_problem
from bot.rota.service import Env, add_meetings, tick
from core.crypto import Sealer
from core.settings import Settings
from storage.db import transaction
from storage.models import AuditLog
from storage.models_outbox import OutboxMessage, PushTarget
from tests.helpers import TEST_SECRET
from tests.rota.helpers import Chats, Ran, at, cli_run, ok


async def pufa(db_url: str, *args: str) -> Ran:
    """``pufa ARGS`` in-process, off the event loop (the command runs its own loop)."""
    return await asyncio.to_thread(cli_run, db_url, *args)


ROBOT = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"


def test_meeting_commands_and_their_errors(tmp_path: Path, db_url: str) -> None:
    def pufa(*args: str) -> Ran:
        return cli_run(db_url, *args)

    now = "--now=2027-05-01T09:00"
    added = ok(pufa("rota", "meetings", "add", "standing", "2027-05-13T08:30", now))
    assert added.startswith("added #1  standing 区委常委会  2027-05-13 08:30 Thu  period 1  司法局")
    ok(pufa("rota", "meetings", "add", "standing", "2027-05-27 08:30+08:00", now))
    again = pufa("rota", "meetings", "add", "standing", "2027-05-27T08:30", now)
    assert again.returncode == 1 and "already meets" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    for args, code, words in (
        (("add", "county", "2027-05-13T08:30"), 2, "standing"),
        (("add", "standing", "2027-05-13"), 2, "needs a time"),
        (("add", "standing", "2027-04-01T08:30"), 1, "already passed"),
        (("move", "#9", "2027-05-20T08:30"), 1, "no meeting #9"),
        (("move", "x", "2027-05-20T08:30"), 1, "not a meeting number"),
        (("cancel", "#1", "--now", "2027-05-14T00:00"), 1, "already taken place"),
    ):
        result = pufa("rota", "meetings", *args, *(() if "--now" in args else (now,)))
        assert result.returncode == code, (args, result.stderr)
        assert words in result.stderr.lower() or words in result.stderr, (args, result.stderr)
    early = pufa("rota", "mark", "1", "delivered", now)
    assert early.returncode == 1 and "has not taken place yet" in early.stderr
    moved = ok(pufa("rota", "meetings", "move", "#1", "2027-05-14T08:30", now))
    assert "2027-05-14 08:30 Fri  period 1  司法局" in moved
    cancelled = ok(pufa("rota", "meetings", "cancel", "1", now))
    assert "司法局 (period 1) passes to #2 2027-05-27 08:30 Thu" in cancelled
    listed = json.loads(ok(pufa("rota", "meetings", "list", "--format", "json", now)))
    assert [(m["id"], m["status"], m["unit"], m["period"], m["revision"]) for m in listed] == [
        (1, "cancelled", None, None, 3),
        (2, "scheduled", "sfj", 1, 2),
    ]
    table = ok(pufa("rota", "meetings", "list", "standing", now))
    assert "#2" in table and "cancelled" in table
    assert "note: standing 区委常委会 has 1 lecture(s) in 2027-05 (at least 2 a month)" in table
    series = ok(
        pufa(
            "rota", "meetings", "series", "executive", "--weekday", "tue", "--weeks", "1,3",
            "--time", "09:00", "--months", "2", now,
        )
    )  # fmt: skip
    assert series.strip().endswith("4 meeting(s) added")
    assert "2027-05-04 09:00 Tue  period 1  司法局 (sfj)" in series
    assert "2027-06-15 09:00 Tue  period 4  检察院 (jianchayuan)" in series
    bad = pufa("rota", "meetings", "series", "executive", "--weekday", "tue", "--weeks", "6",
               "--time", "09:00", now)  # fmt: skip
    assert bad.returncode == 2


async def test_calendar_feeds_list_a_units_turns_and_a_new_link_revokes_the_old(
    tmp_path: Path,
    db_url: str,
    settings: Settings,
    seeded: async_sessionmaker[AsyncSession],
    client: TestClient[Any, Any],
) -> None:
    async with transaction(seeded) as session:
        env = Env.of(session, settings, load_offsets(), at("2027-05-01 09:00"))
        await add_meetings(env, "standing", [at("2027-05-13 08:30"), at("2027-05-27 08:30")])
        await add_meetings(env, "executive", [at("2027-05-04 09:00")])
    out = ok(await pufa(db_url, "rota", "ical", "司法局")).strip().splitlines()
    link = out[-1]
    assert link.startswith("https://pufa.example.gov.cn/rota/unit/") and link.endswith(".ics")
    path = link.removeprefix("https://pufa.example.gov.cn")
    response = await client.get(path)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/calendar")
    feed = Calendar.from_ical(await response.read())
    events = sorted(feed.walk("VEVENT"), key=lambda e: e.decoded("dtstart"))
    assert [str(e["summary"]) for e in events] == [
        "普法学法微课堂：司法局（政府常务会第1期）",
        "普法学法微课堂：司法局（区委常委会第1期）",
    ]
    first = events[0]
    assert first.decoded("dtstart") == at("2027-05-04 08:50")  # 会前十分钟
    assert first.decoded("dtend") == at("2027-05-04 09:00")
    assert "请提前十分钟到场" in str(first["description"])
    committee = Calendar.from_ical(await (await client.get("/rota/standing.ics")).read())
    assert len(committee.walk("VEVENT")) == 2
    english = await client.get("/rota/standing.ics?lang=en")
    assert "Justice Bureau" in (await english.read()).decode()
    unknown = await client.get("/rota/county.ics")
    assert unknown.status == 404 and (await unknown.json())["error"]["code"] == "not_found"
    assert (await client.get("/rota/unit/" + "0" * 32 + ".ics")).status == 404
    renewed = ok(await pufa(db_url, "rota", "ical", "sfj", "--new")).strip()
    new_path = renewed.splitlines()[-1].removeprefix("https://pufa.example.gov.cn")
    assert new_path != path
    assert (await client.get(path)).status == 404
    assert (await client.get(new_path)).status == 200
    async with seeded() as session:
        audit = (
            (await session.execute(select(AuditLog).where(AuditLog.action == "rota.ical.issue")))
            .scalars()
            .all()
        )
    assert [a.detail["after"]["generation"] for a in audit] == [1, 2]
    assert all(path.split("/")[-1][:-4] not in json.dumps(a.detail) for a in audit)


async def test_a_wecom_robot_is_stored_sealed_and_gets_the_units_reminders(
    tmp_path: Path,
    db_url: str,
    settings: Settings,
    seeded: async_sessionmaker[AsyncSession],
) -> None:
    assert robot_url_problem(ROBOT) is None
    for bad in (
        "http://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc",
        "https://qyapi.weixin.qq.com/cgi-bin/other?key=abc",
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send",
        "https://user:pw@qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc",
    ):
        assert robot_url_problem(bad) is not None, bad
    refused = await pufa(db_url, "rota", "robot", "sfj", ROBOT.replace("https", "http"))
    assert refused.returncode == 2 and "https" in refused.stderr
    out = ok(await pufa(db_url, "rota", "robot", "司法局", ROBOT))
    assert "693a…5aaa" in out and "sifa5aaa" not in out.replace("…5aaa", "")
    assert ROBOT not in out and mask_robot_url(ROBOT) in out
    async with seeded() as session:
        target = (await session.execute(select(PushTarget))).scalar_one()
        assert (target.channel, target.address, target.role) == ("wecom_robot", "robot:sfj", "unit")
        assert target.secret is not None and ROBOT not in target.secret
        assert Sealer(TEST_SECRET.encode(), "wecom.robot").open(target.secret) == ROBOT
        found = await recipients(session, "unit", unit_id=target.unit_id)
        audit = (await session.execute(select(AuditLog))).scalars().all()
    assert [(r.channel, r.address) for r in found] == [("wecom_robot", "robot:sfj")]
    assert not any(ROBOT in json.dumps(a.detail) for a in audit)
    async with transaction(seeded) as session:
        env = Env.of(session, settings, load_offsets(), at("2027-05-01 09:00"))
        await add_meetings(env, "standing", [at("2027-05-06 08:30")])
    async with transaction(seeded) as session:
        await tick(Env.of(session, settings, load_offsets(), at("2027-05-01 10:00")))
    async with seeded() as session:
        row = (
            await session.execute(
                select(OutboxMessage).where(OutboxMessage.channel == "wecom_robot")
            )
        ).scalar_one()
    assert row.recipient == "robot:sfj" and "buttons" not in row.body
    assert "请在聊天中向普法助手发送 /duty" in row.body["text"]
    off = ok(await pufa(db_url, "rota", "robot", "sfj", "--off"))
    assert "switched off" in off
    async with seeded() as session:
        assert await recipients(session, "unit", unit_id=target.unit_id) == []


async def test_demo_meetings_populate_the_calendar_but_not_the_report_or_the_pushes(
    tmp_path: Path,
    db_url: str,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    make_chats: Callable[..., Chats],
) -> None:
    first = ok(await pufa(db_url, "seed", "--demo"))
    assert "rota_meeting" in first
    assert ok(await pufa(db_url, "seed", "--demo")).splitlines()[:2] == [
        "created: nothing",
        "updated: nothing",
    ]
    listed = json.loads(ok(await pufa(db_url, "rota", "meetings", "list", "--format",
                                    "json")))  # fmt: skip
    assert listed and all(m["sample"] for m in listed)
    assert any(m["outcome"] == "delivered" for m in listed) and any(m["topic"] for m in listed)
    year = int(listed[-1]["starts_at"][:4])
    plain = json.loads(ok(await pufa(db_url, "rota", "report", "--year", str(year),
                                   "--format", "json")))  # fmt: skip
    assert plain["include_sample"] is False and len(plain["units"]) == 40
    assert all(u["assigned"] == 0 for u in plain["units"])
    sample = json.loads(ok(await pufa(db_url, "rota", "report", "--year", str(year),
                                    "--format", "json", "--include-sample")))  # fmt: skip
    assert sample["include_sample"] is True
    assert sum(u["assigned"] for u in sample["units"]) == sum(
        1 for m in listed if m["starts_at"].startswith(str(year)) and m["status"] == "scheduled"
    )
    table = ok(await pufa(db_url, "rota", "report", "--year", str(year), "--lang", "en",
                        "--include-sample"))  # fmt: skip
    assert "(sample meetings included)" in table and "Justice Bureau" in table
    assert len(table.strip().splitlines()) == 1 + 2 + 40 + 1  # title, header, rule, rows, total
    # a bound unit hears nothing about sample meetings
    chats = make_chats(at("2027-01-01 09:00"))
    await chats.bind("31", "unit", "sfj")
    async with transaction(sessions) as session:
        queued = await tick(Env.of(session, settings, load_offsets(), chats.clock.now))
    assert [q for q in queued if q.channel == "telegram"] == []
