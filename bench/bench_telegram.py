"""Telegram webhook: a new person's ``/start s_fazhi-2026`` through pufa next to a PTB echo bot.

Five processes on ``127.0.0.1``, as in production: the fake Bot API (:mod:`bench.fake_api`),
``wrk`` (one thread), and the three bots under test, each alone in its process:

- **pufa**: ``pufa serve`` with Telegram in webhook mode (``PUFA_SEND_RATE=1000``, so its
  outbound rate limit is not what is measured), SQLite. Each request is an update from a person
  never seen before (distinct ``update_id``, ``from.id`` and ``chat.id``, generated in Lua)
  sending ``/start s_fazhi-2026``: one transaction that claims the ``update_id``, creates the
  identity and the conversation, then the survey's opening message (its title and intro above
  the first question, one ``sendMessage`` like the echo bot's) is sent to the fake;
- **echo**: :func:`bench.echo_bot.serve_echo`, a minimal python-telegram-bot application
  behind an aiohttp webhook that answers each text with one ``sendMessage``, same updates, as
  PTB builds it (Bot API calls through httpx): the baseline of the target;
- **echo_aiohttp**: the same echo bot on pufa's aiohttp Bot API transport, which pufa uses
  instead of httpx: a stricter baseline showing what pufa adds above the HTTP client.

Each at 1 and 20 wrk connections for ``PUFA_BENCH_SECONDS``, in rotating order,
``PUFA_BENCH_ROUNDS`` rounds. Reported: updates/s (the webhook answered 200 after the bot's
replies were sent), p50, p99, the ratio pufa/echo (target ≥ 0.7 at 20 connections), messages
sent per update, the CPU of wrk, the bots and the fake, and pufa's resident memory before and
after all those conversations were opened (state lives in the database, so it should not grow
with them).
Run: ``python -m bench bench_telegram``.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench._wrk import (
    ROOT,
    ROUNDS,
    SECONDS,
    free_port,
    have_wrk,
    pufa_cli,
    pufa_env,
    row,
    rss_kb,
    run_wrk,
    start,
    stop,
    wait_http,
)
from bench.echo_bot import WEBHOOK_SECRET
from bench.fake_api import DEFAULT_TOKEN

__all__ = ["CONNECTIONS", "TARGET", "main"]

#: wrk connection counts measured.
CONNECTIONS = (1, 20)
#: Throughput target pufa/echo at 20 connections.
TARGET = 0.7
#: The bots compared: pufa, the PTB echo bot as PTB builds it (httpx), and the same echo bot
#: on pufa's aiohttp Bot API transport (isolates what pufa adds above the HTTP client).
BOTS = ("echo", "pufa", "echo_aiohttp")
WARMUP_SECONDS = 2

# Each request: a new person (ids from BASE + n) sends TEXT in a private chat.
_LUA = """
local n = 0
local base = %(base)d
local date = os.time()
local headers = {}
headers["Content-Type"] = "application/json"
headers["X-Telegram-Bot-Api-Secret-Token"] = "%(secret)s"
request = function()
  n = n + 1
  local id = tostring(base + n)
  local body = '{"update_id":' .. id .. ',"message":{"message_id":1,"from":{"id":' .. id
    .. ',"is_bot":false,"first_name":"测试用户","language_code":"zh-hans"},"chat":{"id":' .. id
    .. ',"type":"private","first_name":"测试用户"},"date":' .. date
    .. ',"text":"%(text)s","entities":[{"type":"bot_command","offset":0,"length":6}]}}'
  return wrk.format("POST", "/telegram/webhook", headers, body)
