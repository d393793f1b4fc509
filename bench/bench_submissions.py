"""Submissions through pufa next to the thinnest raw-driver handler, same run, same machine.

- **pufa**: ``pufa serve`` (its own process) takes ``POST /api/v1/surveys/fazhi-2026/responses``
  with a complete answer set, a fresh single-use invitation token and a fresh
  ``Idempotency-Key`` per request: it validates every answer, checks the token, the respondent
  and the key, and stores the response and its answers (a 2xx only after the commit);
- **raw**: :mod:`bench.raw_server` (its own process): one ``INSERT`` + ``COMMIT`` of the raw
  body through ``aiosqlite`` (SQLite in WAL mode, ``synchronous=NORMAL``: less I/O per commit
  than pufa's ``FULL``) or ``asyncpg`` (PostgreSQL), nothing else;
  the baseline of the targets;
- **raw2**: :data:`RAW_PROCESSES` processes of that handler sharing one port: one process is
  one event loop, and on two cores two of them store more per second (on SQLite with a far
  worse p99, its waiting writers sleep-polling for the lock). The throughput ceiling of this
  I/O on the machine, reported next to the targets without one of its own.

``wrk`` (one thread, its own process) drives each at 50 and 200 connections for
``PUFA_BENCH_SECONDS``, the two servers alternating (which goes first alternates by round) for
``PUFA_BENCH_ROUNDS`` rounds, after a short warm-up of each. Reported per database and
connection count: requests/s, p50 and p99 of each (means over rounds), the throughput ratio
pufa/raw (targets: ≥ 0.5 at 50 connections, ≥ 0.7 at 200) and the p99 ratio (target ≤ 2), the
server CPU time per request (less sensitive to a busy machine than throughput), and the CPU
used by wrk and by each server (fractions of one core) to show wrk has CPU to spare.

Then, with both servers stopped, **the storage path alone**: ``PUFA_BENCH_TOKENS``
submissions prepared as the web handler prepares them (pseudonym, the token's keyed hash, an
``Idempotency-Key`` each) and stored by the writer ``pufa serve`` uses, in batches of
:data:`ALONE_BATCH` (SQLite's writer process; PostgreSQL's writer over its four
connections), from this process with no HTTP and nothing else running (the first batch,
which starts the writer, is not timed): how fast pufa could store submissions if answering HTTP cost
nothing, next to the raw handler's figure at 200 connections (a ceiling, no target; with
``PUFA_BENCH_SERVER_ROOT`` it is still this checkout's writer).

PostgreSQL is measured too when a server answers on ``PUFA_BENCH_POSTGRES`` (throw-away
databases, dropped afterwards). Run: ``python -m bench bench_submissions``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._wrk import (
    ANSWERS,
    ROOT,
    ROUNDS,
    SECONDS,
    SECRET,
    SUBMIT_LUA,
    SURVEY,
    TOKENS_PER_RUN,
    check_tokens,
    cpu_seconds,
    free_port,
    have_wrk,
    make_tokens,
    postgres_database,
    pufa_cli,
    pufa_env,
    row,
    run_wrk,
    start,
    stop,
    wait_http,
    write_tokens,
)

__all__ = [
    "ALONE_BATCH",
    "CONNECTIONS",
    "RAW_PROCESSES",
    "TARGETS",
    "main",
    "measure",
    "storage_alone",
]

#: wrk connection counts measured.
CONNECTIONS = (50, 200)
#: Processes of the second baseline (the raw handler sharing one port).
RAW_PROCESSES = 2
#: Throughput target (pufa/raw) per connection count; the p99 ratio target is ≤ 2 for both.
TARGETS = {50: 0.5, 200: 0.7}
P99_TARGET = 2.0
WARMUP_SECONDS = 2
WARMUP_TOKENS = 20_000
#: Submissions a batch when the storage path is timed alone (the web server's batches held
#: about 95 at 200 connections).
ALONE_BATCH = 100

_PATH = f"/api/v1/surveys/{SURVEY}/responses"
_RAW_LUA = """
local body = '{"answers":%(answers)s,"token":"%(token)s","lang":"zh_CN"}'
request = function()
  return wrk.format("POST", "/submit", {["Content-Type"] = "application/json"}, body)
