"""``pufa serve`` as operators run it (real processes) with the outbox: killed mid-drain, two
processes on one PostgreSQL, and a Telegram that cannot be reached."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import POSTGRES_URL
from tests.fakes.telegram_api import FakeBotApi
from tests.helpers import TEST_SECRET, free_port
from tests.outbox.conftest import delivered, queue_texts, rows
from tests.reliability.counts import COUNTS

HOOK_SECRET = "outbox-hook-secret"


def _env(
    db_url: str, cwd: Path, port: int, api_base: str, token: str, **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUFA_")}
    env.update(
        PUFA_ENV="test",
        PUFA_DATABASE_URL=db_url,
        PUFA_DATA_DIR=str(cwd / "data"),
        PUFA_SECRET_KEY=TEST_SECRET,
        PUFA_LOG_FORMAT="text",
        PUFA_PORT=str(port),
        PUFA_PUBLIC_URL=f"http://127.0.0.1:{port}",
        PUFA_TELEGRAM_TOKEN=token,
        PUFA_TELEGRAM_API_BASE=api_base,
    )
    env.update(extra)
    return env


async def _get(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


@asynccontextmanager
async def serving(
    db_url: str, cwd: Path, api_base: str, token: str, **extra: str
) -> AsyncIterator[tuple[subprocess.Popen[str], str]]:
    """A real ``pufa serve``, yielded with its base URL once ``/healthz`` answers 200; stopped
    with SIGTERM afterwards (unless the test killed it)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve"],
        cwd=cwd,
        env=_env(db_url, cwd, port, api_base, token, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with suppress(aiohttp.ClientError):
                if (await _get(f"{base}/healthz"))[0] == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                _, err = await asyncio.to_thread(proc.communicate, timeout=30)
                raise AssertionError(f"pufa serve did not start: {err[-3000:]}")
            await asyncio.sleep(0.2)
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 30)
            except subprocess.TimeoutExpired:
                proc.kill()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