end
"""
_TEXT = "/start s_fazhi-2026"


def _stats(api_base: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{api_base}{DEFAULT_TOKEN}/benchStats", timeout=30) as answer:
        result: dict[str, Any] = json.loads(answer.read())["result"]
    return result


def _sent(stats: dict[str, Any]) -> int:
    return int(stats["calls"].get("sendMessage:ok", 0))


def _start_fake(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.fake_api"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().decode().strip()
    if not url.startswith("http://127.0.0.1:"):
        stop(proc)
        raise RuntimeError("the fake Bot API did not start")
    return proc, f"{url}/bot"


def _wait_webhook(api_base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while _stats(api_base)["calls"].get("setWebhook:ok", 0) < 1:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("pufa did not set its webhook")
        time.sleep(0.2)


def main() -> list[dict[str, Any]]:
    """Start the fake, pufa and the echo bot; drive them alternately; print and return rows."""
    if not have_wrk():
        return []
    workdir = Path(tempfile.mkdtemp(prefix="pufa-bench-telegram-"))
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        procs["fake"], api_base = _start_fake(workdir)
        ports = {name: free_port() for name in BOTS}
        env = pufa_env(
            f"sqlite+aiosqlite:///{workdir / 'pufa.db'}",
            workdir,
            PUFA_TELEGRAM_TOKEN=DEFAULT_TOKEN,
            PUFA_TELEGRAM_MODE="webhook",
            PUFA_TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
            PUFA_TELEGRAM_API_BASE=api_base,
            PUFA_PUBLIC_URL=f"http://127.0.0.1:{ports['pufa']}",
            PUFA_SEND_RATE="1000",
        )
        pufa_cli(env, workdir, "db", "upgrade")
        pufa_cli(env, workdir, "seed")
        pufa_cli(env, workdir, "surveys", "open", "fazhi-2026")
        env["PUFA_AUTO_MIGRATE"] = "false"
        procs["pufa"] = start(
            [sys.executable, "-m", "bot", "serve", "--port", str(ports["pufa"])], env, workdir
        )
        for name in ("echo", "echo_aiohttp"):
            procs[name] = start(
                [sys.executable, "-m", "bench.echo_bot", "--serve", str(ports[name]), api_base,
                 DEFAULT_TOKEN, *(["--aiohttp"] if name == "echo_aiohttp" else [])],
                {**os.environ, "PYTHONPATH": str(ROOT)}, ROOT,
            )  # fmt: skip
        for name in BOTS:
            wait_http(f"http://127.0.0.1:{ports[name]}/healthz", procs[name])
        _wait_webhook(api_base, procs["pufa"])
        pids = {name: proc.pid for name, proc in procs.items()}
        runs = 0
        opened = 0

        def drive(name: str, connections: int, seconds: float) -> dict[str, Any]:
            nonlocal runs, opened
            runs += 1
            before = _stats(api_base)
            result = run_wrk(
                f"http://127.0.0.1:{ports[name]}/",
                _LUA % {"base": runs * 10_000_000, "secret": WEBHOOK_SECRET, "text": _TEXT},
                connections=connections,
                seconds=seconds,
                servers={n: pids[n] for n in (name, "fake")},
                workdir=workdir,
                name=f"{name}-{runs}",
            )
            time.sleep(0.5)  # replies of the last requests cut off by wrk's stop
            after = _stats(api_base)
            result["sent"] = _sent(after) - _sent(before)
            result["per_update"] = result["sent"] / result["requests"] if result["requests"] else 0
            result["chats"] = after["chats"] - before["chats"]
            result["last_text"] = after["last_text"][:60]
            result["failed_calls"] = sum(
                n - before["calls"].get(k, 0) for k, n in after["calls"].items() if "ok" not in k
            )
            if name == "pufa":
                opened += result["requests"] - result["non2xx"]
            return result

        for name in BOTS:
            drive(name, 20, WARMUP_SECONDS)
        rss_before = rss_kb(pids["pufa"])
        opened = 0
        print(
            f"Telegram webhook, wrk -t1, {SECONDS} s a run, {ROUNDS} rounds,"
            f" {os.cpu_count()} CPUs; each update a new person sending {_TEXT!r}",
            flush=True,
        )
        figures: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for r in range(ROUNDS):
            for connections in CONNECTIONS:
                for name in BOTS[r % 3 :] + BOTS[: r % 3]:
                    result = drive(name, connections, SECONDS)
                    figures.setdefault((name, connections), []).append(result)
                    print(
                        f"  {name:12} c={connections:2} round {r + 1}: {result['rate']:7.0f} upd/s"
                        f"  p50 {result['p50_ms']:6.1f} ms  p99 {result['p99_ms']:6.1f} ms"
                        f"  non-2xx {result['non2xx']}  {result['per_update']:.2f} msgs/update"
                        f"  CPU wrk {result['wrk_cpu']:.0%} bot {result['cpu'][name]:.0%}"
                        f" fake {result['cpu']['fake']:.0%}"
                        f" {result['socket_errors']}  last: {result['last_text']!r}",
                        flush=True,
                    )
        rss_after = rss_kb(pids["pufa"])
    finally:
        for proc in procs.values():
            stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)
    growth = (rss_after - rss_before) / 1024
    print(
        f"memory: pufa serve RSS {rss_before / 1024:.1f} MB -> {rss_after / 1024:.1f} MB"
        f" after {opened:,} new conversations ({growth:+.1f} MB)",
        flush=True,
    )
    memory = row(
        "telegram", f"{opened:,} new conversations", "pufa RSS growth MB", growth,
        rss_before_mb=rss_before / 1024, rss_after_mb=rss_after / 1024,
    )  # fmt: skip
    return [*_rows(figures), memory]


def _rows(figures: dict[tuple[str, int], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    rows = []
    for connections in CONNECTIONS:
        pufa, echo = figures[("pufa", connections)], figures[("echo", connections)]
        fast = figures[("echo_aiohttp", connections)]
        every = pufa + echo + fast
        case = f"/start s_..., {connections} conns"
        rate = statistics.mean(r["rate"] for r in pufa)
        base = statistics.mean(r["rate"] for r in echo)
        base_fast = statistics.mean(r["rate"] for r in fast)
        ratio = rate / base if base else None
        bad = sum(r["non2xx"] + r["failed_calls"] for r in every)
        answered = all(r["per_update"] >= 0.99 for r in every)
        target = f">= {TARGET}x" if connections == 20 else ""
        met = ratio is not None and ratio >= TARGET and bad == 0 and answered
        rows.append(row(
            "telegram", case, "updates/s pufa vs PTB echo bot", rate, baseline=base, ratio=ratio,
            target=target, met=met if connections == 20 else None, errors=bad,
            pufa_messages_per_update=statistics.mean(r["per_update"] for r in pufa),
            echo_messages_per_update=statistics.mean(r["per_update"] for r in echo),
            runs={"pufa": pufa, "echo": echo, "echo_aiohttp": fast},
        ))  # fmt: skip
        rows.append(row(
            "telegram", case, "updates/s pufa vs echo on aiohttp transport", rate,
            baseline=base_fast, ratio=rate / base_fast if base_fast else None,
        ))  # fmt: skip
        p99 = statistics.mean(r["p99_ms"] for r in pufa)
        base99 = statistics.mean(r["p99_ms"] for r in echo)
        rows.append(row("telegram", case, "p50 ms pufa vs PTB echo",
                        statistics.mean(r["p50_ms"] for r in pufa),
                        baseline=statistics.mean(r["p50_ms"] for r in echo)))  # fmt: skip
        rows.append(row("telegram", case, "p99 ms pufa vs PTB echo", p99, baseline=base99,
                        ratio=p99 / base99 if base99 else None))  # fmt: skip
        cpu_ms = statistics.mean(1000 * r["cpu"]["pufa"] / r["rate"] for r in pufa)
        base_cpu_ms = statistics.mean(1000 * r["cpu"]["echo"] / r["rate"] for r in echo)
        rows.append(row(
            "telegram", case, "bot CPU ms/update pufa vs PTB echo", cpu_ms,
            baseline=base_cpu_ms, ratio=cpu_ms / base_cpu_ms,
            echo_aiohttp=statistics.mean(
                1000 * r["cpu"]["echo_aiohttp"] / r["rate"] for r in fast
            ),
        ))  # fmt: skip
        rows.append(row(
            "telegram", case, "wrk CPU (core share), max of runs",
            max(r["wrk_cpu"] for r in every),
            fake_cpu=max(r["cpu"]["fake"] for r in every),
            pufa_cpu=statistics.mean(r["cpu"]["pufa"] for r in pufa),
            echo_cpu=statistics.mean(r["cpu"]["echo"] for r in echo),
            echo_aiohttp_cpu=statistics.mean(r["cpu"]["echo_aiohttp"] for r in fast),
        ))  # fmt: skip
    return rows


if __name__ == "__main__":
    main()
