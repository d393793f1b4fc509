"""Swaps and who may press what: the coordinator approves, a unit declines, strangers and
out-of-date requests are refused; a group member without an account of their own reads."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.rota.config import load_offsets
from bot.rota.service import Env, add_meetings, cancel_meeting
from bot.rota.store import load
from core.settings import Settings
from storage.db import transaction
from storage.models import AuditLog
from storage.models_rota import RotaSwap
from tests.rota.helpers import Chats, at, button, outbox_rows, texts_of


async def _setup(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], chats: Chats
) -> list[int]:
    await chats.bind("21", "unit", "sfj")
    await chats.bind("22", "unit", "dangban")
    await chats.bind("23", "unit", "fayuan")
    await chats.bind("29", "coordinator")
    async with transaction(sessions) as session:
        env = Env.of(session, settings, load_offsets(), chats.clock.now)
        added, _ = await add_meetings(
            env,
            "standing",
            [at("2027-06-10 08:30"), at("2027-06-17 08:30"), at("2027-06-24 08:30")],
        )
    return [m.id for m in added if m.id is not None]


async def _units(sessions: async_sessionmaker[AsyncSession], ids: list[int]) -> list[str]:
    async with sessions() as session:
        snapshot = await load(session)
    return [snapshot.units[snapshot.slots[i].unit_id].code for i in ids]


async def test_the_coordinator_approves_a_swap_and_strangers_cannot(
    settings: Settings,
    seeded: async_sessionmaker[AsyncSession],
    make_chats: Callable[..., Chats],
) -> None:
    chats = make_chats(at("2027-06-01 09:00"))
    ids = await _setup(settings, seeded, chats)
    assert await _units(seeded, ids) == ["sfj", "dangban", "fayuan"]
    overview = (await chats.send("21", "/duty"))[-1]
    choices = (await chats.press("21", button(overview, "1. 调换")))[-1]
    assert len(choices.flat_buttons) == 2
    await chats.press("21", button(choices, "法院"))
    second = await chats.press("21", button(choices, "党办"))  # one request at a time
    assert "其中一次讲课已有调换申请 #1" in texts_of(second)
    rows = [r for r in await outbox_rows(seeded, {}) if r.what == "swap_request"]
    to_court = next(r for r in rows if r.to == "telegram:23")
    to_coordinator = next(r for r in rows if r.to == "telegram:29")
    # somebody else in the court's chat, or another unit, cannot answer for the court
    refused = await chats.press("22", to_court.payloads[0], chat="23")
    assert "只有对方单位或协调人可以答复此申请" in texts_of(refused)
    # a button pushed to the coordinator's chat does not work anywhere else
    assert "无法识别这个按钮" in texts_of(await chats.press("21", to_coordinator.payloads[0]))
    approved = await chats.press("29", to_coordinator.payloads[0])
    assert "调换 #1 已批准" in texts_of(approved)
    assert await _units(seeded, ids) == ["fayuan", "dangban", "sfj"]
    late = await chats.press("23", to_court.payloads[0])
    assert "调换申请 #1 已经答复过了" in texts_of(late)
    async with seeded() as session:
        swap = (await session.execute(select(RotaSwap))).scalar_one()
        audit = [
            a.action
            for a in (await session.execute(select(AuditLog))).scalars()
            if a.action.startswith("rota.swap")
        ]
    assert (swap.status, swap.decided_by) == ("accepted", "telegram:29")
    assert audit == ["rota.swap.request", "rota.swap.approve"]
    done = [r.to for r in await outbox_rows(seeded, {}) if r.what == "swap_done"]
    assert sorted(done) == ["telegram:21", "telegram:23", "telegram:29"]


async def test_a_declined_or_outdated_swap_changes_nothing(
    settings: Settings,
    seeded: async_sessionmaker[AsyncSession],
    make_chats: Callable[..., Chats],
) -> None:
    chats = make_chats(at("2027-06-01 09:00"))
    ids = await _setup(settings, seeded, chats)
    overview = (await chats.send("21", "/duty"))[-1]
    choices = (await chats.press("21", button(overview, "1. 调换")))[-1]
    await chats.press("21", button(choices, "党办"))
    request = next(r for r in await outbox_rows(seeded, {}) if r.to == "telegram:22")
    declined = await chats.press("22", request.payloads[1])
    assert "已拒绝调换 #1" in texts_of(declined)
    told = [r for r in await outbox_rows(seeded, {}) if r.what == "swap_declined"]
    assert [r.to for r in told] == ["telegram:21"]
    assert "党办不同意调换，贵单位仍在2027年6月10日 星期四 08:30讲课" in told[0].text
    assert await _units(seeded, ids) == ["sfj", "dangban", "fayuan"]

    # a new request, then the calendar changes before anyone answers
    await chats.press("21", button(choices, "法院"))
    request = next(
        r for r in await outbox_rows(seeded, {}) if r.to == "telegram:23" and "swap" in r.what
    )
    async with transaction(seeded) as session:
        await cancel_meeting(Env.of(session, settings, load_offsets(), chats.clock.now), ids[1])
    outdated = await chats.press("23", request.payloads[0])
    assert "该申请不再适用" in texts_of(outdated)
    async with seeded() as session:
        statuses = [s.status for s in (await session.execute(select(RotaSwap))).scalars()]
    assert statuses == ["declined", "expired"]
    assert await _units(seeded, [ids[0], ids[2]]) == ["sfj", "dangban"]


async def test_a_group_member_without_an_account_reads_the_units_turns(
    settings: Settings,
    seeded: async_sessionmaker[AsyncSession],
    make_chats: Callable[..., Chats],
) -> None:
    chats = make_chats(at("2027-06-01 09:00"))
    await chats.bind("41", "unit", "sfj", chat="-41")
    async with transaction(seeded) as session:
        env = Env.of(session, settings, load_offsets(), chats.clock.now)
        await add_meetings(env, "standing", [at("2027-06-10 08:30")])
    replies = await chats.send("42", "/duty", chat="-41")
    assert "1. 区委常委会第1期，2027年6月10日 星期四 08:30" in replies[-1].text
    assert "请绑定您自己的账号" in replies[-1].text and not replies[-1].buttons
    topic = await chats.send("41", "/duty", chat="-41")
    asked = await chats.press("41", button(topic[-1], "1. 提交题目"), chat="-41")
    assert "请在与我的私聊中提交题目" in texts_of(asked)