async def _until(check: Any, timeout: float, what: str) -> None:
    """Poll an async ``check()`` until it is true (a deadline, not a sleep)."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_serve_killed_mid_drain_delivers_everything_at_most_the_one_in_flight_twice(
    db_url: str, tmp_path: Path, sessions: async_sessionmaker[AsyncSession], fake: FakeBotApi
) -> None:
    texts = [f"提醒 {i:02d}" for i in range(20)]
    await queue_texts(sessions, [(str(3000 + i), t) for i, t in enumerate(texts)])
    # each answer comes 0.15 s after the message took effect, and messages leave every 0.2 s:
    # at any moment at most one message is out at Telegram without its answer back
    fake.method_latency["sendMessage"] = 0.15
    env = {
        "PUFA_TELEGRAM_MODE": "webhook",
        "PUFA_TELEGRAM_WEBHOOK_SECRET": HOOK_SECRET,
        "PUFA_SEND_RATE": "5",
        "PUFA_OUTBOX_LEASE": "2",
    }
    async with serving(db_url, tmp_path, fake.api_base, fake.token, **env) as (proc, _base):
        await fake.wait_for_count("sendMessage", 8, timeout=60)
        proc.kill()  # SIGKILL while the 8th message waits for its answer
        await asyncio.to_thread(proc.wait, 30)
    before = Counter(delivered(fake))
    assert proc.returncode == -signal.SIGKILL
    after_kill = {r.body["text"]: r.status for r in await rows(sessions)}
    in_flight = {t for t in before if after_kill[t] != "sent"}  # accepted, never recorded
    assert 1 <= len(in_flight) <= 2, in_flight
    assert "sending" in after_kill.values()  # claimed by the dead process, leased

    async with serving(db_url, tmp_path, fake.api_base, fake.token, **env):

        async def all_sent() -> bool:
            return {r.status for r in await rows(sessions)} == {"sent"}

        await _until(all_sent, 60, "every message sent after the restart")
    got = Counter(delivered(fake))
    twice = {t for t, n in got.items() if n > 1}
    COUNTS["kill -9 outbox: messages queued"] += len(texts)
    COUNTS["kill -9 outbox: SIGKILLs injected"] += 1
    COUNTS["kill -9 outbox: recorded sent before SIGKILL"] += sum(
        1 for status in after_kill.values() if status == "sent"
    )
    COUNTS["kill -9 outbox: in flight (delivered, unrecorded)"] += len(in_flight)
    COUNTS["kill -9 outbox: sent after restart"] += sum(got.values()) - sum(before.values())
    COUNTS["kill -9 outbox: lost"] += len(set(texts) - set(got))
    COUNTS["kill -9 outbox: delivered twice"] += len(twice)
    assert set(got) == set(texts)  # nothing lost
    assert twice == in_flight and max(got.values()) == 2


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="needs PUFA_TEST_POSTGRES_URL")
async def test_two_serve_processes_on_one_postgresql_send_each_message_exactly_once(
    db_url: str, tmp_path: Path, sessions: async_sessionmaker[AsyncSession], fake: FakeBotApi
) -> None:
    env = {
        "PUFA_TELEGRAM_MODE": "webhook",
        "PUFA_TELEGRAM_WEBHOOK_SECRET": HOOK_SECRET,
        "PUFA_SEND_RATE": "40",
    }
    one_dir, two_dir = tmp_path / "one", tmp_path / "two"
    one_dir.mkdir()
    two_dir.mkdir()
    async with (
        serving(db_url, one_dir, fake.api_base, fake.token, **env) as (_p1, one),
        serving(db_url, two_dir, fake.api_base, fake.token, **env) as (_p2, two),
    ):
        for base in (one, two):
            _status, health = await _get(f"{base}/healthz")
            assert health["channels"]["telegram"]["state"] == "up"
        texts = [f"n{i:03d}" for i in range(160)]
        await queue_texts(sessions, [(str(4000 + i), t) for i, t in enumerate(texts)])
        await fake.wait_for_count("sendMessage", len(texts), timeout=60)

        async def all_sent() -> bool:
            return {r.status for r in await rows(sessions)} == {"sent"}

        await _until(all_sent, 30, "every message recorded as sent")
        sent_by = []
        for base in (one, two):
            _status, body = await _get(f"{base}/metrics")
            line = next(
                x
                for x in body.splitlines()
                if x.startswith('pufa_outbox_messages_total{channel="telegram",outcome="sent"}')
            )
            sent_by.append(float(line.rsplit(" ", 1)[1]))
    got = Counter(delivered(fake))
    assert set(got) == set(texts) and set(got.values()) == {1}  # exactly once
    assert sum(sent_by) == len(texts)
    assert min(sent_by) > 0, sent_by  # both processes took part


async def test_serve_with_no_route_to_telegram_stays_up_and_catches_up_later(
    db_url: str, tmp_path: Path, sessions: async_sessionmaker[AsyncSession]
) -> None:
    closed = free_port()  # nothing listens here (yet)
    api_base = f"http://127.0.0.1:{closed}/bot"
    fake = FakeBotApi(port=closed)
    await queue_texts(sessions, [("3100", "等通道恢复")])
    async with serving(db_url, tmp_path, api_base, fake.token) as (proc, base):  # polling mode
        status, health = await _get(f"{base}/healthz")
        assert status == 200 and health["status"] == "ok" and health["db"] == "ok"
        assert health["channels"]["telegram"]["state"] == "unreachable"
        page_status, page = await _get(f"{base}/s/fazhi-2026")
        assert page_status == 200 and "<form" in page
        (row,) = await rows(sessions)
        assert (row.status, row.attempts) == ("pending", 0)  # kept, attempts not spent

        await fake.start()  # Telegram can be reached again
        try:

            async def up() -> bool:
                return (await _get(f"{base}/healthz"))[1]["channels"]["telegram"]["state"] == "up"

            await _until(up, 30, "the channel to come up")
            await fake.wait_for("sendMessage", timeout=10, text="等通道恢复")
        finally:
            proc.send_signal(signal.SIGTERM)
            _out, err = await asyncio.to_thread(proc.communicate, timeout=30)
            await fake.stop()
    assert proc.returncode == 0, err
    assert err.count("telegram cannot be reached") == 1  # logged once, not on every retry
    assert "Traceback" not in err
