"""``pufa serve`` killed with SIGKILL in the middle of a submission load.

Concurrent submissions, each with its own ``Idempotency-Key`` and a fresh phone (no cookie),
go to a real ``pufa serve``; once part of them are acknowledged the process is killed with
SIGKILL, started again on the same database, and every submission that got no answer is sent
again with the same key. Then every acknowledged response must be stored exactly once (with
the id it was acknowledged with and all its answers), every key at most once, and nothing
twice.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from storage.db import create_engine, session_factory
from storage.models_surveys import SurveyAnswer, SurveyResponse
from tests.helpers import PUFA, start_serve
from tests.reliability.conftest import fresh_database, serve_env, stop
from tests.reliability.counts import COUNTS, scale
from tests.surveys.conftest import fazhi_answers

SUBMISSIONS = scale(60, 600)
CONCURRENCY = 8
ANSWER_ROWS = 8 + 2 + 1  # eight ratings, two channels, one comment
URL = "/api/v1/surveys/fazhi-2026/responses"


def _body(i: int) -> dict[str, Any]:
    return {"answers": fazhi_answers(comment=f"kill-{i}")}


async def _submit(base: str, i: int) -> tuple[int, dict[str, Any]] | None:
    """One submission as a new phone; ``None`` when no HTTP answer came back."""
    try:
        async with (
            aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as phone,
            phone.post(
                base + URL,
                json=_body(i),
                headers={"Idempotency-Key": f"kill-{i}"},
                timeout=aiohttp.ClientTimeout(total=30),
            ) as response,
        ):
            return response.status, await response.json()
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None


@pytest.mark.timeout(scale(120, 600))
async def test_sigkill_mid_load_loses_no_acknowledged_submission_and_stores_none_twice(
    _template_db: str, tmp_path: Path
) -> None:
    db_url = await asyncio.to_thread(fresh_database, _template_db, tmp_path)
    env = serve_env(db_url, tmp_path)
    for args in (("seed",), ("surveys", "open", "fazhi-2026")):
        done = subprocess.run(
            [*PUFA, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
    proc, port = start_serve(tmp_path, env)
    base = f"http://127.0.0.1:{port}"
    results: dict[int, tuple[int, dict[str, Any]] | None] = {}
    acknowledged = 0
    kill_after = SUBMISSIONS // 3
    gate = asyncio.Semaphore(CONCURRENCY)
    not_sent: set[int] = set()

    async def one(i: int) -> None:
        nonlocal acknowledged
        async with gate:
            if proc.poll() is not None:
                results[i] = None
                not_sent.add(i)
                return
            results[i] = outcome = await _submit(base, i)
        if outcome is not None and 200 <= outcome[0] < 300:
            acknowledged += 1
            if acknowledged == kill_after:
                proc.send_signal(signal.SIGKILL)  # mid-load: other requests are in flight

    try:
        await asyncio.gather(*(one(i) for i in range(SUBMISSIONS)))
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
    finally:
        stop(proc)
    acked = {i: r[1]["response_id"] for i, r in results.items() if r and 200 <= r[0] < 300}
    refused = {i: r for i, r in results.items() if r and not 200 <= r[0] < 300}
    assert not refused, f"submissions refused before the kill: {list(refused.items())[:3]}"
    unanswered = sorted(i for i, r in results.items() if r is None)
    assert len(acked) >= kill_after and unanswered, "the kill came in the middle of the load"
    COUNTS["kill -9: submissions"] += SUBMISSIONS
    COUNTS["kill -9: acknowledged before SIGKILL"] += len(acked)
    COUNTS["kill -9: in flight at SIGKILL (no answer)"] += len(unanswered) - len(not_sent)
    COUNTS["kill -9: not sent before restart"] += len(not_sent)
    COUNTS["kill -9: SIGKILLs injected"] += 1

    proc, port = start_serve(tmp_path, env)
    base = f"http://127.0.0.1:{port}"
    try:
        retried = await asyncio.gather(*(_submit(base, i) for i in unanswered))
        replayed = await asyncio.gather(*(_submit(base, i) for i in sorted(acked)))
    finally:
        stop(proc)
    for i, outcome in zip(unanswered, retried, strict=True):
        assert outcome is not None and outcome[0] in (200, 201), (i, outcome)
        # 200: the request had been stored before the kill, only its answer was lost
        COUNTS[f"kill -9: retried after restart, {outcome[0]}"] += 1
    for i, outcome in zip(sorted(acked), replayed, strict=True):
        assert outcome is not None and outcome[0] == 200, (i, outcome)
        assert outcome[1]["response_id"] == acked[i] and outcome[1]["created"] is False

    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as session:
            stored = dict(
                (
                    await session.execute(
                        select(SurveyResponse.idempotency_key, SurveyResponse.id).where(
                            SurveyResponse.survey == "fazhi-2026"
                        )
                    )
                ).all()
            )
            total = (await session.execute(select(func.count(SurveyResponse.id)))).scalar_one()
            rows = dict(
                (
                    await session.execute(
                        select(SurveyAnswer.response_id, func.count(SurveyAnswer.id)).group_by(
                            SurveyAnswer.response_id
                        )
                    )
                ).all()
            )
    finally:
        await engine.dispose()
    assert total == SUBMISSIONS == len(stored), "every submission stored once, none twice"
    assert set(stored) == {f"kill-{i}" for i in range(SUBMISSIONS)}
    for i, response_id in acked.items():
        assert stored[f"kill-{i}"] == response_id
    assert set(rows.values()) == {ANSWER_ROWS} and set(rows) == set(stored.values())
    COUNTS["kill -9: stored after restart and retries"] += total
