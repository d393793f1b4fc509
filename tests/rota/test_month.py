"""A whole month of both rotas, through the real ``pufa rota tick --now … --until …`` command
(one process per stretch of hourly ticks).

March 2027, Beijing time. 政府常务会 (executive) has already held 19 lectures, so its March
meetings take periods 20, 1 and 2 — the rota wraps from 20 to 1. 区委常委会 (standing) starts
at period 1. Accounts are bound with real invite codes; units answer in chat (the dialog
runtime, on a clock the test moves); the coordinator cancels, moves and marks with ``pufa``
commands (run in-process) and in chat. After every stretch of hourly ticks the test checks
every outbox row queued for every chat — who, what, about which meeting — and reads the
rendered texts and buttons. Between stretches the real outbox worker sends what was queued
to the fake Telegram Bot API over HTTP (python-telegram-bot, pufa's Telegram sender), and
every chat is checked to receive exactly the queued texts and buttons — except before the
move, to show that a moved meeting's pending reminder is withdrawn and never sent.

The cast:

==========  ===========  ======================================================  ==========
meeting     time         unit on duty                                            chats
==========  ===========  ======================================================  ==========
E1          Mar 2 09:00  退役军人事务局 (period 20, no chat bound)                  —
E2          Mar 16 09:00 司法局 (period 1) → 政办 after the swap                    5001+group
E3          Mar 30 09:00 政办 (period 2) → 司法局 after the swap                    5004 (en)
S1          Mar 11 08:30 司法局 (period 1)                                          5001+group
S2          Mar 18 08:30 党办 (period 2) — cancelled on Mar 14                       5002
S3          Mar 25 08:30 法院 (period 3) → 党办 after S2 is cancelled, moved to 26th  5003, 5002
==========  ===========  ======================================================  ==========
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import date, time
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from bot.rota.calendar import series_dates
from bot.rota.plan import Offsets
from bot.rota.service import Env, add_meetings
from core.messages import Attachment
from core.settings import Settings
from storage.db import transaction
from storage.models import AuditLog
from storage.models_rota import RotaMeeting, RotaTurn
from tests.rota.helpers import (
    CST,
    Chats,
    Delivery,
    Row,
    at,
    button,
    cli_run,
    iso,
    ok,
    outbox_rows,
    run_pufa,
    texts_of,
)

SFJ, SFJ2, GROUP, ZB, DB, FY, CO = (
    "telegram:5001",
    "telegram:5011",
    "telegram:-5001",
    "telegram:5004",
    "telegram:5002",
    "telegram:5003",
    "telegram:9001",
)
NAMES = {
    ("executive", "2027-03-02"): "E1",
    ("executive", "2027-03-16"): "E2",
    ("executive", "2027-03-30"): "E3",
    ("standing", "2027-03-11"): "S1",
    ("standing", "2027-03-18"): "S2",
    ("standing", "2027-03-25"): "S3",
}


class Month:
    """The scenario's moving parts."""

    def __init__(
        self,
        tmp: Path,
        db_url: str,
        sessions: async_sessionmaker[AsyncSession],
        chats: Chats,
        settings: Settings,
        delivery: Delivery,
    ) -> None:
        self.tmp, self.db_url, self.sessions, self.chats = tmp, db_url, sessions, chats
        self.delivery = delivery
        self.settings = settings
        self.names: dict[int, str] = {}
        self.ids: dict[str, int] = {}
        self.seen = 0
        self.last_output = ""
        self.real_process = True

    async def pufa(self, *args: str) -> str:
        """``pufa ARGS`` in-process (the ticks run as real processes)."""
        return ok(await asyncio.to_thread(cli_run, self.db_url, *args))

    async def ticks(self, start: str, end: str) -> int:
        """Hourly ticks from ``start`` to ``end`` (inclusive); the number queued. The first
        stretch runs the real ``pufa`` process; later ones the same command in-process (a
        process costs seconds to start, thirteen times over)."""
        args = ("rota", "tick", "--now", iso(at(start)), "--until", iso(at(end)), "--every", "1h")
        if self.real_process:
            self.real_process = False
            out = ok(run_pufa(self.tmp, self.db_url, *args))
        else:
            out = await self.pufa(*args)
        self.last_output = out
        return int(out.strip().splitlines()[-1].split()[-1])

    async def learn_names(self) -> None:
        async with self.sessions() as session:
            rows = (await session.execute(select(RotaMeeting))).scalars().all()
        for row in rows:
            assert row.id is not None
            day = row.starts_at.astimezone(CST).date().isoformat()
            name = NAMES.get((row.committee, day), f"P{row.id}")
            self.names[row.id] = name
            self.ids[name] = row.id

    async def new(self, *expected: tuple[str, str, str]) -> list[Row]:
        """The rows queued since the last call, checked against ``(to, what, about)``."""
        rows = await outbox_rows(self.sessions, self.names, self.seen)
        got = sorted((r.to, r.what, r.about) for r in rows)
        assert got == sorted(expected), f"queued {got}\nexpected {sorted(expected)}"
        if rows:
            self.seen = rows[-1].id
        return rows

    async def deliver(self, moment: str) -> None:
        """The outbox worker sends what is due to the fake Bot API (checked message by
        message against what was queued)."""
        await self.delivery(self.sessions, at(moment))

    def at(self, moment: str) -> None:
        self.chats.clock.now = at(moment)