end
"""


def measure(
    database: str, pufa_url: str, raw_target: str, workdir: Path, raw2: str | None = None
) -> list[dict[str, Any]]:
    """Run pufa on ``pufa_url``, the raw handler on ``raw_target`` (a SQLite path or an
    asyncpg DSN) and two processes of it on ``raw2`` (default: ``raw_target``); drive them in
    turn; return the table rows."""
    env = pufa_env(pufa_url, workdir, PUFA_AUTO_MIGRATE="false")
    pufa_cli(env, workdir, "db", "upgrade")
    pufa_cli(env, workdir, "seed")
    runs = len(CONNECTIONS) * ROUNDS
    tokens = make_tokens(pufa_url, TOKENS_PER_RUN, runs)
    files = write_tokens(tokens, workdir, database, TOKENS_PER_RUN)
    warm_tokens = make_tokens(pufa_url, WARMUP_TOKENS, 1)
    warm_file = write_tokens(warm_tokens, workdir, f"{database}-warm", WARMUP_TOKENS)[0]
    ports = {"pufa": free_port(), "raw": free_port(), "raw2": free_port()}
    procs: dict[str, list[Any]] = {}
    try:
        serve = [sys.executable, "-m", "bot", "serve", "--port", str(ports["pufa"])]
        procs["pufa"] = [start(serve, env, workdir)]
        kind = "sqlite" if database == "sqlite" else "postgres"
        raw_env = {**os.environ, "PYTHONPATH": str(ROOT)}
        raw_cmd = [sys.executable, "-m", "bench.raw_server", kind]
        procs["raw"] = [start([*raw_cmd, raw_target, str(ports["raw"])], raw_env, ROOT)]
        # The second baseline: the raw handler's processes sharing one port, started one
        # after the other (each creates its table if missing).
        raw2_target = raw2 if raw2 is not None else raw_target
        procs["raw2"] = []
        for name in ("pufa", "raw"):
            wait_http(f"http://127.0.0.1:{ports[name]}/healthz", procs[name][0])
        for _ in range(RAW_PROCESSES):
            proc = start([*raw_cmd, raw2_target, str(ports["raw2"]), "shared"], raw_env, ROOT)
            procs["raw2"].append(proc)
            wait_http(f"http://127.0.0.1:{ports['raw2']}/healthz", proc)

        def script(name: str, token_file: Path, run: str) -> str:
            if name != "pufa":
                return _RAW_LUA % {"answers": ANSWERS, "token": "x" * 43}
            return SUBMIT_LUA % {
                "tokens": token_file, "answers": ANSWERS, "run": run, "path": _PATH
            }  # fmt: skip

        def drive(name: str, connections: int, seconds: float, tokens: Path, run: str) -> Any:
            return run_wrk(
                f"http://127.0.0.1:{ports[name]}/",
                script(name, tokens, run),
                connections=connections,
                seconds=seconds,
                servers={f"{name}-{n}": proc.pid for n, proc in enumerate(procs[name])},
                workdir=workdir,
                name=f"{database}-{run}",
            )

        for name in ("raw", "raw2", "pufa"):
            drive(name, 50, WARMUP_SECONDS, warm_file, f"warm-{name}")
        print(
            f"{database}: wrk -t1, {SECONDS} s a run, {ROUNDS} rounds, {os.cpu_count()} CPUs",
            flush=True,
        )
        figures: dict[tuple[str, int], list[dict[str, Any]]] = {}
        run = 0
        for r in range(ROUNDS):
            for connections in CONNECTIONS:
                order = ("raw", "raw2", "pufa") if r % 2 == 0 else ("pufa", "raw2", "raw")
                for name in order:
                    result = drive(name, connections, SECONDS, files[run], f"r{r}c{connections}")
                    if name == "pufa":
                        check_tokens(result, TOKENS_PER_RUN)
                    result["server_cpu"] = sum(result["cpu"].values())
                    figures.setdefault((name, connections), []).append(result)
                    print(
                        f"  {name:4} c={connections:3} round {r + 1}: {result['rate']:7.0f}"
                        f" req/s  p50 {result['p50_ms']:6.1f} ms  p99 {result['p99_ms']:6.1f} ms"
                        f"  non-2xx {result['non2xx']}  wrk CPU {result['wrk_cpu']:.0%},"
                        f" server CPU {result['server_cpu']:.0%} {result['socket_errors']}",
                        flush=True,
                    )
                run += 1
    finally:
        for group in procs.values():
            for proc in group:
                stop(proc)
    alone = storage_alone(pufa_url, TOKENS_PER_RUN)
    print(
        f"  storage alone: {alone['rate']:7.0f} submissions/s in batches of {ALONE_BATCH},"
        f" {alone['cpu_ms']:.3f} ms CPU each (bench and writer processes),"
        f" {alone['stored']:,} stored",
        flush=True,
    )
    raw200 = _mean(figures[("raw", max(CONNECTIONS))], "rate")
    return [
        *_rows(database, figures),
        row(
            "submissions", f"{database}, storage alone", "subm./s, writer alone vs raw @200",
            alone["rate"], baseline=raw200, ratio=alone["rate"] / raw200,
            cpu_ms=alone["cpu_ms"], stored=alone["stored"], seconds=alone["seconds"],
        ),
    ]  # fmt: skip


def storage_alone(database_url: str, count: int) -> dict[str, Any]:
    """Store ``count`` fresh submissions through pufa's storage path alone (see the module's
    docstring); ``rate`` (submissions/s), ``cpu_ms`` (CPU per submission of this process and
    its children: on SQLite the writer process; PostgreSQL's own is not counted), ``stored``
    and ``seconds``. Raises if any submission was not stored."""
    tokens = make_tokens(database_url, count, 1)
    return asyncio.run(_store_alone(database_url, tokens))


async def _store_alone(database_url: str, tokens: list[str]) -> dict[str, Any]:
    from storage.db import asyncpg_dsn, create_engine
    from storage.types import utcnow
    from surveys.postgres_writer import PostgresBatchWriter
    from surveys.respondents import invitation_hash, pseudonym
    from surveys.routes import COMMIT_WORKERS_POSTGRES
    from surveys.schema import load_catalog
    from surveys.sqlite_writer import SQLiteWriterProcess
    from surveys.submission import Submission, SubmitResult

    secret = SECRET.encode()
    survey = load_catalog()[SURVEY]
    answers = json.loads(ANSWERS)
    now = utcnow()
    items = [
        Submission(
            survey=survey, answers=answers, respondent=pseudonym(secret, "token", token),
            channel="api", township_code=None, locale="zh_CN", now=now, token=token,
            idempotency_key=f"alone-{n}", token_hash=invitation_hash(secret, token),
        )
        for n, token in enumerate(tokens)
    ]  # fmt: skip
    engine = create_engine(database_url)
    writer: SQLiteWriterProcess | PostgresBatchWriter
    if engine.dialect.name == "sqlite":
        writer, lanes = SQLiteWriterProcess(str(engine.url.database)), 1
    else:
        lanes = COMMIT_WORKERS_POSTGRES
        writer = PostgresBatchWriter(asyncpg_dsn(engine.url), lanes)
    await engine.dispose()
    batches = iter(range(0, len(items), ALONE_BATCH))
    stored = 0

    async def store(start_at: int) -> None:
        nonlocal stored
        outcomes = await writer.store(items[start_at : start_at + ALONE_BATCH])
        stored += sum(isinstance(o, SubmitResult) and o.created for o in outcomes)

    async def lane() -> None:
        for start_at in batches:  # the lanes share the iterator: each batch stored once
            await store(start_at)

    try:
        await store(next(batches))  # the first batch: the writer started, connections open
        first = stored
        started, cpu = time.perf_counter(), cpu_seconds(os.getpid())
        await asyncio.gather(*(lane() for _ in range(lanes)))
        seconds = time.perf_counter() - started
        cpu_ms = 1000 * (cpu_seconds(os.getpid()) - cpu) / (stored - first)
    finally:
        await writer.close()
    if stored != len(items):
        raise RuntimeError(f"storage alone: {stored} of {len(items)} submissions stored")
    return {
        "rate": (stored - first) / seconds,
        "cpu_ms": cpu_ms,
        "stored": stored,
        "seconds": seconds,
    }


def _mean(results: list[dict[str, Any]], key: str) -> float:
    return statistics.mean(float(r[key]) for r in results)


def _rows(database: str, figures: dict[tuple[str, int], list[dict[str, Any]]]) -> list[Any]:
    rows = []
    for connections in CONNECTIONS:
        pufa, raw = figures[("pufa", connections)], figures[("raw", connections)]
        raw2 = figures[("raw2", connections)]
        case = f"{database}, {connections} conns"
        rate, base = _mean(pufa, "rate"), _mean(raw, "rate")
        p99, base99 = _mean(pufa, "p99_ms"), _mean(raw, "p99_ms")
        bad = sum(r["non2xx"] for r in pufa) + sum(r["non2xx"] for r in raw)
        extra = {
            "runs": {"pufa": pufa, "raw": raw},
            "non2xx": bad,
            "wrk_cpu": max(r["wrk_cpu"] for r in pufa + raw + raw2),
            "pufa_cpu": _mean(pufa, "server_cpu"),
            "raw_cpu": _mean(raw, "server_cpu"),
        }
        ratio = rate / base if base else None
        target = TARGETS[connections]
        rows.append(row(
            "submissions", case, "req/s pufa vs raw driver", rate, baseline=base, ratio=ratio,
            target=f">= {target}x", met=ratio is not None and ratio >= target and bad == 0,
            **extra,
        ))  # fmt: skip
        rows.append(row("submissions", case, "p50 ms pufa vs raw", _mean(pufa, "p50_ms"),
                        baseline=_mean(raw, "p50_ms")))  # fmt: skip
        ratio99 = p99 / base99 if base99 else None
        rows.append(row(
            "submissions", case, "p99 ms pufa vs raw", p99, baseline=base99, ratio=ratio99,
            target=f"<= {P99_TARGET:g}x", met=ratio99 is not None and ratio99 <= P99_TARGET,
        ))  # fmt: skip
        rate2, p99_2 = _mean(raw2, "rate"), _mean(raw2, "p99_ms")
        rows.append(row(
            "submissions", case, f"req/s pufa vs raw, {RAW_PROCESSES} processes (no target)",
            rate, baseline=rate2, ratio=rate / rate2, runs=raw2,
            non2xx=sum(r["non2xx"] for r in raw2),
        ))  # fmt: skip
        rows.append(row(
            "submissions", case, f"p99 ms pufa vs raw, {RAW_PROCESSES} processes", p99,
            baseline=p99_2, ratio=p99 / p99_2,
        ))  # fmt: skip
        cpu_ms = statistics.mean(1000 * r["server_cpu"] / r["rate"] for r in pufa)
        base_cpu_ms = statistics.mean(1000 * r["server_cpu"] / r["rate"] for r in raw)
        rows.append(row(
            "submissions", case, "server CPU ms/request pufa vs raw", cpu_ms,
            baseline=base_cpu_ms, ratio=cpu_ms / base_cpu_ms,
        ))  # fmt: skip
        rows.append(row(
            "submissions", case, "wrk CPU (core share), max of runs", extra["wrk_cpu"],
            target="< 0.9 (wrk not the bottleneck)", met=extra["wrk_cpu"] < 0.9,
            pufa_cpu=extra["pufa_cpu"], raw_cpu=extra["raw_cpu"],
        ))  # fmt: skip
    return rows


def main() -> list[dict[str, Any]]:
    """Measure on SQLite (and PostgreSQL when it answers); print and return the rows."""
    if not have_wrk():
        return []
    rows: list[dict[str, Any]] = []
    workdir = Path(tempfile.mkdtemp(prefix="pufa-bench-submit-"))
    try:
        rows += measure(
            "sqlite",
            f"sqlite+aiosqlite:///{workdir / 'pufa.db'}",
            str(workdir / "raw.db"),
            workdir,
            raw2=str(workdir / "raw2.db"),
        )
        suffix = os.getpid()
        pufa_pg = postgres_database(f"pufa_bench_submit_{suffix}", "create")
        raw_pg = postgres_database(f"pufa_bench_raw_{suffix}", "create") if pufa_pg else None
        try:
            if pufa_pg and raw_pg:
                dsn = raw_pg.replace("postgresql+asyncpg://", "postgresql://")
                rows += measure("postgresql", pufa_pg, dsn, workdir)
            else:
                print("PostgreSQL not available: measured on SQLite only", flush=True)
        finally:
            for url in (pufa_pg, raw_pg):
                if url:
                    postgres_database(url.rsplit("/", 1)[1], "drop")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


if __name__ == "__main__":
    main()
