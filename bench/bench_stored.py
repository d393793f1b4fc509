"""Submission throughput with 1,000,000 stored responses next to an empty database, same run.

Every submission is checked against what is stored: an earlier answer of the same respondent,
the same ``Idempotency-Key``, the invitation token. Those look-ups must search the unique
indexes ``(survey, respondent)`` / ``(survey, idempotency_key)`` and the token index, so their
cost does not grow with the table. This benchmark shows it:

- two SQLite databases (WAL, the project's engine settings), migrated by ``pufa db upgrade``:
  **empty** (no response) and **full** (``PUFA_BENCH_STORED`` responses, default 1,000,000,
  bulk-inserted with one answer row each, plus ``ANALYZE``; built once per ``python -m bench``
  and shared with ``bench_results``);
- one ``pufa serve`` process on each, both idle except while driven;
- ``wrk`` (one thread) drives ``POST /api/v1/surveys/fazhi-2026/responses`` with a fresh
  invitation token and a fresh ``Idempotency-Key`` per request at ``PUFA_BENCH_CONNECTIONS``
  (default 50) connections, alternating empty/full for ``PUFA_BENCH_ROUNDS`` rounds of
  ``PUFA_BENCH_SECONDS`` each;
- the CPU time of wrk and of the server are measured per run, to show that the load generator
  is not the bottleneck.

The same again on PostgreSQL when a server answers on ``PUFA_BENCH_POSTGRES`` (two throw-away
databases, the full one filled with the same rows: :func:`bench._wrk.full_postgres`).

Target: the full database keeps at least 90% of the empty one's throughput.
``PUFA_BENCH_SERVER_ROOT`` runs the servers from another checkout (e.g. an older commit) for a
before/after comparison. Run: ``python -m bench bench_stored``.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench._wrk import (
    ANSWERS,
    ROUNDS,
    SECONDS,
    SERVER_ROOT,
    STORED,
    SUBMIT_LUA,
    SURVEY,
    TOKENS_PER_RUN,
    check_tokens,
    free_port,
    full_database,
    full_postgres,
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

__all__ = ["main", "measure"]

CONNECTIONS = int(os.environ.get("PUFA_BENCH_CONNECTIONS", "50"))
TARGET = 0.9


def main() -> list[dict[str, Any]]:
    """Measure on SQLite (and PostgreSQL when it answers); print and return the rows."""
    if not have_wrk():
        return []
    workdir = Path(tempfile.mkdtemp(prefix="pufa-bench-stored-"))
    rows: list[dict[str, Any]] = []
    try:
        full_database(workdir / "full.db")
        urls = {name: f"sqlite+aiosqlite:///{workdir / f'{name}.db'}" for name in ("empty", "full")}
        rows += measure("sqlite", urls, workdir)
        names = {n: f"pufa_bench_stored_{n}_{os.getpid()}" for n in ("empty", "full")}
        full = full_postgres(names["full"])
        empty = postgres_database(names["empty"], "create") if full else None
        try:
            if full and empty:
                rows += measure("postgresql", {"empty": empty, "full": full}, workdir)
            else:
                print("PostgreSQL not available: measured on SQLite only", flush=True)
        finally:
            for name, url in (("full", full), ("empty", empty)):
                if url:
                    postgres_database(names[name], "drop")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


def measure(database: str, urls: dict[str, str], workdir: Path) -> list[dict[str, Any]]:
    """Drive an ``empty`` database (migrated and seeded here) and a ``full`` one (filled
    beforehand) alternately; the rows."""
    procs: dict[str, Any] = {}
    try:
        token_files: dict[str, list[Path]] = {}
        for name, url in urls.items():
            if name == "empty":
                env = pufa_env(url, workdir)
                pufa_cli(env, workdir, "db", "upgrade")
                pufa_cli(env, workdir, "seed")
            tokens = make_tokens(url, TOKENS_PER_RUN, ROUNDS)
            token_files[name] = write_tokens(tokens, workdir, f"{database}-{name}", TOKENS_PER_RUN)
        ports = {}
        for name, url in urls.items():
            env = pufa_env(url, workdir, PUFA_AUTO_MIGRATE="false")
            ports[name] = free_port()
            procs[name] = start(
                [sys.executable, "-m", "bot", "serve", "--port", str(ports[name])], env, workdir
            )
            wait_http(f"http://127.0.0.1:{ports[name]}/healthz", procs[name])
        print(
            f"{database}, wrk -t1 -c{CONNECTIONS} {SECONDS}s a run, {ROUNDS} rounds,"
            f" {os.cpu_count()} CPUs, server from {SERVER_ROOT}",
            flush=True,
        )
        figures: dict[str, list[dict[str, Any]]] = {"empty": [], "full": []}
        for r in range(ROUNDS):
            for name in ("empty", "full") if r % 2 == 0 else ("full", "empty"):
                script = SUBMIT_LUA % {
                    "tokens": token_files[name][r],
                    "answers": ANSWERS,
                    "run": f"{name}{r}",
                    "path": f"/api/v1/surveys/{SURVEY}/responses",
                }
                result = run_wrk(
                    f"http://127.0.0.1:{ports[name]}/",
                    script,
                    connections=CONNECTIONS,
                    seconds=SECONDS,
                    servers={"server": procs[name].pid},
                    workdir=workdir,
                    name=f"{database}-{name}{r}",
                )
                check_tokens(result, TOKENS_PER_RUN)
                figures[name].append(result)
                print(
                    f"  {name:5} round {r + 1}: {result['rate']:7.0f} req/s  p99"
                    f" {result['p99_ms']:6.1f} ms  non-2xx {result['non2xx']}"
                    f"  wrk CPU {result['wrk_cpu']:.0%} of a core, server CPU"
                    f" {result['cpu']['server']:.0%} {result['socket_errors']}",
                    flush=True,
                )
    finally:
        for proc in procs.values():
            stop(proc)
    empty = statistics.mean(r["rate"] for r in figures["empty"])
    full = statistics.mean(r["rate"] for r in figures["full"])
    bad = sum(r["non2xx"] for runs in figures.values() for r in runs)
    ratio = full / empty if empty else None
    print(
        f"{database} summary: empty {empty:.0f} req/s, {STORED:,} stored {full:.0f} req/s"
        f" -> {full / empty:.1%} of the empty database's throughput",
        flush=True,
    )
    case = f"{database}, {STORED:,} stored vs empty, {CONNECTIONS} conns"
    return [
        row(
            "stored", case, "req/s full vs empty", full, baseline=empty, ratio=ratio,
            target=f">= {TARGET}x", met=ratio is not None and ratio >= TARGET and bad == 0,
            non2xx=bad, runs=figures,
        ),
        row(
            "stored", case, "p99 ms full vs empty",
            statistics.mean(r["p99_ms"] for r in figures["full"]),
            baseline=statistics.mean(r["p99_ms"] for r in figures["empty"]),
        ),
        row(
            "stored", case, "wrk CPU (core share), max of runs",
            max(r["wrk_cpu"] for runs in figures.values() for r in runs),
        ),
    ]  # fmt: skip


if __name__ == "__main__":
    main()
