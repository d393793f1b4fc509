"""Telegram webhook throughput of a survey step, next to a minimal PTB echo bot, and memory.

**Throughput.** Each bot under test runs as a process of its own on ``127.0.0.1``, as it does
in production: pufa as ``pufa serve`` (PTB webhook channel, dialog runtime, SQLite file or
PostgreSQL), the baseline as :func:`bench.echo_bot.serve_echo` (a PTB application answering
each text with one ``sendMessage``). The fake Bot API and the load generator share the
benchmark's own process, so the stand-in for Telegram's servers does not eat the bot's CPU —
the same for both bots. For pufa each timed update is a button press answering question 1 of
an open survey — one transaction that claims the ``update_id``, reads the identity and
conversation and writes the new state — followed by the edit of the question message and the
next question (``answerCallbackQuery`` rides in the webhook answer). Reported: updates/s of
each and the ratio pufa/echo per concurrency, with the median of ``--repeat`` runs.

**Memory.** ``pufa serve``'s resident set size (``VmRSS``) is read before and after 10,000
people each open a survey (10,000 open conversations). State lives in the database, so the
process should not grow with them.

Run ``python -m bench bench_telegram`` or ``python -m bench.bench_telegram [--updates N]
[--concurrency 1 10 50] [--repeat 3] [--conversations 10000] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp

from bench._load import drive_webhook
from tests.fakes.telegram_api import FakeBotApi

__all__ = ["bot_process", "main", "run_echo_process", "run_memory_bench", "run_pufa_bench"]

SECRET = "bench-secret"
HEADER = "X-Telegram-Bot-Api-Secret-Token"
ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _open_surveys(
    fake: FakeBotApi, url: str, users: range, concurrency: int = 20
) -> dict[str, Any]:
    """Each user sends ``/survey fazhi-2026`` (through the webhook)."""
    updates = [fake.make_message_update(None, u, None, "/survey fazhi-2026") for u in users]
    return await drive_webhook(url, updates, concurrency, headers={HEADER: SECRET})


async def _wipe_postgres(url: str) -> None:
    from sqlalchemy import text

    from storage.db import create_engine

    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _pufa_env(fake: FakeBotApi, tmp: str, port: int, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUFA_")}
    env.update(
        PUFA_ENV="test",
        PUFA_DATABASE_URL=database_url or f"sqlite+aiosqlite:///{tmp}/bench.db",
        PUFA_DATA_DIR=tmp,
        PUFA_SECRET_KEY="bench-secret-key-0123456789abcdef",
        PUFA_TELEGRAM_TOKEN=fake.token,
        PUFA_TELEGRAM_MODE="webhook",
        PUFA_TELEGRAM_WEBHOOK_SECRET=SECRET,
        PUFA_TELEGRAM_API_BASE=fake.api_base,
        PUFA_PUBLIC_URL=f"http://127.0.0.1:{port}",
        PUFA_PORT=str(port),
        PUFA_SEND_RATE="1000",
        PUFA_LOG_LEVEL="WARNING",
    )
    return env


async def _healthy(port: int) -> bool:
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/healthz") as response,
        ):
            return response.status == 200
    except aiohttp.ClientError:
        return False


@asynccontextmanager
async def bot_process(
    kind: str, fake: FakeBotApi, tmp: str, database_url: str | None = None
) -> AsyncIterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start ``pufa`` (``kind="pufa"``) or the echo bot as its own process against ``fake``;
    yield its webhook URL and process once it answers, and stop it afterwards."""
    port = _free_port()
    if kind == "pufa":
        if database_url:
            await _wipe_postgres(database_url)
        cmd = [sys.executable, "-m", "bot", "serve"]
        env = _pufa_env(fake, tmp, port, database_url)
        cwd = tmp
    else:
        cmd = [sys.executable, "-m", "bench.echo_bot", "--serve", str(port), fake.api_base]
        cmd.append(fake.token)
        env = dict(os.environ)
        cwd = str(ROOT)
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 90
        while not (await _healthy(port) and (kind != "pufa" or fake.webhook is not None)):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{kind} bot did not start (exit {proc.poll()})")
            await asyncio.sleep(0.1)
        yield f"http://127.0.0.1:{port}/telegram/webhook", proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


async def run_echo_process(n_updates: int, concurrency: int) -> dict[str, Any]:
    """Time ``n_updates`` text messages through the echo bot running as its own process."""
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeBotApi() as fake, bot_process("echo", fake, tmp) as (url, _proc):
            updates = [
                fake.make_message_update(None, 100_000 + i % 1000, None, f"echo {i} 你好")
                for i in range(n_updates)
            ]
            mark = fake.mark()
            figures = await drive_webhook(url, updates, concurrency, headers={HEADER: SECRET})
            replies = sum(1 for c in fake.calls[mark:] if c.method == "sendMessage" and c.ok)
    figures.pop("timings_ms")
    figures.update(replies=replies)
    return figures


