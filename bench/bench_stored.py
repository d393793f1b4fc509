"""Submission throughput with 1,000,000 stored responses next to an empty database, same run.

Every submission is checked against what is stored: an earlier answer of the same respondent,
the same ``Idempotency-Key``, the invitation token. Those look-ups must search the unique
indexes ``(survey, respondent)`` / ``(survey, idempotency_key)`` and the token index, so their
cost does not grow with the table. This benchmark shows it:

- two SQLite databases (WAL, the project's engine settings), migrated by ``pufa db upgrade``:
  **empty** (no response) and **full** (``PUFA_BENCH_STORED`` responses, default 1,000,000,
  bulk-inserted with one answer row each, plus ``ANALYZE``);
- one ``pufa serve`` process on each, both idle except while driven;
- ``wrk`` (C, one thread; Debian package, ``make bench`` installs it) drives
  ``POST /api/v1/surveys/fazhi-2026/responses`` with a fresh invitation token and a fresh
  ``Idempotency-Key`` per request, alternating empty/full for ``PUFA_BENCH_ROUNDS`` rounds of
  ``PUFA_BENCH_SECONDS`` each;
- the CPU time of wrk and of the server are measured per run, to show that the load generator
  is not the bottleneck.

``PUFA_BENCH_SERVER_ROOT`` runs the servers from another checkout (e.g. an older commit) for a
before/after comparison. Figures, not a pass/fail test: ``python -m bench bench_stored``.
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SERVER_ROOT = Path(os.environ.get("PUFA_BENCH_SERVER_ROOT", str(ROOT)))
SECRET = "bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
SURVEY = "fazhi-2026"
STORED = int(os.environ.get("PUFA_BENCH_STORED", "1000000"))
SECONDS = int(os.environ.get("PUFA_BENCH_SECONDS", "10"))
ROUNDS = int(os.environ.get("PUFA_BENCH_ROUNDS", "3"))
CONNECTIONS = int(os.environ.get("PUFA_BENCH_CONNECTIONS", "50"))
TOKENS_PER_RUN = int(os.environ.get("PUFA_BENCH_TOKENS", "40000"))

ANSWERS = (
    '{"business_env":"satisfied","public_service":"very_satisfied",'
    '"major_decisions":"fairly_satisfied","law_enforcement":"satisfied",'
    '"oversight":"satisfied","info_disclosure":"dissatisfied",'
    '"dispute_resolution":"satisfied","rule_of_law_overall":"very_satisfied",'
    '"channels":["mobile","wechat"],"comment":"希望多开展普法进社区活动"}'
)

LUA = """
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
  return wrk.format("POST", "/api/v1/surveys/%(survey)s/responses", headers, body)
