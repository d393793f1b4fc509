"""``pufa notify`` and ``pufa outbox list|retry`` as an operator runs them (real processes; the
follow-up invocations of a test run the same click commands in-process, to keep the suite
quick), and a notice delivered through the worker to the fake Bot API at the configured pace."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner, Result
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from bot.channels.telegram import TelegramSender
from bot.cli import cli, register
from bot.outbox.queue import set_push_target
from bot.outbox.worker import SLACK
from core.metrics import Metrics
from storage.db import transaction
from storage.models import ChatIdentity, RotaEntry, Township, Unit
from storage.models_outbox import OutboxMessage
from tests.fakes.telegram_api import FakeBotApi
from tests.helpers import seed_db
from tests.outbox.conftest import (
    ARRIVAL_JITTER,
    Timed,
    counter,
    make_worker,
    most_in_window,
    rows,
    send_times,
)


def pufa(cwd: Path, db_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the real ``pufa`` command."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PUFA_")}
    environ.update(
        PUFA_DATABASE_URL=db_url,
        PUFA_DATA_DIR=str(cwd / "data"),
        PUFA_LOG_FORMAT="text",
        PUFA_TIMEZONE="Asia/Shanghai",
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def apufa(cwd: Path, db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """:func:`pufa` without blocking the event loop (the fake Bot API runs on it)."""
    return await asyncio.to_thread(pufa, cwd, db_url, *args)


def invoke(cwd: Path, db_url: str, *args: str) -> Result:
    """The same ``pufa`` command line in this process (click's test runner)."""
    if "notify" not in cli.commands:
        register(cli)
    env = {
        "PUFA_DATABASE_URL": db_url,
        "PUFA_DATA_DIR": str(cwd / "data"),
        "PUFA_TIMEZONE": "Asia/Shanghai",
    }
    return CliRunner().invoke(cli, list(args), env=env)


async def ainvoke(cwd: Path, db_url: str, *args: str) -> Result:
    """:func:`invoke` in a thread (each command runs its own event loop)."""
    return await asyncio.to_thread(invoke, cwd, db_url, *args)


async def _bind_units(sessions: async_sessionmaker[AsyncSession]) -> dict[str, set[int]]:
    """Bind a private chat to every unit (one in English) and a group to the first unit of the
    standing rota; return the chat ids of each committee's units."""
    await seed_db(sessions)
    committees: dict[str, set[int]] = {"standing": set(), "executive": set()}
    async with transaction(sessions) as session:
        units = list((await session.execute(select(Unit).order_by(col(Unit.id)))).scalars())
        for unit in units:
            locale = "en" if unit.code == "fayuan" else "zh_CN"
            session.add(
                ChatIdentity(
                    channel="telegram",
                    external_id=str(5000 + (unit.id or 0)),
                    role="unit",
                    unit_id=unit.id,
                    locale=locale,
                )
            )
        entries = (await session.execute(select(RotaEntry))).scalars()
        for entry in entries:
            committees[entry.committee].add(5000 + entry.unit_id)
        first = (
            await session.execute(
                select(col(RotaEntry.unit_id)).where(
                    col(RotaEntry.committee) == "standing", col(RotaEntry.position) == 1
                )
            )
        ).scalar_one()
        await set_push_target(
            session, channel="telegram", address="-100500", role="unit", unit_id=first
        )
        session.add(ChatIdentity(channel="telegram", external_id="77", role="resident"))
        # `pufa chat --as unit` binds the console, which no push can reach: left out
        session.add(
            ChatIdentity(channel="console", external_id="local-unit", role="unit", unit_id=first)
        )
    committees["standing"].add(-100500)
    committees["executive"].add(-100500)  # 司法局 is first in both rotas
    return committees


async def test_notify_units_reaches_every_bound_unit_chat_at_the_configured_pace(
    db_url: str,
    tmp_path: Path,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeBotApi,
    sender: TelegramSender,
) -> None:
    committees = await _bind_units(sessions)
    standing = committees["standing"]
    assert len(standing) == 21  # 20 units and the group of 司法局

    result = await apufa(
        tmp_path, db_url, "notify", "units", "--committee", "standing", "--key", "m1",
        "本周五", "区委常委会", "会前学法",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "21"
    again = await ainvoke(
        tmp_path, db_url, "notify", "units", "--committee", "standing", "--key", "m1",
        "本周五", "区委常委会", "会前学法",
    )  # fmt: skip
    assert again.stdout.splitlines()[-1] == "0"  # the same notice is not queued twice

    rate = 10.0
    metrics = Metrics()
    timed = Timed(sender)
    await make_worker(sessions, {"telegram": timed}, metrics, rate=rate).drain(timeout=30)

    got = {m["chat"]["id"]: m["text"] for m in fake.sent_messages()}
    assert set(got) == standing
    assert len(fake.sent_messages()) == len(standing)
    english = [t for t in got.values() if t.startswith("[Notice]")]
    assert english == ["[Notice] 本周五 区委常委会 会前学法"]
    assert all(t == "【通知】本周五 区委常委会 会前学法" for t in got.values() if t not in english)
    handed = sorted(timed.all)  # see test_worker's pacing test
    assert most_in_window(handed, 1.0) <= rate + SLACK + 1
    assert (len(handed) - SLACK) / (handed[-1] - handed[0]) <= rate * 1.03
    assert most_in_window(send_times(fake), 1.0) <= most_in_window(handed, 1.0 + ARRIVAL_JITTER)
    assert counter(metrics, "sent") == 21

    executive = await ainvoke(tmp_path, db_url, "notify", "units", "--committee", "executive", "x")
    assert executive.stdout.splitlines()[-1] == str(len(committees["executive"]))
    everyone = await ainvoke(tmp_path, db_url, "notify", "units", "to all")
    assert everyone.stdout.splitlines()[-1] == "28"  # 27 units and the group


async def test_notify_staff_of_a_township_and_the_coordinator(
    db_url: str, tmp_path: Path, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await seed_db(sessions, demo=True)
    async with transaction(sessions) as session:
        townships = list(
            (await session.execute(select(Township).order_by(col(Township.id)))).scalars()
        )
        one, other = townships[0], townships[1]
        session.add_all(
            [
                ChatIdentity(
                    channel="telegram", external_id="61", role="staff", township_id=one.id
                ),
                ChatIdentity(channel="wecom", external_id="li", role="staff", township_id=other.id),
                ChatIdentity(channel="telegram", external_id="62", role="coordinator"),
            ]
        )
    staff = await apufa(tmp_path, db_url, "notify", "staff", "--township", one.code, "请补报")
    assert staff.returncode == 0, staff.stderr
    assert staff.stdout.splitlines()[-1] == "1"
    every = await ainvoke(tmp_path, db_url, "notify", "staff", "请补报")
    assert every.stdout.splitlines()[-1] == "2"
    boss = await ainvoke(tmp_path, db_url, "notify", "coordinator", "周报")
    assert boss.stdout.splitlines()[-1] == "1"
    stored = {(r.channel, r.recipient, r.body["text"]) for r in await rows(sessions)}
    assert stored == {
        ("telegram", "61", "【通知】请补报"),
        ("wecom", "li", "【通知】请补报"),
        ("telegram", "62", "【通知】周报"),
    }


def test_notify_refuses_bad_input_with_one_line_and_queues_nothing(
    db_url: str, tmp_path: Path
) -> None:
    unknown = pufa(tmp_path, db_url, "notify", "staff", "--township", "nosuch", "hi")
    assert unknown.returncode == 1
    assert unknown.stderr.strip().splitlines() == ["pufa: unknown township 'nosuch'"]
    misplaced = invoke(tmp_path, db_url, "notify", "staff", "--committee", "standing", "hi")
    assert misplaced.exit_code == 2 and "--committee applies to units only" in misplaced.stderr
    blank = invoke(tmp_path, db_url, "notify", "units", "  ")
    assert blank.exit_code == 2 and "empty" in blank.stderr
    nobody = invoke(tmp_path, db_url, "notify", "coordinator", "hello")
    assert nobody.exit_code == 0
    assert nobody.stdout.splitlines()[-1] == "0"
    assert "pufa invite coordinator" in nobody.stderr
    listed = invoke(tmp_path, db_url, "outbox", "list", "--format", "json")
    assert json.loads(listed.stdout) == []


async def test_outbox_list_and_retry(
    db_url: str, tmp_path: Path, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await seed_db(sessions)
    async with transaction(sessions) as session:
        session.add(ChatIdentity(channel="telegram", external_id="62", role="coordinator"))
        session.add(ChatIdentity(channel="telegram", external_id="63", role="coordinator"))
    assert (await ainvoke(tmp_path, db_url, "notify", "coordinator", "周报")).exit_code == 0
    async with transaction(sessions) as session:
        await session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.recipient) == "62")
            .values(status="failed", attempts=10, last_error="Forbidden: bot was blocked")
        )
    listed = await apufa(tmp_path, db_url, "outbox", "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    found = {m["recipient"]: m for m in json.loads(listed.stdout)}
    failed, pending = found["62"], found["63"]
    assert {"id", "status", "channel", "recipient", "attempts", "last_error"} <= set(failed)
    assert (failed["status"], failed["attempts"], failed["last_error"]) == (
        "failed",
        10,
        "Forbidden: bot was blocked",
    )
    assert pending["status"] == "pending" and pending["text"] == "【通知】周报"
    assert pending["created_at"].endswith("+08:00")  # PUFA_TIMEZONE, with its offset
    only_failed = await ainvoke(tmp_path, db_url, "outbox", "list", "--status", "failed")
    lines = only_failed.stdout.splitlines()
    assert lines[0].split()[:4] == ["id", "status", "channel", "recipient"]
    assert len(lines) == 2 and "failed" in lines[1] and "+08:00" in lines[1]

    not_failed = await apufa(tmp_path, db_url, "outbox", "retry", str(pending["id"]))
    assert not_failed.returncode == 1
    assert not_failed.stderr.strip() == (
        f"pufa: only failed messages can be retried: {pending['id']} is pending"
    )
    missing = await ainvoke(tmp_path, db_url, "outbox", "retry", "9999")
    assert missing.exit_code == 1 and "no outbox message 9999" in str(missing.exception)
    both = await ainvoke(tmp_path, db_url, "outbox", "retry", "1", "--failed")
    assert both.exit_code == 2
    retried = await apufa(tmp_path, db_url, "outbox", "retry", str(failed["id"]))
    assert retried.returncode == 0 and retried.stdout.splitlines()[-1] == "1"
    by_recipient = {r.recipient: r for r in await rows(sessions)}
    assert (by_recipient["62"].status, by_recipient["62"].attempts) == ("pending", 0)
    again = await ainvoke(tmp_path, db_url, "outbox", "retry", "--failed")
    assert again.stdout.splitlines()[-1] == "0"
