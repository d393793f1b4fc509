"""Outbox drain rate: queued messages leave at the configured ``PUFA_SEND_RATE``, none lost.

``--messages`` notices (default 2,000, one chat each) are queued in the database, then a real
``pufa serve`` (its own process, Telegram in webhook mode) sends them through its outbox worker
to the fake Bot API, which runs in this process and timestamps every message as it arrives.
Reported: the drain rate measured at the fake (first to last arrival), its ratio to the
configured rate (the goal is at least 95%), the most messages that arrived within any one
second, and how many were lost or arrived twice (both must be 0).

Run ``python -m bench bench_outbox`` or ``python -m bench.bench_outbox [--messages N]
[--rate R] [--database-url URL] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import delete, func, select
from sqlmodel import col

from bench._wrk import row
from bot.outbox.queue import Outgoing, Recipient, enqueue
from core.clock import utcnow
from core.messages import Reply
from storage.db import create_engine, session_factory, transaction
from storage.migrate import upgrade_engine
from storage.models_outbox import OutboxMessage
from tests.fakes.telegram_api import FakeBotApi

__all__ = ["main", "run_outbox_bench"]

SECRET = "bench-hook-secret"
#: Share of the configured rate the drain must reach.
TARGET = 0.95


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _queue(database_url: str, count: int) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade_engine(engine)
        sessions = session_factory(engine)
        async with transaction(sessions) as session:
            await session.execute(delete(OutboxMessage))
        for start in range(0, count, 500):
            batch = [
                Outgoing(
                    f"bench:{i}",
                    Recipient("telegram", str(100_000 + i), "zh_CN"),
                    Reply(f"bench {i:05d}"),
                )
                for i in range(start, min(count, start + 500))
            ]
            async with transaction(sessions) as session:
                await enqueue(session, batch, utcnow())
    finally:
        await engine.dispose()


async def _statuses(database_url: str) -> dict[str, int]:
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            found = await session.execute(
                select(col(OutboxMessage.status), func.count()).group_by(col(OutboxMessage.status))
            )
            return {str(status): int(n) for status, n in found.all()}
    finally:
        await engine.dispose()


def _most_in_one_second(times: list[float]) -> int:
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


async def run_outbox_bench(
    messages: int = 2000, rate: float = 30.0, database_url: str | None = None
) -> dict[str, Any]:
    """Queue ``messages``, drain them with ``pufa serve`` at ``rate``; return the figures."""
    with tempfile.TemporaryDirectory(prefix="pufa-bench-outbox-") as tmp:
        url = database_url or f"sqlite+aiosqlite:///{tmp}/outbox.db"
        await _queue(url, messages)
        async with FakeBotApi() as fake:
            port = _free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("PUFA_")}
            env.update(
                PUFA_ENV="test",
                PUFA_DATABASE_URL=url,
                PUFA_DATA_DIR=tmp,
                PUFA_SECRET_KEY="bench-secret-key-0123456789abcdef",
                PUFA_TELEGRAM_TOKEN=fake.token,
                PUFA_TELEGRAM_MODE="webhook",
                PUFA_TELEGRAM_WEBHOOK_SECRET=SECRET,
                PUFA_TELEGRAM_API_BASE=fake.api_base,
                PUFA_PUBLIC_URL=f"http://127.0.0.1:{port}",
                PUFA_PORT=str(port),
                PUFA_SEND_RATE=f"{rate:g}",
                PUFA_LOG_LEVEL="WARNING",
            )
            proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve"],
                cwd=tmp,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                # event driven: the fake wakes this wait only when a call arrives (polling a
                # copy of every sent message would stall the fake and skew its timestamps)
                with contextlib.suppress(TimeoutError):
                    await fake.wait_for_count(
                        lambda c: c.method == "sendMessage" and c.ok,
                        messages,
                        timeout=messages / rate * 2 + 90,
                    )
                if proc.poll() is not None:
                    raise RuntimeError(f"pufa serve exited with {proc.returncode}")
                await _wait_recorded(url, messages, time.monotonic() + 30)
            finally:
                proc.terminate()
                await asyncio.to_thread(proc.wait, 30)
            texts = Counter(m["text"] for m in fake.sent_messages())
            times = sorted(c.time for c in fake.calls_to("sendMessage") if c.ok)
        statuses = await _statuses(url)
    expected = {f"bench {i:05d}" for i in range(messages)}
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    measured = (len(times) - 1) / span if span > 0 else 0.0
    return {
        "messages": messages,
        "configured_rate": rate,
        "database": "postgresql" if database_url and "postgres" in database_url else "sqlite",
        "seconds": round(span, 2),
        "rate": round(measured, 2),
        "ratio": round(measured / rate, 4),
        "most_in_one_second": _most_in_one_second(times),
        "lost": len(expected - set(texts)),
        "twice": sum(1 for n in texts.values() if n > 1),
        "rows": statuses,
    }


async def _wait_recorded(url: str, messages: int, deadline: float) -> None:
    while (await _statuses(url)).get("sent", 0) < messages and time.monotonic() < deadline:
        await asyncio.sleep(0.5)


def _print(result: dict[str, Any]) -> None:
    print(
        f"outbox: {result['messages']} messages drained in {result['seconds']} s "
        f"({result['database']}): {result['rate']} msg/s at PUFA_SEND_RATE="
        f"{result['configured_rate']:g} = {result['ratio']:.1%} of the configured rate "
        f"(goal >= 95%)"
    )
    print(
        f"  most in any one second: {result['most_in_one_second']}; "
        f"lost: {result['lost']}; arrived twice: {result['twice']}; rows: {result['rows']}"
    )


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Run the benchmark, print its figures and return them as table rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument(
        "--messages", type=int, default=int(os.environ.get("PUFA_BENCH_OUTBOX_MESSAGES", "2000"))
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=float(os.environ.get("PUFA_BENCH_OUTBOX_RATE", "30")),
        help="PUFA_SEND_RATE",
    )
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv if argv is not None else [])
    result = asyncio.run(run_outbox_bench(args.messages, args.rate, args.database_url))
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        _print(result)
    case = f"{result['messages']} messages, {result['database']}"
    clean = result["lost"] == 0 and result["twice"] == 0
    return [
        row(
            "outbox", case, "drain msg/s vs PUFA_SEND_RATE", result["rate"],
            baseline=result["configured_rate"], ratio=result["ratio"], target=">= 0.95x",
            met=result["ratio"] >= TARGET and clean, details=result,
        ),
        row(
            "outbox", case, "most messages in one second", result["most_in_one_second"],
            baseline=result["configured_rate"],
        ),
        row(
            "outbox", case, "lost + delivered twice", result["lost"] + result["twice"],
            target="0", met=clean,
        ),
    ]  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