end
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(database_url: str, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUFA_")}
    env.update(
        PUFA_DATABASE_URL=database_url,
        PUFA_SECRET_KEY=SECRET,
        PUFA_LOG_LEVEL="WARNING",
        PUFA_LOG_FORMAT="text",
        PUFA_DATA_DIR=str(workdir / "data"),
        PYTHONPATH=str(SERVER_ROOT),
    )
    return env


def _pufa(env: dict[str, str], cwd: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, env=env, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip


async def _fill(database_url: str, stored: int) -> None:
    """Bulk-insert ``stored`` responses (one answer row each) and ANALYZE."""
    from storage.db import create_engine

    engine = create_engine(database_url)
    try:
        step = 100_000
        for start in range(0, stored, step):
            stop = min(stored, start + step)
            responses = [
                (i, SURVEY, f"{i * 2654435761 % 2**64:016x}{i:048x}", "h5", None, "zh_CN",
                 f"stored-{i}", None, 0, "2026-03-01 08:00:00.000000")
                for i in range(start + 1, stop + 1)
            ]  # fmt: skip
            answers = [
                (i, SURVEY, "business_env", "satisfied", "h5") for i in range(start + 1, stop + 1)
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


async def _tokens(database_url: str, count: int, batches: int) -> list[str]:
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
            tokens: list[str] = []
            for n in range(batches):  # at most 100,000 a batch
                _, made = await create_invitations(
                    session, SECRET.encode(), SURVEY, township=None, count=count, now=utcnow(),
                    batch=f"bench-{n}",
                )  # fmt: skip
                tokens.extend(made)
    finally:
        await engine.dispose()
    return tokens


def _wait_http(url: str, proc: subprocess.Popen[bytes], seconds: float = 120) -> None:
    import urllib.request

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


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _drive(port: int, server_pid: int, token_file: Path, run: str, workdir: Path) -> dict[str, Any]:
    script = workdir / f"{run}.lua"
    script.write_text(
        LUA % {"tokens": token_file, "answers": ANSWERS, "run": run, "survey": SURVEY},
        encoding="utf-8",
    )
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = _cpu_seconds(server_pid)
    started = time.perf_counter()
    out = subprocess.run(
        ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--latency", "-s", str(script),
         f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    elapsed = time.perf_counter() - started
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (after_children.ru_utime + after_children.ru_stime) - (
        before_children.ru_utime + before_children.ru_stime
    )
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99_ms = 0.0
    if p99:
        value, unit = float(p99.group(1)), p99.group(2)
        p99_ms = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    return {
        "rate": rate,
        "non2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1) if errors else "",
        "p99_ms": p99_ms,
        "wrk_cpu": wrk_cpu / elapsed,
        "server_cpu": (_cpu_seconds(server_pid) - server_before) / elapsed,
    }


def main() -> None:
    """Prepare both databases, start both servers, drive them alternately, print figures."""
    if shutil.which("wrk") is None:
        print("wrk is not installed: `make bench` installs it (apt-get install wrk)")
        return
    workdir = Path(tempfile.mkdtemp(prefix="pufa-bench-stored-"))
    urls = {name: f"sqlite+aiosqlite:///{workdir / f'{name}.db'}" for name in ("empty", "full")}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        token_files: dict[str, list[Path]] = {}
        for name, url in urls.items():
            env = _env(url, workdir)
            _pufa(env, workdir, "db", "upgrade")
            _pufa(env, workdir, "seed")
            if name == "full":
                started = time.perf_counter()
                asyncio.run(_fill(url, STORED))
                print(f"stored {STORED:,} responses in {time.perf_counter() - started:.0f} s",
                      flush=True)  # fmt: skip
            tokens = asyncio.run(_tokens(url, TOKENS_PER_RUN, ROUNDS))
            files = []
            for r in range(ROUNDS):
                path = workdir / f"{name}-tokens-{r}.txt"
                path.write_text("\n".join(tokens[r * TOKENS_PER_RUN : (r + 1) * TOKENS_PER_RUN]))
                files.append(path)
            token_files[name] = files
        ports = {}
        for name, url in urls.items():
            env = _env(url, workdir)
            env["PUFA_AUTO_MIGRATE"] = "false"
            ports[name] = _free_port()
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve", "--port", str(ports[name])],
                cwd=workdir, env=env, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            _wait_http(f"http://127.0.0.1:{ports[name]}/healthz", procs[name])
        print(
            f"SQLite (WAL), wrk -t1 -c{CONNECTIONS} {SECONDS}s a run, {ROUNDS} rounds,"
            f" {os.cpu_count()} CPUs, server from {SERVER_ROOT}",
            flush=True,
        )
        figures: dict[str, list[dict[str, Any]]] = {"empty": [], "full": []}
        for r in range(ROUNDS):
            for name in ("empty", "full"):
                result = _drive(ports[name], procs[name].pid, token_files[name][r], f"{name}{r}",
                                workdir)  # fmt: skip
                figures[name].append(result)
                print(
                    f"  {name:5} round {r + 1}: {result['rate']:7.0f} req/s  p99"
                    f" {result['p99_ms']:6.1f} ms  non-2xx {result['non2xx']}"
                    f"  wrk CPU {result['wrk_cpu']:.0%} of a core, server CPU"
                    f" {result['server_cpu']:.0%} {result['socket_errors']}",
                    flush=True,
                )
        empty = statistics.mean(r["rate"] for r in figures["empty"])
        full = statistics.mean(r["rate"] for r in figures["full"])
        print(
            f"summary: empty {empty:.0f} req/s, {STORED:,} stored {full:.0f} req/s"
            f" -> {full / empty:.1%} of the empty database's throughput"
            f" ({'within' if full >= 0.9 * empty else 'NOT within'} 10%)",
            flush=True,
        )
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
