"""Telegram webhook throughput of a survey step, next to a minimal PTB echo bot, and memory.

**Throughput.** Everything runs in one process on ``127.0.0.1``, exactly like
:mod:`bench.echo_bot`: the fake Bot API, the bot behind ``POST /telegram/webhook`` and the load
generator. For pufa the bot is the whole ``create_app`` (PTB webhook channel, dialog runtime,
SQLite database); each timed update is a button press answering question 1 of an open survey
— one transaction that claims the ``update_id``, reads the identity and conversation and writes
the new state — followed by the edit of the question message and the next question (the
``answerCallbackQuery`` rides in the webhook answer). The echo bot answers a text message with
one ``sendMessage``. Reported: updates/s of each and the ratio pufa/echo per concurrency.

**Memory.** ``pufa serve`` runs as its own process against the fake; its resident set size
(``VmRSS``) is read before and after 10,000 people each open a survey (10,000 open
conversations). State lives in the database, so the process should not grow with them.

Run ``python -m bench bench_telegram`` or ``python -m bench.bench_telegram [--updates N]
[--concurrency 1 10 50] [--conversations 10000] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp import web
from pydantic import SecretStr

from bench._load import drive_webhook
from bench.echo_bot import run_echo_bench
from tests.fakes.telegram_api import FakeBotApi

__all__ = ["main", "run_memory_bench", "run_pufa_bench"]

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


async def run_pufa_bench(
    n_updates: int, concurrency: int, database_url: str | None = None
) -> dict[str, Any]:
    """Time ``n_updates`` survey answers (one per person) through pufa's webhook.

    ``database_url`` selects a PostgreSQL database, which is WIPED first; default: a temporary
    SQLite file.
    """
    from bot.app import create_app
    from bot.settings import Settings

    if database_url:
        await _wipe_postgres(database_url)
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeBotApi() as fake:
            port = _free_port()
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                env="test",
                database_url=database_url or f"sqlite+aiosqlite:///{tmp}/bench.db",
                data_dir=Path(tmp),
                secret_key=SecretStr("bench-secret-key-0123456789abcdef"),
                telegram_token=SecretStr(fake.token),
                telegram_mode="webhook",
                telegram_webhook_secret=SecretStr(SECRET),
                telegram_api_base=fake.api_base,
                public_url=f"http://127.0.0.1:{port}",
                send_rate=1000,
                log_level="WARNING",
            )
            runner = web.AppRunner(create_app(settings), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            url = f"http://127.0.0.1:{port}/telegram/webhook"
            try:
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
                calls = fake.calls[mark:]
                edits = sum(1 for c in calls if c.method == "editMessageText" and c.ok)
                sends = sum(1 for c in calls if c.method == "sendMessage" and c.ok)
                second = sum(
                    1
                    for c in calls
                    if c.method == "sendMessage" and str(c.params.get("text", "")).startswith("(2/")
                )
            finally:
                await runner.cleanup()
    figures.pop("timings_ms")
    figures.update(edits=edits, sends=sends, next_questions=second)
    return figures


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def run_memory_bench(conversations: int) -> dict[str, Any]:
    """RSS of a ``pufa serve`` process before and after ``conversations`` open surveys."""
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeBotApi() as fake:
            port = _free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("PUFA_")}
            env.update(
                PUFA_ENV="test",
                PUFA_DATABASE_URL=f"sqlite+aiosqlite:///{tmp}/mem.db",
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
            proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve"],
                cwd=tmp,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                deadline = time.monotonic() + 60
                while fake.webhook is None:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError("pufa serve did not set its webhook")
                    await asyncio.sleep(0.1)
                url = f"http://127.0.0.1:{port}/telegram/webhook"
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
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz") as r:
                    healthy = r.status == 200
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            gc.collect()
    return {
        "conversations": conversations,
        "opened_ok": opened["ok"],
        "rss_before_mb": before / 1024,
        "rss_after_mb": after / 1024,
        "growth_mb": (after - before) / 1024,
        "healthy": healthy,
    }


def main(argv: list[str] | None = None) -> None:
    """Print the throughput table (pufa vs echo) and the memory figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 50])
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
            f"{'pufa p50 ms':>12}"
        )
    databases = [("sqlite", None)] + ([("postgresql", args.postgres)] if args.postgres else [])
    for (db_name, db_url), concurrency in itertools.product(databases, args.concurrency):
        echo = asyncio.run(run_echo_bench(args.updates, concurrency))
        pufa = asyncio.run(run_pufa_bench(args.updates, concurrency, db_url))
        ok = (
            pufa["ok"] == args.updates
            and pufa["edits"] == args.updates
            and pufa["next_questions"] == args.updates
        )
        row = {
            "database": db_name,
            "concurrency": concurrency,
            "echo_per_s": echo["rate_per_s"],
            "pufa_per_s": pufa["rate_per_s"],
            "ratio": pufa["rate_per_s"] / echo["rate_per_s"],
            "pufa_p50_ms": pufa["latency_ms"]["p50"],
            "all_answered": ok,
        }
        results["throughput"].append(row)
        if not args.json:
            print(
                f"{db_name:>10} {concurrency:>5} {row['echo_per_s']:>11.0f} "
                f"{row['pufa_per_s']:>11.0f} "
                f"{row['ratio']:>6.2f} {row['pufa_p50_ms']:>12.2f}"
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
