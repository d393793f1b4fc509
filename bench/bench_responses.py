"""Throughput and latency of ``POST /api/v1/surveys/{survey}/responses`` next to a bare handler.

Two servers run as separate processes on the loopback interface, on the same SQLite database
file (WAL, the project's engine settings):

- **pufa**: the real application (``python -m bot serve``), which validates every answer,
  checks the invitation token and the respondent, honours ``Idempotency-Key`` and stores the
  response and its answers through the group committer (one transaction per batch of
  concurrent requests; a 2xx is sent only after that commit);
- **bare**: a minimal aiohttp handler that does one ``INSERT`` + ``COMMIT`` of the raw body per
  request through the same engine factory, and nothing else.

The same load generator drives both in the same run at 50 and 200 concurrent clients
(alternating, two rounds each), and the ratios pufa/bare of throughput and of p99 latency are
printed. At the end the pufa server is killed with SIGKILL right after its last 2xx and the
stored responses are counted: every 201 must be there.

Run with ``make bench`` (or ``python -m bench bench_responses``). Figures, not a pass/fail test.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
SURVEY = "fazhi-2026"
CONCURRENCY = (50, 200)
REQUESTS = int(os.environ.get("PUFA_BENCH_REQUESTS", "6000"))
ROUNDS = int(os.environ.get("PUFA_BENCH_ROUNDS", "2"))
WARMUP = 300

ANSWERS = {
    "business_env": "satisfied",
    "public_service": "very_satisfied",
    "major_decisions": "fairly_satisfied",
    "law_enforcement": "satisfied",
    "oversight": "satisfied",
    "info_disclosure": "dissatisfied",
    "dispute_resolution": "satisfied",
    "rule_of_law_overall": "very_satisfied",
    "channels": ["mobile", "wechat"],
    "comment": "希望多开展普法进社区活动",
}


# --------------------------------------------------------------------------------------------
# The bare handler (run in its own process)


def serve_bare(port: int, database_url: str) -> None:
    """A bare aiohttp app: one INSERT + COMMIT of the request body per request."""
    from aiohttp import web
    from sqlalchemy import text

    from storage.db import create_engine

    async def ctx(app: web.Application) -> Any:
        engine = create_engine(database_url)
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "CREATE TABLE IF NOT EXISTS bench_bare"
                    " (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"
                )
            )
        app["engine"] = engine
        yield
        await engine.dispose()

    insert = text("INSERT INTO bench_bare (body) VALUES (:body)")

    async def handler(request: web.Request) -> web.Response:
        body = await request.text()
        async with request.app["engine"].begin() as conn:
            await conn.execute(insert, {"body": body})
        return web.json_response({"ok": True}, status=201)

    app = web.Application()
    app.cleanup_ctx.append(ctx)
    app.router.add_post("/bare", handler)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# --------------------------------------------------------------------------------------------
# Load generator


async def drive(
    url: str, bodies: list[bytes], concurrency: int, idempotency: bool
) -> dict[str, Any]:
    """POST each body with ``concurrency`` workers; return rate and latency figures."""
    timings: list[float] = []
    statuses: Counter[str] = Counter()
    index = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal index
        while index < len(bodies):
            body = bodies[index]
            index += 1
            headers = {"Content-Type": "application/json"}
            if idempotency:
                headers["Idempotency-Key"] = uuid.uuid4().hex
            started = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    statuses[str(response.status)] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                statuses[type(exc).__name__] += 1
            timings.append((time.perf_counter() - started) * 1000)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=60)
    ) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    timings.sort()
    return {
        "rate": len(timings) / elapsed,
        "p50": timings[len(timings) // 2],
        "p99": timings[min(len(timings) - 1, int(len(timings) * 0.99))],
        "statuses": dict(statuses),
    }


# --------------------------------------------------------------------------------------------
# Orchestration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


async def _prepare(database_url: str, tokens_needed: int) -> list[str]:
    """Open the survey and create enough invitation tokens for every pufa request."""
    from sqlalchemy import update

    from storage.db import create_engine, session_factory, transaction
    from storage.models_surveys import SurveyState
    from storage.types import utcnow
    from surveys.invitations import create_invitations

    engine = create_engine(database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            await session.execute(
                update(SurveyState).where(SurveyState.code == SURVEY).values(status="open")
            )
            _, tokens = await create_invitations(
                session,
                SECRET.encode(),
                SURVEY,
                township=None,
                count=tokens_needed,
                now=utcnow(),
                batch="bench",
            )
    finally:
        await engine.dispose()
    return tokens


async def _count(database_url: str) -> int:
    from sqlalchemy import text

    from storage.db import create_engine

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text("SELECT count(*) FROM survey_response"))).scalar())
    finally:
        await engine.dispose()


def _pufa_body(token: str) -> bytes:
    return json.dumps({"answers": ANSWERS, "token": token, "lang": "zh_CN"}).encode()


def main() -> None:
    """Run the comparison and print the figures."""
    workdir = Path(tempfile.mkdtemp(prefix="pufa-bench-"))
    database_url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUFA_")}
    env.update(
        PUFA_DATABASE_URL=database_url,
        PUFA_SECRET_KEY=SECRET,
        PUFA_LOG_LEVEL="WARNING",
        PUFA_LOG_FORMAT="text",
        PUFA_DATA_DIR=str(workdir / "data"),
        PYTHONPATH=str(ROOT),
    )
    pufa_port, bare_port = _free_port(), _free_port()
    pufa = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--port", str(pufa_port)],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    bare = None
    try:
        _wait_http(f"http://127.0.0.1:{pufa_port}/healthz", pufa)
        bare = subprocess.Popen(
            [
                sys.executable,
                "-c",
                f"from bench.bench_responses import serve_bare; "
                f"serve_bare({bare_port}, {database_url!r})",
            ],
            cwd=ROOT,
            env=env,
        )
        _wait_http(f"http://127.0.0.1:{bare_port}/bare", bare)
        runs = len(CONCURRENCY) * ROUNDS
        tokens = asyncio.run(_prepare(database_url, runs * REQUESTS + 2 * WARMUP))
        print(
            f"SQLite (WAL), {REQUESTS} requests a run, {ROUNDS} rounds,"
            f" {os.cpu_count()} CPUs, python {sys.version.split()[0]}",
            flush=True,
        )
        pufa_url = f"http://127.0.0.1:{pufa_port}/api/v1/surveys/{SURVEY}/responses"
        bare_url = f"http://127.0.0.1:{bare_port}/bare"
        body_for_bare = _pufa_body("x" * 16)

        def next_tokens(n: int) -> list[str]:
            taken = tokens[:n]
            del tokens[:n]
            return taken

        # warm both servers up (connections, caches)
        asyncio.run(drive(pufa_url, [_pufa_body(t) for t in next_tokens(WARMUP)], 50, True))
        asyncio.run(drive(bare_url, [body_for_bare] * WARMUP, 50, False))

        created = 0
        figures: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for concurrency in CONCURRENCY:
            for _ in range(ROUNDS):
                bare_result = asyncio.run(
                    drive(bare_url, [body_for_bare] * REQUESTS, concurrency, False)
                )
                bodies = [_pufa_body(t) for t in next_tokens(REQUESTS)]
                pufa_result = asyncio.run(drive(pufa_url, bodies, concurrency, True))
                created += pufa_result["statuses"].get("201", 0)
                figures.setdefault(("bare", concurrency), []).append(bare_result)
                figures.setdefault(("pufa", concurrency), []).append(pufa_result)
                for name, result in (("bare", bare_result), ("pufa", pufa_result)):
                    print(
                        f"  {name:4} c={concurrency:3}: {result['rate']:7.0f} req/s"
                        f"  p50 {result['p50']:6.1f} ms  p99 {result['p99']:6.1f} ms"
                        f"  {result['statuses']}",
                        flush=True,
                    )
        print("summary (mean of rounds):")
        for concurrency in CONCURRENCY:
            b = figures[("bare", concurrency)]
            p = figures[("pufa", concurrency)]
            b_rate = statistics.mean(r["rate"] for r in b)
            p_rate = statistics.mean(r["rate"] for r in p)
            b_p99 = statistics.mean(r["p99"] for r in b)
            p_p99 = statistics.mean(r["p99"] for r in p)
            print(
                f"  c={concurrency:3}: pufa {p_rate:6.0f} req/s vs bare {b_rate:6.0f} req/s"
                f" -> throughput ratio {p_rate / b_rate:.2f}x;"
                f" p99 {p_p99:.1f} vs {b_p99:.1f} ms -> p99 ratio {p_p99 / b_p99:.2f}x",
                flush=True,
            )

        # Durability: SIGKILL right after the last 2xx, then count what is stored.
        bodies = [_pufa_body(t) for t in next_tokens(WARMUP)]
        last = asyncio.run(drive(pufa_url, bodies, 50, True))
        created += last["statuses"].get("201", 0)
        pufa.send_signal(signal.SIGKILL)
        pufa.wait()
        stored = asyncio.run(_count(database_url)) - WARMUP
        verdict = "nothing lost" if stored >= created else f"LOST {created - stored}"
        print(
            f"durability: {created} responses answered 201, {stored} stored after kill -9"
            f" ({verdict})"
        )
    finally:
        for proc in (pufa, bare):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    main()