async def run_pufa_bench(
    n_updates: int, concurrency: int, database_url: str | None = None
) -> dict[str, Any]:
    """Time ``n_updates`` survey answers (one per person) through ``pufa serve``'s webhook.

    ``database_url`` selects a PostgreSQL database, which is WIPED first; default: a temporary
    SQLite file.
    """
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            FakeBotApi() as fake,
            bot_process("pufa", fake, tmp, database_url) as (url, _proc),
        ):
            users = range(200_000, 200_000 + n_updates)
            opened = await _open_surveys(fake, url, users)
            if opened["ok"] != n_updates:
                raise RuntimeError(f"could not open surveys: {opened['statuses']}")
            presses = []
            for user in users:
                question = [m for m in fake.sent_messages(user) if m.get("reply_markup")][-1]
                data = question["reply_markup"]["inline_keyboard"][1][0]["callback_data"]
                presses.append(
                    fake.make_callback_update(None, user, user, question["message_id"], data)
                )
            mark = fake.mark()
            figures = await drive_webhook(url, presses, concurrency, headers={HEADER: SECRET})
            # the last edits and sends may still be in flight after the final 200
            await fake.wait_for_count(
                lambda c: c.method == "sendMessage" and c.ok, n_updates, timeout=30, since=mark
            )
            calls = fake.calls[mark:]
            edits = sum(1 for c in calls if c.method == "editMessageText" and c.ok)
            second = sum(
                1
                for c in calls
                if c.method == "sendMessage" and str(c.params.get("text", "")).startswith("(2/")
            )
    figures.pop("timings_ms")
    figures.update(edits=edits, next_questions=second)
    return figures


async def run_memory_bench(conversations: int) -> dict[str, Any]:
    """RSS of a ``pufa serve`` process before and after ``conversations`` open surveys."""
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeBotApi() as fake, bot_process("pufa", fake, tmp) as (url, proc):
            # Warm up every code path, then close those conversations: 0 open.
            warm = range(900_000, 900_500)
            await _open_surveys(fake, url, warm)
            cancels = [fake.make_message_update(None, u, None, "/cancel") for u in warm]
            await drive_webhook(url, cancels, 20, headers={HEADER: SECRET})
            await asyncio.sleep(0.5)
            before = _rss_kb(proc.pid)
            opened = await _open_surveys(fake, url, range(1, conversations + 1))
            await asyncio.sleep(0.5)
            after = _rss_kb(proc.pid)
    return {
        "conversations": conversations,
        "opened_ok": opened["ok"],
        "rss_before_mb": before / 1024,
        "rss_after_mb": after / 1024,
        "growth_mb": (after - before) / 1024,
    }


def main(argv: list[str] | None = None) -> None:
    """Print the throughput table (pufa vs echo, medians of ``--repeat`` runs) and memory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("PUFA_BENCH_POSTGRES_URL", ""),
        help="also measure on this PostgreSQL database (WIPED; env PUFA_BENCH_POSTGRES_URL)",
    )
    args = parser.parse_args(argv if argv is not None else [])
    results: dict[str, Any] = {"throughput": [], "memory": None}
    if not args.json:
        print(
            f"{'db':>10} {'conc':>5} {'echo upd/s':>11} {'pufa upd/s':>11} {'ratio':>6} "
            f"{'echo p99':>9} {'pufa p99':>9}   (medians of {args.repeat} runs; ms)"
        )
    databases = [("sqlite", None)] + ([("postgresql", args.postgres)] if args.postgres else [])
    for (db_name, db_url), concurrency in itertools.product(databases, args.concurrency):
        echoes, pufas, ratios = [], [], []
        ok = True
        for _ in range(args.repeat):
            # alternate the two so drift on a noisy machine hits both alike
            echo = asyncio.run(run_echo_process(args.updates, concurrency))
            pufa = asyncio.run(run_pufa_bench(args.updates, concurrency, db_url))
            ok = ok and echo["replies"] == args.updates and pufa["ok"] == args.updates
            ok = ok and pufa["edits"] == args.updates and pufa["next_questions"] == args.updates
            echoes.append(echo)
            pufas.append(pufa)
            ratios.append(pufa["rate_per_s"] / echo["rate_per_s"])
        row = {
            "database": db_name,
            "concurrency": concurrency,
            "echo_per_s": statistics.median(e["rate_per_s"] for e in echoes),
            "pufa_per_s": statistics.median(p["rate_per_s"] for p in pufas),
            "ratio": statistics.median(ratios),
            "ratios": ratios,
            "echo_p99_ms": statistics.median(e["latency_ms"]["p99"] for e in echoes),
            "pufa_p99_ms": statistics.median(p["latency_ms"]["p99"] for p in pufas),
            "all_answered": ok,
        }
        results["throughput"].append(row)
        if not args.json:
            print(
                f"{db_name:>10} {concurrency:>5} {row['echo_per_s']:>11.0f} "
                f"{row['pufa_per_s']:>11.0f} {row['ratio']:>6.2f} "
                f"{row['echo_p99_ms']:>9.1f} {row['pufa_p99_ms']:>9.1f}"
                + ("" if ok else "  (NOT all answered!)"),
                flush=True,
            )
    if args.conversations:
        memory = asyncio.run(run_memory_bench(args.conversations))
        results["memory"] = memory
        if not args.json:
            print(
                f"memory: pufa serve RSS {memory['rss_before_mb']:.1f} MB with 0 open "
                f"conversations → {memory['rss_after_mb']:.1f} MB with "
                f"{memory['opened_ok']} open: growth {memory['growth_mb']:+.1f} MB"
            )
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1:])
