"""What the wrk-driven benchmarks share: processes, databases, tokens, one wrk run, result rows.

The load generator is ``wrk`` (C, one thread, Debian package; ``make bench`` installs it): it
runs in its own process and its CPU time is measured next to the servers', so a figure can
show that the load generator was not the bottleneck. Every server runs as a process of its own
on ``127.0.0.1``. Knobs (environment):

- ``PUFA_BENCH_SECONDS`` (default 10): length of one timed wrk run;
- ``PUFA_BENCH_ROUNDS`` (default 2): rounds, alternating the servers compared;
- ``PUFA_BENCH_TOKENS`` (default 160,000): invitation tokens prepared for one submission run
  (a run that sends more requests than that fails: wrk would send used tokens again);
- ``PUFA_BENCH_STORED`` (default 1,000,000): responses in the "full" database
  (:func:`full_database`, shared by ``bench_stored`` and ``bench_results``);
- ``PUFA_BENCH_SERVER_ROOT``: run pufa from another checkout (before/after comparisons);
- ``PUFA_BENCH_POSTGRES`` (default ``postgresql+asyncpg://postgres@127.0.0.1:5432``): the
  PostgreSQL server for throw-away databases (``off`` to skip PostgreSQL).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "ANSWERS",
    "RATED",
    "ROOT",
    "ROUNDS",
    "SECONDS",
    "SECRET",
    "SERVER_ROOT",
    "STORED",
    "SUBMIT_LUA",
    "SURVEY",
    "TOKENS_PER_RUN",
    "check_tokens",
    "cpu_seconds",
    "fill_stored",
    "free_port",
    "full_database",
    "have_wrk",
    "make_tokens",
    "postgres_database",
    "pufa_cli",
    "pufa_env",
    "row",
    "rss_kb",
    "run_wrk",
    "start",
    "stop",
    "wait_http",
    "write_tokens",
]

ROOT = Path(__file__).resolve().parents[1]
SERVER_ROOT = Path(os.environ.get("PUFA_BENCH_SERVER_ROOT", str(ROOT)))
SECRET = "bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
SURVEY = "fazhi-2026"
SECONDS = int(os.environ.get("PUFA_BENCH_SECONDS", "10"))
ROUNDS = int(os.environ.get("PUFA_BENCH_ROUNDS", "2"))
TOKENS_PER_RUN = int(os.environ.get("PUFA_BENCH_TOKENS", "160000"))
STORED = int(os.environ.get("PUFA_BENCH_STORED", "1000000"))
POSTGRES = os.environ.get("PUFA_BENCH_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432")

#: One complete answer set of the survey, as JSON (the body of every submission).
ANSWERS = (
    '{"business_env":"satisfied","public_service":"very_satisfied",'
    '"major_decisions":"fairly_satisfied","law_enforcement":"satisfied",'
    '"oversight":"satisfied","info_disclosure":"dissatisfied",'
    '"dispute_resolution":"satisfied","rule_of_law_overall":"very_satisfied",'
    '"channels":["mobile","wechat"],"comment":"希望多开展普法进社区活动"}'
)

#: wrk script: each request a submission with the next invitation token of a file and its
#: own ``Idempotency-Key``. Format with ``tokens`` (path), ``run`` (key prefix), ``path``.
SUBMIT_LUA = """
local tokens = {}
for line in io.lines("%(tokens)s") do tokens[#tokens + 1] = line end
local i = 0
request = function()
  i = i + 1
  local token = tokens[((i - 1) %% #tokens) + 1]
  local body = '{"answers":%(answers)s,"token":"' .. token .. '","lang":"zh_CN"}'
  local headers = {}
  headers["Content-Type"] = "application/json"
  headers["Idempotency-Key"] = "%(run)s-" .. i
  return wrk.format("POST", "%(path)s", headers, body)
end
"""

# The 8 rating questions (indicators) of the survey and the five 好差评 levels.
RATED = (
    "business_env",
    "public_service",
    "major_decisions",
    "law_enforcement",
    "oversight",
    "info_disclosure",
    "dispute_resolution",
    "rule_of_law_overall",
)
_CHANNELS = ("h5", "telegram")
_LEVELS = ("very_satisfied", "satisfied", "fairly_satisfied", "dissatisfied", "very_dissatisfied")


def have_wrk() -> bool:
    """Whether ``wrk`` is on the PATH (print why not otherwise)."""
    if shutil.which("wrk") is None:
        print("wrk is not installed: `make bench` installs it (apt-get install wrk)", flush=True)
        return False
    return True


def row(
    benchmark: str,
    case: str,
    figure: str,
    value: float | None,
    *,
    baseline: float | None = None,
    ratio: float | None = None,
    target: str = "",
    met: bool | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One line of the final table (and of ``bench/results.json``)."""
    return {
        "benchmark": benchmark,
        "case": case,
        "figure": figure,
        "value": value,
        "baseline": baseline,
        "ratio": ratio,
        "target": target,
        "met": met,
        **extra,
    }


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pufa_env(database_url: str, workdir: Path, **extra: str) -> dict[str, str]:
    """The environment of a ``pufa`` process on ``database_url`` (no inherited ``PUFA_*``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUFA_")}
    env.update(
        PUFA_DATABASE_URL=database_url,
        PUFA_SECRET_KEY=SECRET,
        PUFA_LOG_LEVEL="WARNING",
        PUFA_LOG_FORMAT="text",
        PUFA_DATA_DIR=str(workdir / "data"),
        PYTHONPATH=str(SERVER_ROOT),
    )
    env.update(extra)
    return env


def pufa_cli(env: Mapping[str, str], cwd: Path, *args: str) -> str:
    """Run ``pufa ARGS`` to completion; return its stdout."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=cwd, env=dict(env), check=True,
        stdout=subprocess.PIPE, text=True,
    ).stdout  # fmt: skip


def start(cmd: Sequence[str], env: Mapping[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    """Start a server process (output discarded but for errors)."""
    return subprocess.Popen(list(cmd), cwd=cwd, env=dict(env), stdout=subprocess.DEVNULL)


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    """Terminate ``proc`` (kill it after 15 s)."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_http(url: str, proc: subprocess.Popen[bytes], seconds: float = 120) -> None:
    """Wait until ``url`` answers 2xx (``RuntimeError`` if ``proc`` dies or time runs out)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process ``pid`` and its running descendants
    (``pufa serve`` stores SQLite submissions in a child process), and by any descendants that
    exited and were waited for."""
    ticks = 0
    for one in [pid, *_descendants(pid)]:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        # utime, stime; for the process itself also cutime, cstime (children waited for)
        ticks += sum(int(f) for f in fields[11 : 15 if one == pid else 13])
    return ticks / os.sysconf("SC_CLK_TCK")


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], list(children.get(pid, []))
    while todo:
        one = todo.pop()
        found.append(one)
        todo.extend(children.get(one, []))
    return found


def rss_kb(pid: int) -> int:
    """Resident set size of process ``pid`` in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _ms(match: re.Match[str] | None) -> float:
    if match is None:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def run_wrk(
    url: str,
    script: str,
    *,
    connections: int,
    seconds: float,
    servers: Mapping[str, int],
    workdir: Path,
    name: str,
) -> dict[str, Any]:
    """Drive ``url`` with ``wrk -t1 -c CONNECTIONS`` and the Lua ``script``; return figures.

    ``servers`` names the processes (name → pid) whose CPU time is measured over the run.
    Returns ``rate`` (requests/s), ``requests``, ``p50_ms``, ``p75_ms``, ``p90_ms``, ``p99_ms``,
    ``non2xx``, ``socket_errors`` (wrk's line, empty if none), ``wrk_cpu`` and ``cpu`` (name →
    fraction of one core used over the run).
    """
    path = workdir / f"{name}.lua"
    path.write_text(script, encoding="utf-8")
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    before = {k: cpu_seconds(pid) for k, pid in servers.items()}
    started = time.perf_counter()
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "--latency",
         "-s", str(path), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    elapsed = time.perf_counter() - started
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (after_children.ru_utime + after_children.ru_stime) - (
        before_children.ru_utime + before_children.ru_stime
    )
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if rate is None or total is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    return {
        "rate": float(rate.group(1)),
        "requests": int(total.group(1)),
        "p50_ms": _ms(re.search(r"50%\s+([\d.]+)(us|ms|s)\b", out)),
        "p75_ms": _ms(re.search(r"75%\s+([\d.]+)(us|ms|s)\b", out)),
        "p90_ms": _ms(re.search(r"90%\s+([\d.]+)(us|ms|s)\b", out)),
        "p99_ms": _ms(re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)),
        "non2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1).strip() if errors else "",
        "wrk_cpu": wrk_cpu / elapsed,
        "cpu": {k: (cpu_seconds(pid) - before[k]) / elapsed for k, pid in servers.items()},
    }


# ------------------------------------------------------------------------------ databases


def fill_stored(database_url: str, stored: int) -> None:
    """Bulk-insert ``stored`` real (non-sample) responses into a SQLite or PostgreSQL database,
    one rating answer each, then ``ANALYZE``. The answers are spread over the 8 indicator
    questions, the five levels and two channels (no township), so results have something to
    count; both databases get the same rows."""
    if database_url.startswith("postgresql"):
        asyncio.run(_fill_postgres(database_url, stored))
    else:
        asyncio.run(_fill(database_url, stored))


# The rows of _fill, generated inside PostgreSQL (generate_series) instead of sent from here
# (i * 2654435761 stays below 2**64 for any i a benchmark uses, so no modulo is needed).
_PG_FILL = (
    "INSERT INTO survey_response (id, survey, respondent, channel, township, locale,"
    " idempotency_key, invitation_id, sample, created_at)"
    " SELECT i, $1, lpad(to_hex(i * 2654435761), 16, '0') || lpad(to_hex(i), 48, '0'),"
    " ($2::text[])[i % 2 + 1], NULL, 'zh_CN',"
    " 'stored-' || i, NULL, false, timestamptz '2026-03-01 08:00:00+00'"
    " FROM generate_series($3::bigint, $4::bigint) AS i",
    "INSERT INTO survey_answer (response_id, survey, question, value, channel)"
    " SELECT i, $1, ($2::text[])[i % 8 + 1], ($3::text[])[(i / 8 + i / 5) % 5 + 1],"
    " ($4::text[])[i % 2 + 1] FROM generate_series($5::bigint, $6::bigint) AS i",
)


async def _fill_postgres(database_url: str, stored: int) -> None:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        step = 250_000
        for begin in range(1, stored + 1, step):
            end = min(stored, begin + step - 1)
            async with conn.transaction():
                await conn.execute(_PG_FILL[0], SURVEY, list(_CHANNELS), begin, end)
                await conn.execute(
                    _PG_FILL[1], SURVEY, list(RATED), list(_LEVELS), list(_CHANNELS), begin, end
                )
        for table in ("survey_response", "survey_answer"):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" (SELECT max(id) FROM {table}))"
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def _fill(database_url: str, stored: int) -> None:
    from storage.db import create_engine

    engine = create_engine(database_url)
    try:
        step = 100_000
        for begin in range(0, stored, step):
            ids = range(begin + 1, min(stored, begin + step) + 1)
            responses = [
                (i, SURVEY, f"{i * 2654435761 % 2**64:016x}{i:048x}", _CHANNELS[i % 2],
                 None, "zh_CN", f"stored-{i}", None, False, "2026-03-01 08:00:00.000000")
                for i in ids
            ]  # fmt: skip
            answers = [
                (i, SURVEY, RATED[i % 8], _LEVELS[(i // 8 + i // 5) % 5], _CHANNELS[i % 2])
                for i in ids
            ]
            async with engine.begin() as conn:
                await conn.exec_driver_sql(
                    "INSERT INTO survey_response (id, survey, respondent, channel, township,"
                    " locale, idempotency_key, invitation_id, sample, created_at)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?)",
                    responses,
                )
                await conn.exec_driver_sql(
                    "INSERT INTO survey_answer (response_id, survey, question, value, channel)"
                    " VALUES (?,?,?,?,?)",
                    answers,
                )
        async with engine.begin() as conn:
            await conn.exec_driver_sql("ANALYZE")
    finally:
        await engine.dispose()


_FULL: dict[int, Path] = {}


def full_postgres(name: str, stored: int = STORED) -> str | None:
    """A throw-away PostgreSQL database ``name``, migrated, seeded and holding ``stored``
    responses (:func:`fill_stored`); its URL, or ``None`` when PostgreSQL is not available.
    The caller drops it (:func:`postgres_database`)."""
    url = postgres_database(name, "create")
    if url is None:
        return None
    folder = Path(tempfile.mkdtemp(prefix="pufa-bench-full-pg-"))
    try:
        env = pufa_env(url, folder)
        pufa_cli(env, folder, "db", "upgrade")
        pufa_cli(env, folder, "seed")
        started = time.perf_counter()
        fill_stored(url, stored)
        print(
            f"PostgreSQL: stored {stored:,} responses in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return url


def full_database(target: Path, stored: int = STORED) -> float:
    """Copy a migrated, seeded SQLite database with ``stored`` responses to ``target``.

    The first call in a process builds it (``pufa db upgrade``, ``pufa seed``,
    :func:`fill_stored`) in a directory of its own, removed when the process exits; later calls
    copy that file, so ``bench_stored`` and ``bench_results`` share one fill. Returns the
    seconds the fill took (0 for a copy).
    """
    took = 0.0
    if stored not in _FULL or not _FULL[stored].exists():
        folder = Path(tempfile.mkdtemp(prefix="pufa-bench-full-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        path = folder / "full.db"
        url = f"sqlite+aiosqlite:///{path}"
        env = pufa_env(url, folder)
        pufa_cli(env, folder, "db", "upgrade")
        pufa_cli(env, folder, "seed")
        started = time.perf_counter()
        fill_stored(url, stored)
        took = time.perf_counter() - started
        print(f"stored {stored:,} responses in {took:.0f} s", flush=True)
        _FULL[stored] = path
    shutil.copyfile(_FULL[stored], target)
    return took


def make_tokens(database_url: str, count: int, batches: int) -> list[str]:
    """Open the survey and create ``batches`` × ``count`` single-use invitation tokens."""
    return asyncio.run(_tokens(database_url, count, batches))


async def _tokens(database_url: str, count: int, batches: int) -> list[str]:
    from sqlalchemy import update
    from sqlmodel import col

    from storage.db import create_engine, session_factory, transaction
    from storage.models_surveys import SurveyState
    from storage.types import utcnow
    from surveys.invitations import MAX_BATCH, create_invitations

    engine = create_engine(database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            await session.execute(
                update(SurveyState).where(col(SurveyState.code) == SURVEY).values(status="open")
            )
            tokens: list[str] = []
            for n in range(batches):
                # In batches of at most MAX_BATCH, the most one invitation batch may hold.
                for start_at in range(0, count, MAX_BATCH):
                    _, made = await create_invitations(
                        session, SECRET.encode(), SURVEY, township=None,
                        count=min(MAX_BATCH, count - start_at), now=utcnow(),
                        batch=f"bench-{n}-{start_at}-{time.monotonic_ns()}",
                    )  # fmt: skip
                    tokens.extend(made)
        await _settle(engine)
    finally:
        await engine.dispose()
    return tokens


async def _settle(engine: Any) -> None:
    """Leave the database as it is long after its invitations (and, in a full database, its
    stored responses) were made, not in the minutes after: on PostgreSQL every table vacuumed
    and analyzed and the dirty pages written (left alone, autovacuum and the checkpointer did
    that during the first measured round, which made its p99, and its req/s on the full
    database), on SQLite the WAL copied back into the database file."""
    from sqlalchemy import text

    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM (ANALYZE)"))
            await conn.execute(text("CHECKPOINT"))
        else:
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def check_tokens(result: Mapping[str, Any], tokens: int) -> None:
    """Fail a submission run that sent more requests than it had invitation tokens (the
    script starts the list again, and used tokens are refused: the figure would count
    refusals)."""
    if result["requests"] > tokens:
        raise RuntimeError(
            f"{result['requests']:,} requests for {tokens:,} invitation tokens:"
            " raise PUFA_BENCH_TOKENS"
        )


def write_tokens(tokens: list[str], workdir: Path, prefix: str, per_file: int) -> list[Path]:
    """Split ``tokens`` into files of ``per_file`` lines (one file a wrk run)."""
    files = []
    for n in range(len(tokens) // per_file):
        path = workdir / f"{prefix}-tokens-{n}.txt"
        path.write_text("\n".join(tokens[n * per_file : (n + 1) * per_file]))
        files.append(path)
    return files


def postgres_database(name: str, action: str) -> str | None:
    """Create (``action="create"``) or drop a throw-away PostgreSQL database ``name``.

    Returns its SQLAlchemy URL, or ``None`` when no PostgreSQL server answers (or
    ``PUFA_BENCH_POSTGRES=off``).
    """
    if POSTGRES in ("", "off"):
        return None
    url = f"{POSTGRES.rstrip('/')}/{name}"
    if action == "create":
        host, _, port = POSTGRES.rsplit("@", 1)[-1].partition(":")
        try:
            socket.create_connection((host or "127.0.0.1", int(port or 5432)), timeout=2).close()
        except OSError:
            return None
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "pgdb.py"), action, url],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        print(f"PostgreSQL {action} {name} failed: {done.stderr.strip()[-300:]}", flush=True)
        return None
    return url
