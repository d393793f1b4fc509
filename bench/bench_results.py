"""Survey results over 1,000,000 stored answers next to one hand-written SQL ``GROUP BY``.

The database is the "full" one of ``bench_stored`` (:func:`bench._wrk.full_database`, built once
per ``python -m bench``): ``PUFA_BENCH_STORED`` real responses (default 1,000,000) with one
rating answer each, spread over the survey's 8 indicator questions, the five levels and two
channels. Then, alternately, ``PUFA_BENCH_RESULTS_REPEAT`` times (default 5):

- **pufa**: ``GET /api/v1/surveys/fazhi-2026/results`` of a running ``pufa serve`` (analyst
  bearer token), timed from request to the last byte of the JSON: token check, the SQL
  aggregate per question, option, township and channel, scoring with confidence intervals,
  the per-township and per-channel breakdowns, serialisation;
- **hand SQL**: ``SELECT question, value, count(*) … GROUP BY question, value`` over the same
  answers (real ones only, the 8 indicator questions) through the ``sqlite3`` module, or on
  PostgreSQL through one open ``asyncpg`` connection.

On SQLite, and on PostgreSQL when a server answers on ``PUFA_BENCH_POSTGRES`` (a throw-away
database filled with the same rows, :func:`bench._wrk.full_postgres`).

Reported: the median time of each and their ratio (target: pufa within 2× of the hand SQL),
whether pufa's ``n`` and ``satisfied`` per indicator agree with the hand counts, and the wall
time of one ``pufa results fazhi-2026 --format json`` command (process start-up included).
Run: ``python -m bench bench_results``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from bench._wrk import (
    RATED,
    STORED,
    SURVEY,
    free_port,
    full_database,
    full_postgres,
    postgres_database,
    pufa_cli,
    pufa_env,
    row,
    start,
    stop,
    wait_http,
)

__all__ = ["HAND_SQL", "HAND_SQL_POSTGRES", "TARGET", "main", "measure"]

REPEAT = int(os.environ.get("PUFA_BENCH_RESULTS_REPEAT", "5"))
#: pufa may take at most this many times the hand-written SQL.
TARGET = 2.0
_SATISFIED = {"very_satisfied", "satisfied", "fairly_satisfied"}
#: The hand-written aggregate: counts per indicator question and option, real answers only.
HAND_SQL = (
    "SELECT question, value, count(*) FROM survey_answer"
    " WHERE survey = ? AND sample = 0 AND value IS NOT NULL"
    f" AND question IN ({', '.join('?' * len(RATED))})"
    " GROUP BY question, value"
)


def _get(url: str, token: str) -> tuple[float, dict[str, Any]]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=300) as answer:
        body = answer.read()
    took = time.perf_counter() - started
    data: dict[str, Any] = json.loads(body)
    return took, data


#: The same aggregate in PostgreSQL's dialect.
HAND_SQL_POSTGRES = (
    "SELECT question, value, count(*) FROM survey_answer"
    " WHERE survey = $1 AND NOT sample AND value IS NOT NULL"
    f" AND question IN ({', '.join(f'${n + 2}' for n in range(len(RATED)))})"
    " GROUP BY question, value"
)

Counts = dict[tuple[str, str], int]


class _SQLiteHand:
    """The hand SQL on a SQLite file, through ``sqlite3`` (connecting is part of the time)."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def __call__(self) -> tuple[float, Counts]:
        started = time.perf_counter()
        with sqlite3.connect(self._path) as db:
            found = db.execute(HAND_SQL, (SURVEY, *RATED)).fetchall()
        took = time.perf_counter() - started
        return took, {(q, v): int(n) for q, v, n in found}

    def close(self) -> None:
        """Nothing kept open."""


class _PostgresHand:
    """The hand SQL on PostgreSQL through one ``asyncpg`` connection opened beforehand."""

    def __init__(self, url: str) -> None:
        self._loop = asyncio.new_event_loop()
        dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        self._conn = self._loop.run_until_complete(asyncpg.connect(dsn))

    def __call__(self) -> tuple[float, Counts]:
        started = time.perf_counter()
        found = self._loop.run_until_complete(self._conn.fetch(HAND_SQL_POSTGRES, SURVEY, *RATED))
        took = time.perf_counter() - started
        return took, {(q, v): int(n) for q, v, n in found}

    def close(self) -> None:
        """Close the connection and its loop."""
        self._loop.run_until_complete(self._conn.close())
        self._loop.close()


