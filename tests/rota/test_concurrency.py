"""The tick run twice, and at the same time as the scheduler inside ``pufa serve``, queues
nothing twice: every message has one dedupe key per (meeting, revision, unit, kind, chat)."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from bot.app import create_app
from bot.rota.config import load_offsets
from bot.rota.feature import FEATURE, TICK
from bot.rota.service import Env, add_meetings, tick
from core.feature import TaskContext
from core.metrics import Metrics
from core.settings import Settings
from storage.db import transaction
from storage.models_outbox import OutboxMessage
from tests.helpers import TEST_SECRET
from tests.rota.helpers import PUFA, Chats, at, cli_run, iso, ok, run_pufa


async def _count(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
    async with sessions() as session:
        total = (await session.execute(select(func.count(col(OutboxMessage.id))))).scalar_one()
        keys = (
            await session.execute(select(func.count(func.distinct(OutboxMessage.dedupe_key))))
        ).scalar_one()
    return total, keys


async def _due(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], now_text: str
) -> int:
    async with transaction(sessions) as session:
        env = Env.of(session, settings, load_offsets(), at(now_text))
        return len(await tick(env, dry_run=True))


async def _pufa_tick(tmp: Path, db_url: str, now: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUFA_")}
    env.update({"PUFA_DATABASE_URL": db_url, "PUFA_SECRET_KEY": TEST_SECRET})
    proc = await asyncio.create_subprocess_exec(
        *PUFA, "rota", "tick", "--now", iso(at(now)),
        cwd=tmp, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_tick_twice_and_alongside_the_in_process_scheduler_queues_each_message_once(
    tmp_path: Path,
    db_url: str,
    settings: Settings,
    seeded: async_sessionmaker[AsyncSession],
    make_chats: Callable[..., Chats],
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert TICK in FEATURE.tasks and TICK.every.total_seconds() == 60
    chats = make_chats(at("2027-05-01 09:00"))
    for user, unit in (("11", "sfj"), ("12", "dangban"), ("13", "fayuan"), ("14", "zhengban")):
        await chats.bind(user, "unit", unit)
    await chats.bind("19", "coordinator")
    async with transaction(seeded) as session:
        env = Env.of(session, settings, load_offsets(), at("2027-05-01 09:00"))
        await add_meetings(
            env,
            "standing",
            [at("2027-05-06 08:30"), at("2027-05-13 08:30"), at("2027-05-20 08:30")],
        )
        await add_meetings(env, "executive", [at("2027-05-11 09:00"), at("2027-05-25 09:00")])

    due = await _due(settings, seeded, "2027-05-10 10:00")
    assert due >= 6  # heads-ups, escalations and month notices for several units

    # the command and four runs of the scheduler's task, all at once
    context = TaskContext(settings, seeded, Metrics(), at("2027-05-10 10:00"))
    results = await asyncio.gather(
        _pufa_tick(tmp_path, db_url, "2027-05-10 10:00"),
        *(TICK.run(context) for _ in range(4)),
    )
    total, keys = await _count(seeded)
    assert total == keys == due
    assert results[0].strip().splitlines()[-1].startswith("queued ")

    # and again: nothing new
    again = ok(
        await asyncio.to_thread(cli_run, db_url, "rota", "tick", "--now", "2027-05-10T10:00")
    )
    assert again.strip().splitlines()[-1] == "queued 0"
    assert await _count(seeded) == (due, due)

    # the scheduler inside the running app (every minute, first after five seconds) and the
    # command at a later moment, at the same time
    later = await _due(settings, seeded, "2027-05-12 10:00")
    assert later > 0
    app = create_app(settings, clock=lambda: at("2027-05-12 10:00"))
    with caplog.at_level(logging.DEBUG, logger="bot.rota.feature"):
        async with TestClient(TestServer(app, host="127.0.0.1")):
            command = asyncio.create_task(_pufa_tick(tmp_path, db_url, "2027-05-12 10:00"))
            deadline = time.monotonic() + 60
            while not [r for r in caplog.records if r.name == "bot.rota.feature"]:
                assert time.monotonic() < deadline, "the in-process scheduler did not run"
                await asyncio.sleep(0.1)
            await command
    assert await _count(seeded) == (due + later, due + later)


def test_tick_dry_run_queues_nothing_and_bad_times_are_usage_errors(
    tmp_path: Path, db_url: str
) -> None:
    dry = cli_run(db_url, "rota", "tick", "--now", "2027-05-10T10:00", "--dry-run")
    assert dry.stdout.strip().splitlines()[-1] == "would queue 0"
    bad = run_pufa(tmp_path, db_url, "rota", "tick", "--now", "next tuesday")
    assert bad.returncode == 2 and "ISO 8601" in bad.stderr
    backwards = cli_run(
        db_url, "rota", "tick", "--now", "2027-05-10T10:00", "--until", "2027-05-01T00:00"
    )
    assert backwards.returncode == 2