def sfj(what: str, about: str) -> tuple[tuple[str, str, str], ...]:
    """What 司法局 gets: both bound accounts' private chats and its group."""
    return ((SFJ, what, about), (SFJ2, what, about), (GROUP, what, about))


def one(rows: list[Row], to: str, what: str) -> Row:
    found = [r for r in rows if r.to == to and r.what == what]
    assert len(found) == 1, (to, what, rows)
    return found[0]


@pytest.mark.timeout(900)
async def test_a_month_of_both_rotas(
    tmp_path: Path,
    db_url: str,
    seeded: async_sessionmaker[AsyncSession],
    make_chats: Callable[..., Chats],
    settings: Settings,
    delivery: Delivery,
) -> None:
    chats = make_chats(at("2027-02-15 10:00"))
    m = Month(tmp_path, db_url, seeded, chats, settings, delivery)

    # ---- accounts: real invite codes, /bind in chat (a group binds 司法局's group too)
    chats.languages["5004"] = "en"
    assert "司法局" in await chats.bind("5001", "unit", "sfj")
    assert "司法局" in await chats.bind("5011", "unit", "sfj", chat="-5001")
    assert "represents 政办" in await chats.bind("5004", "unit", "zhengban")
    assert "党办" in await chats.bind("5002", "unit", "dangban")
    assert "法院" in await chats.bind("5003", "unit", "fayuan")
    assert "协调人" in await chats.bind("9001", "coordinator")

    # ---- the calendar: 19 past executive lectures, then March for both committees
    async with transaction(seeded) as session:  # Aug–Dec 2026: periods 1–19 were given
        env = Env.of(session, m.settings, Offsets(), at("2026-08-01 00:00"))
        rule = series_dates(date(2026, 8, 5), 5, 1, [1, 2, 3, 4], time(9, 0), CST)
        added, _ = await add_meetings(env, "executive", rule)
    assert len(added) == 19
    march = await m.pufa(
        "rota", "meetings", "series", "executive", "--weekday", "tue", "--weeks", "1,3,5",
        "--time", "09:00", "--months", "1", "--from", "2027-03-01", "--now", "2027-02-15T10:00",
    )  # fmt: skip
    assert "2027-03-02 09:00 Tue  period 20  退役军人事务局 (tuiyi)" in march
    assert "2027-03-16 09:00 Tue  period 1  司法局 (sfj)" in march  # wrapped from 20 to 1
    assert "2027-03-30 09:00 Tue  period 2  政办 (zhengban)" in march
    standing = await m.pufa(
        "rota", "meetings", "series", "standing", "--weekday", "thu", "--weeks", "2,3,4",
        "--time", "08:30", "--months", "1", "--from", "2027-03-01", "--now", "2027-02-15T10:00",
    )  # fmt: skip
    assert "2027-03-11 08:30 Thu  period 1  司法局 (sfj)" in standing
    assert "2027-03-25 08:30 Thu  period 3  法院 (fayuan)" in standing
    await m.learn_names()
    await m.new()  # nothing queued by scheduling

    # ---- Feb 22 – Mar 2: February is short in both rotas; E1's unit has no chat
    assert await m.ticks("2027-02-22 00:00", "2027-03-02 12:00") == 5, m.last_output
    rows = await m.new(
        (CO, "month_short", "standing:2027-02:0"),
        (CO, "month_short", "executive:2027-02:0"),
        (CO, "unreachable", "E1r1"),
        (CO, "confirm_escalation", "E1r1"),
        (CO, "topic_escalation", "E1r1"),
    )
    assert all(r.kind in ("alert", "escalation") and r.locale == "zh_CN" for r in rows)
    unreachable = one(rows, CO, "unreachable").text
    assert "【普法学法微课堂】" in unreachable
    assert "退役军人事务局没有绑定聊天账号" in unreachable
    assert "pufa invite unit tuiyi" in unreachable
    escalation = one(rows, CO, "confirm_escalation").text
    assert "退役军人事务局尚未确认2027年3月2日 星期二 09:00政府常务会会前的第20期讲课" in escalation
    assert (
        "在讲课内容沟通期限（2027年2月28日 星期日 09:00）前未提交"
        in one(rows, CO, "topic_escalation").text
    )
    short = next(r for r in rows if r.about == "executive:2027-02:0")
    assert "政府常务会2027年2月只安排了0次普法学法微课堂，每月至少需安排2次" in short.text
    await m.deliver("2027-03-02 12:00")
    await m.pufa("rota", "mark", str(m.ids["E1"]), "missed", "--now", iso(at("2027-03-02 12:00")))

    # ---- Mar 4: 司法局 is told of S1 in its private chat and its group; confirms in the group
    assert await m.ticks("2027-03-02 13:00", "2027-03-04 10:00") == 3, m.last_output
    rows = await m.new(*sfj("heads_up", "S1r1"))
    heads_up = one(rows, GROUP, "heads_up")
    assert heads_up.kind == "reminder"
    assert "司法局：按区委常委会“普法学法微课堂”安排，贵单位承担第1期讲课" in heads_up.text
    assert "时间为2027年3月11日 星期四 08:30会前" in heads_up.text
    assert "请于2027年3月9日 星期二 08:30（会前两天）前与区委办、依法治区办沟通" in heads_up.text
    assert heads_up.buttons == ("确认讲课", "提交题目", "申请调换")
    await m.deliver("2027-03-04 10:00")
    m.at("2027-03-04 10:00")
    stranger = await chats.press("7777", heads_up.payloads[0], chat="-5001")
    assert "只有绑定到承担该期讲课单位的账号" in texts_of(stranger)
    answer = await chats.press("5011", heads_up.payloads[0], chat="-5001")
    assert "谢谢，已确认：区委常委会第1期，2027年3月11日 星期四 08:30" in texts_of(answer)

    # ---- the topic, with the file of the talk, in the private chat
    m.at("2027-03-04 10:30")
    overview = (await chats.send("5001", "/duty"))[-1]
    assert "1. 区委常委会第1期，2027年3月11日 星期四 08:30" in overview.text
    assert "已确认" in overview.text
    assert "2. 政府常务会第1期，2027年3月16日 星期二 09:00" in overview.text
    await chats.press("5001", button(overview, "1. 提交题目"))
    file = Attachment("BQACAgUAAxkBAAIB", "讲稿.docx", "application/msword")
    got = await chats.send("5001", None, attachment=file)
    assert "已收到文件 讲稿.docx" in texts_of(got)
    saved = await chats.send("5001", "以案释法：行政处罚中的程序违法\n告知、听证和说明理由")
    assert "讲课题目已保存" in texts_of(saved) and "附件：讲稿.docx" in texts_of(saved)
    rows = await m.new((CO, "topic_received", "standing:t0"))
    assert "司法局提交了2027年3月11日 星期四 08:30区委常委会会前讲课的题目" in rows[0].text
    assert "提纲：告知、听证和说明理由" in rows[0].text and "附件：讲稿.docx" in rows[0].text
    await m.deliver("2027-03-04 10:30")

    # ---- Mar 9: heads-up for E2; 司法局 asks to swap with 政办, who accepts in its chat
    assert await m.ticks("2027-03-04 11:00", "2027-03-09 11:00") == 3, m.last_output
    await m.new(*sfj("heads_up", "E2r1"))
    await m.deliver("2027-03-09 11:00")
    m.at("2027-03-09 11:00")
    overview = (await chats.send("5001", "/duty"))[-1]
    choices = (await chats.press("5001", button(overview, "2. 调换")))[-1]
    assert [b.label for b in choices.flat_buttons] == [
        "政府常务会第2期，2027年3月30日 星期二 09:00 政办"
    ]
    asked = await chats.press("5001", choices.flat_buttons[0].payload)
    assert "调换申请 #1 已发给政办和协调人" in texts_of(asked)
    rows = await m.new((ZB, "swap_request", "swap1"), (CO, "swap_request", "swap1"))
    to_zb = one(rows, ZB, "swap_request")
    assert to_zb.locale == "en" and to_zb.buttons == ("Accept the swap", "Decline")
    assert "Justice Bureau asks to swap lectures of the District Government Executive" in to_zb.text
    assert one(rows, CO, "swap_request").buttons == ("批准调换", "不批准")
    m.at("2027-03-09 11:30")
    accepted = await chats.press("5004", to_zb.payloads[0])
    assert "Swap #1 agreed" in texts_of(accepted)
    rows = await m.new(
        *sfj("swap_done", "swap1"),
        (ZB, "swap_done", "swap1"),
        (CO, "swap_done", "swap1"),
    )
    assert "政办改在2027年3月16日 星期二 09:00讲课" in one(rows, SFJ, "swap_done").text
    await m.deliver("2027-03-09 11:30")

    # ---- Mar 9–10: 政办 is told of E2 (now its turn); S1's last reminder carries the topic
    assert await m.ticks("2027-03-09 12:00", "2027-03-10 10:00") == 4, m.last_output
    rows = await m.new((ZB, "heads_up", "E2r2"), *sfj("last_reminder", "S1r1"))
    zb_heads_up = one(rows, ZB, "heads_up")
    assert (
        "Government Office: in the District Government Executive Meeting rota your unit "
        "gives lecture no. 2, before the meeting on Tuesday, March 16, 2027 09:00"
        in zb_heads_up.text
    )
    last = one(rows, SFJ, "last_reminder")
    assert "题目：以案释法：行政处罚中的程序违法" in last.text and last.buttons == ()
    await m.deliver("2027-03-10 10:00")
    m.at("2027-03-10 10:00")
    confirmed = await chats.press("5004", zb_heads_up.payloads[0])
    assert "Thank you, confirmed" in texts_of(confirmed)

    # ---- Mar 11: the morning of S1 (会前十分钟); 党办 is told of S2; the coordinator marks S1
    assert await m.ticks("2027-03-10 11:00", "2027-03-11 12:00") == 4, m.last_output
    rows = await m.new(*sfj("day_of", "S1r1"), (DB, "heads_up", "S2r1"))
    assert "请讲课同志提前十分钟到场（会前十分钟）" in one(rows, SFJ, "day_of").text
    await m.deliver("2027-03-11 12:00")
    m.at("2027-03-11 12:00")
    board = (await chats.send("9001", "/duty"))[-1]
    assert "待登记讲课情况" in board.text
    marked = await chats.press("9001", button(board, f"#{m.ids['S1']} 已讲"))
    assert "司法局的讲课已登记为“已讲”" in texts_of(marked)
    # 政办 sends its topic for E2
    m.at("2027-03-11 12:30")
    mine = (await chats.send("5004", "/duty"))[-1]
    assert "1. District Government Executive Meeting no. 2" in mine.text
    await chats.press("5004", button(mine, "1. Send the topic"))
    await chats.send("5004", "《行政复议法》修订要点\n受案范围；复议前置")
    await m.new((CO, "topic_received", "executive:t21"))
    await m.deliver("2027-03-11 12:30")

    # ---- Mar 13: 党办 has not confirmed S2 — the first escalation; Mar 14: S2 is cancelled
    assert await m.ticks("2027-03-11 13:00", "2027-03-14 10:00") == 1, m.last_output
    rows = await m.new((CO, "confirm_escalation", "S2r1"))
    assert "党办尚未确认2027年3月18日 星期四 08:30区委常委会会前的第2期讲课" in rows[0].text
    await m.deliver("2027-03-14 10:00")
    out = await m.pufa("rota", "meetings", "cancel", str(m.ids["S2"]), "--now", "2027-03-14T10:00")
    assert f"党办 (period 2) passes to #{m.ids['S3']} 2027-03-25 08:30 Thu" in out
    rows = await m.new((DB, "turn_moved", "S2r1"))  # 法院 had not been told: nothing for it
    assert "2027年3月18日 星期四 08:30的区委常委会会议已取消" in rows[0].text
    assert "顺延至下一次会议：2027年3月25日 星期四 08:30" in rows[0].text
    await m.deliver("2027-03-14 10:00")

    # ---- Mar 15–16: E2 (政办) last reminder and morning; the coordinator marks E2
    assert await m.ticks("2027-03-14 11:00", "2027-03-16 12:00") == 2, m.last_output
    rows = await m.new((ZB, "last_reminder", "E2r2"), (ZB, "day_of", "E2r2"))
    assert "Topic: 《行政复议法》修订要点" in one(rows, ZB, "last_reminder").text
    await m.deliver("2027-03-16 12:00")
    m.at("2027-03-16 12:00")
    board = (await chats.send("9001", "/duty"))[-1]
    await chats.press("9001", button(board, f"#{m.ids['E2']} 已讲"))

    # ---- Mar 18: April is short; 党办 is told of S3 — and then S3 moves to the 26th before
    # that heads-up went out: it is withdrawn and never queued again
    assert await m.ticks("2027-03-16 13:00", "2027-03-18 09:00") == 3, m.last_output
    rows = await m.new(
        (CO, "month_short", "standing:2027-04:0"),
        (CO, "month_short", "executive:2027-04:0"),
        (DB, "heads_up", "S3r2"),
    )
    withdrawn = one(rows, DB, "heads_up")
    out = await m.pufa(
        "rota", "meetings", "move", str(m.ids["S3"]), "2027-03-26T08:30", "--now",
        "2027-03-18T09:30",
    )  # fmt: skip
    assert "2027-03-26 08:30 Fri  period 2  党办 (dangban)" in out
    rows = await m.new((DB, "moved", "S3r3"))
    assert (
        "区委常委会会议时间由2027年3月25日 星期四 08:30调整为2027年3月26日 星期五 08:30"
        in rows[0].text
    )
    statuses = {r.id: r.status for r in await outbox_rows(m.sessions, m.names)}
    assert statuses[withdrawn.id] == "cancelled"
    await m.deliver("2027-03-18 09:30")

    # ---- Mar 19: the new heads-up (revision 3) — 党办 confirms it; the old one never returns
    assert await m.ticks("2027-03-18 10:00", "2027-03-19 10:00") == 1, m.last_output
    rows = await m.new((DB, "heads_up", "S3r3"))
    assert "2027年3月26日 星期五 08:30" in rows[0].text
    m.at("2027-03-19 10:00")
    stale = await chats.press("5002", withdrawn.payloads[0])
    assert "这条提醒已过时：会议现在安排在2027年3月26日 星期五 08:30" in texts_of(stale)
    assert "谢谢，已确认" in texts_of(await chats.press("5002", rows[0].payloads[0]))
    await m.deliver("2027-03-19 10:00")

    # ---- Mar 23: 党办 is asked for its topic; 司法局 is told of E3 (its turn after the swap)
    assert await m.ticks("2027-03-19 11:00", "2027-03-23 10:00") == 4, m.last_output
    rows = await m.new((DB, "topic_request", "S3r3"), *sfj("heads_up", "E3r2"))
    assert "请于2027年3月24日 星期三 08:30前提交" in one(rows, DB, "topic_request").text
    assert (
        "贵单位承担第1期讲课，时间为2027年3月30日 星期二 09:00" in one(rows, SFJ, "heads_up").text
    )
    m.at("2027-03-23 10:00")
    await chats.press("5011", one(rows, GROUP, "heads_up").payloads[0], chat="-5001")
    await m.deliver("2027-03-23 10:00")

    # ---- Mar 24–27: no topic from 党办 — the second escalation; S3 is held and marked;
    # 司法局 is asked for its E3 topic and sends it before the deadline
    assert await m.ticks("2027-03-23 11:00", "2027-03-27 12:00") == 7, m.last_output
    rows = await m.new(
        (DB, "topic_overdue", "S3r3"),
        (CO, "topic_escalation", "S3r3"),
        (DB, "last_reminder", "S3r3"),
        (DB, "day_of", "S3r3"),
        *sfj("topic_request", "E3r2"),
    )
    assert (
        "党办在讲课内容沟通期限（2027年3月24日 星期三 08:30）前未提交"
        in one(rows, CO, "topic_escalation").text
    )
    assert "尚未提交讲课题目" in one(rows, DB, "last_reminder").text
    await m.deliver("2027-03-27 12:00")
    m.at("2027-03-27 12:00")
    board = (await chats.send("9001", "/duty"))[-1]
    await chats.press("9001", button(board, f"#{m.ids['S3']} 已讲"))
    overview = (await chats.send("5001", "/duty"))[-1]
    await chats.press("5001", button(overview, "1. 提交题目"))
    await chats.send("5001", "《优化营商环境条例》与规范涉企执法")
    await m.new((CO, "topic_received", "executive:t20"))
    await m.deliver("2027-03-27 12:00")
    assert await m.ticks("2027-03-27 13:00", "2027-03-30 12:00") == 6, m.last_output
    await m.new(
        *sfj("last_reminder", "E3r2"),
        *sfj("day_of", "E3r2"),
    )
    await m.pufa("rota", "mark", str(m.ids["E3"]), "delivered", "--now", "2027-03-30T12:00")
    assert await m.ticks("2027-03-30 13:00", "2027-04-01 00:00") == 0, m.last_output
    await m.new()  # and April's shortfall was flagged once, on March 18

    # ---- the whole month: 法院 lost its turn before it was told, so it got nothing; no key twice
    everything = await outbox_rows(m.sessions, m.names)
    assert not [r for r in everything if r.to == FY]
    assert len({(r.to, r.what, r.about) for r in everything}) == len(everything)

    # ---- the report matches what happened
    report = json.loads(await m.pufa("rota", "report", "--year", "2027", "--format", "json"))
    assert report["year"] == 2027 and len(report["units"]) == 40
    figures = {
        (u["committee"], u["unit"]): tuple(
            u[k] for k in ("assigned", "confirmed_on_time", "topic_on_time", "delivered", "missed")
        )
        for u in report["units"]
    }
    expected = {
        ("executive", "tuiyi"): (1, 0, 0, 0, 1),  # E1: no chat, nothing sent, missed
        ("executive", "zhengban"): (1, 1, 1, 1, 0),  # E2 after the swap
        ("executive", "sfj"): (1, 1, 1, 1, 0),  # E3 after the swap
        ("standing", "sfj"): (1, 1, 1, 1, 0),  # S1
        ("standing", "dangban"): (1, 1, 0, 1, 0),  # S3: confirmed again after the move
    }
    for key, value in figures.items():
        assert value == expected.get(key, (0, 0, 0, 0, 0)), key
    xlsx = tmp_path / "rota-2027.xlsx"
    await m.pufa("rota", "report", "--year", "2027", "--format", "xlsx", "-o", str(xlsx))
    sheet = openpyxl.load_workbook(xlsx).active
    assert sheet is not None
    cells = [[c.value for c in row] for row in sheet.iter_rows(min_row=4, max_row=43)]
    assert ["政府常务会", 20, "退役军人事务局", 1, 0, 0, 0, 1] in cells
    assert ["区委常委会", 2, "党办", 1, 1, 0, 1, 0] in cells
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)

    # ---- every change is in the audit log with before and after
    async with m.sessions() as session:
        audit = (await session.execute(select(AuditLog).order_by(col(AuditLog.id)))).scalars().all()
        turns = (await session.execute(select(RotaTurn))).scalars().all()
    actions = [a.action for a in audit if a.action.startswith("rota.")]
    for action in (
        "rota.meeting.add",
        "rota.meeting.cancel",
        "rota.meeting.move",
        "rota.meeting.mark",
        "rota.swap.request",
        "rota.swap.accept",
        "rota.confirm",
        "rota.topic",
    ):
        assert action in actions, action
    move = next(a for a in audit if a.action == "rota.meeting.move")
    assert move.detail["before"]["starts_at"] == "2027-03-25T08:30+08:00"
    assert move.detail["after"]["starts_at"] == "2027-03-26T08:30+08:00"
    assert move.detail["after"]["revision"] == 3
    swap = next(a for a in audit if a.action == "rota.swap.accept")
    assert swap.detail["before"][f"meeting:{m.ids['E2']}"] == "sfj"
    assert swap.detail["after"][f"meeting:{m.ids['E2']}"] == "zhengban"
    kept = [t for t in turns if t.topic_file_id]
    assert [(t.topic_file_name, t.topic_file_mime) for t in kept] == [
        ("讲稿.docx", "application/msword")
    ]