def _agree(report: dict[str, Any], counts: dict[tuple[str, str], int]) -> bool:
    """Whether pufa's ``n`` and ``satisfied`` per indicator match the hand counts."""
    by_code = {i["code"]: i for i in report["indicators"]}
    for question in RATED:
        mine = {v: n for (q, v), n in counts.items() if q == question}
        known = sum(n for v, n in mine.items() if v != "unknown")
        satisfied = sum(n for v, n in mine.items() if v in _SATISFIED)
        found = by_code.get(question)
        if found is None or found["n"] != known or found["satisfied"] != satisfied:
            return False
    return True


def main() -> list[dict[str, Any]]:
    """Time pufa's results and the hand SQL on SQLite (and PostgreSQL); return the rows."""
    workdir = Path(tempfile.mkdtemp(prefix="pufa-bench-results-"))
    rows: list[dict[str, Any]] = []
    try:
        path = workdir / "full.db"
        full_database(path)
        rows += measure("sqlite", f"sqlite+aiosqlite:///{path}", _SQLiteHand(path), workdir)
        name = f"pufa_bench_results_{os.getpid()}"
        url = full_postgres(name)
        if url is None:
            print("PostgreSQL not available: results measured on SQLite only", flush=True)
        else:
            try:
                rows += measure("postgresql", url, _PostgresHand(url), workdir)
            finally:
                postgres_database(name, "drop")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


def measure(
    database: str, url: str, hand: _SQLiteHand | _PostgresHand, workdir: Path
) -> list[dict[str, Any]]:
    """Serve ``url`` (a full database), time its results and ``hand`` alternately; the rows."""
    proc = None
    try:
        env = pufa_env(url, workdir, PUFA_AUTO_MIGRATE="false")
        token = pufa_cli(env, workdir, "token", "create", "--role", "analyst").strip()
        token = token.splitlines()[-1]
        port = free_port()
        proc = start([sys.executable, "-m", "bot", "serve", "--port", str(port)], env, workdir)
        wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        endpoint = f"http://127.0.0.1:{port}/api/v1/surveys/{SURVEY}/results"
        _get(endpoint, token)  # warm: imports, caches, the database pages
        hand()
        pufa_times, hand_times = [], []
        report: dict[str, Any] = {}
        counts: Counts = {}
        for n in range(REPEAT):
            for name in ("pufa", "hand") if n % 2 == 0 else ("hand", "pufa"):
                if name == "pufa":
                    took, report = _get(endpoint, token)
                    pufa_times.append(took)
                else:
                    took, counts = hand()
                    hand_times.append(took)
        stop(proc)
        proc = None
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "bot", "results", SURVEY, "--format", "json"],
            cwd=workdir, env=env, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        cli = time.perf_counter() - started
    finally:
        stop(proc)
        hand.close()
    pufa_ms = statistics.median(pufa_times) * 1000
    hand_ms = statistics.median(hand_times) * 1000
    agree = _agree(report, counts)
    total = sum(counts.values())
    ratio = pufa_ms / hand_ms if hand_ms else None
    print(
        f"{database}: results over {total:,} answers: GET results {pufa_ms:.0f} ms, hand SQL"
        f" {hand_ms:.0f} ms (medians of {REPEAT}) -> {ratio:.2f}x; counts agree: {agree};"
        f" `pufa results` command {cli:.1f} s",
        flush=True,
    )
    case = f"{database}, {total:,} answers ({STORED:,} responses)"
    return [
        row(
            "results", case, "ms GET results vs hand SQL", pufa_ms, baseline=hand_ms,
            ratio=ratio, target=f"<= {TARGET:g}x",
            met=ratio is not None and ratio <= TARGET and agree,
            pufa_ms_runs=[t * 1000 for t in pufa_times],
            hand_ms_runs=[t * 1000 for t in hand_times], counts_agree=agree,
        ),
        row("results", case, "pufa n/satisfied = hand counts", float(agree), target="1",
            met=agree),
        row("results", case, "s `pufa results --format json` (with start-up)", cli),
    ]  # fmt: skip


if __name__ == "__main__":
    main()
