"""The duplicate checks of a submission (an earlier answer of the same respondent, a repeated
Idempotency-Key) search the unique indexes ``(survey, respondent)`` and
``(survey, idempotency_key)`` instead of scanning every stored response.

The statements are the ones :func:`surveys.submission.submit_many` sends to the driver
(:func:`surveys.submission_sql.lookup_statements`), with the parameters of a real batch,
explained by the database itself (SQLite ``EXPLAIN QUERY PLAN``, PostgreSQL ``EXPLAIN``) over
enough stored responses for the planner to choose freely.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import asyncpg_dsn, transaction
from storage.models_surveys import SurveyResponse
from surveys.postgres_writer import connect
from surveys.schema import load_catalog
from surveys.submission import Submission, submit_many
from surveys.submission_sql import SQLITE_STATEMENTS, Lookup, lookup_statements
from tests.surveys.conftest import NOW, fazhi_answers, seed_surveys

FAZHI = load_catalog()["fazhi-2026"]
STORED = 20_000


def _rows() -> list[dict[str, Any]]:
    return [
        {
            "survey": "fazhi-2026" if i % 2 else "fazhi-2025",
            "respondent": f"{i:064x}",
            "channel": "h5",
            "township": None,
            "locale": "zh_CN",
            "idempotency_key": f"key-{i}",
            "request_hash": None,
            "invitation_id": None,
            "sample": False,
            "created_at": NOW - timedelta(seconds=i),
        }
        for i in range(STORED)
    ]


async def _fill(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(SurveyResponse), _rows())
    async with engine.begin() as conn:
        await conn.exec_driver_sql(
            "ANALYZE survey_response" if engine.dialect.name == "postgresql" else "ANALYZE"
        )


async def _lookups(engine: AsyncEngine, sessions: Any) -> list[tuple[str, Any]]:
    """Store a batch (two new respondents, one who answered) through ``submit_many``; return
    its duplicate-check statements with that batch's parameters."""
    items = [
        Submission(
            FAZHI, fazhi_answers(), f"{n:064x}", "api", None, "zh_CN", NOW,
            idempotency_key=f"fresh-{n}",
        )
        for n in (10**9, 10**9 + 1, 3)  # two new respondents and one who answered
    ]  # fmt: skip
    async with transaction(sessions) as session:
        outcomes = await submit_many(session, items)
    assert [type(o).__name__ for o in outcomes] == [
        "SubmitResult",
        "SubmitResult",
        "AlreadyAnswered",
    ]
    query = Lookup(
        keys=[(FAZHI.code, i.idempotency_key or "") for i in items],
        respondents=[(FAZHI.code, i.respondent) for i in items],
    )
    return lookup_statements(engine.dialect.name, query)


async def _plan(engine: AsyncEngine, statement: str, parameters: Any) -> str:
    prefix = "EXPLAIN " if engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN "
    async with engine.connect() as conn:
        rows = (await conn.exec_driver_sql(prefix + statement, parameters)).all()
    return "\n".join(str(row[-1]) for row in rows)


async def test_duplicate_checks_search_the_unique_indexes(
    engine: AsyncEngine, sessions: Any
) -> None:
    await seed_surveys(sessions)
    await _fill(engine)
    statements = await _lookups(engine, sessions)
    plans = [await _plan(engine, sql, parameters) for sql, parameters in statements]
    for plan in plans:
        print(plan)
        assert "SCAN survey_response" not in plan, plan
        assert "Seq Scan on survey_response" not in plan, plan
    if engine.dialect.name == "sqlite":
        # One statement for every read of a batch; each check a search of its unique index on
        # both columns.
        (plan,) = plans
        for column in ("idempotency_key", "respondent"):
            assert f"(survey=? AND {column}=?)" in plan, plan
    else:
        # One statement for every read of a batch; each key an index search on both columns.
        (plan,) = plans
        for column, index in (
            ("respondent", "uq_response_respondent"),
            ("idempotency_key", "uq_response_idempotency"),
        ):
            assert f"Index Scan using {index} on survey_response" in plan, plan
            conds = [line for line in plan.splitlines() if "Index Cond" in line]
            both = [c for c in conds if "(survey)::text = k" in c and f"({column})::text = k" in c]
            assert both, plan


async def test_postgresql_connections_plan_every_execution(engine: AsyncEngine) -> None:
    """pufa's PostgreSQL connections do not keep a generic plan per statement: one made while a
    new survey's tables were empty looked responses up by survey alone and read all of them
    for every batch (seen in PostgreSQL's statement log under load; not reproducible in a short
    test, so this checks the setting that prevents it)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("plan caching is PostgreSQL's")
    async with engine.connect() as conn:
        mode = (await conn.exec_driver_sql("SHOW plan_cache_mode")).scalar_one()
    assert mode == "force_custom_plan"
    # The group committer's own connections too (generic plans halved its throughput).
    writer_conn = await connect(asyncpg_dsn(engine.url))
    try:
        assert await writer_conn.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
    finally:
        await writer_conn.close()


async def test_sqlite_batch_writes_find_each_row_by_its_key(
    engine: AsyncEngine, sessions: Any
) -> None:
    """A batch's write finds its new responses' ids by the unique ``(survey, respondent)`` and
    marks its invitations used by their primary key in one pass over the batch: an earlier
    ``mark_used`` re-read the whole batch for every invitation (a correlated subquery), so its
    cost grew with the square of the batch (about 20 µs a submission at 96 a batch)."""
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL writes a batch in one statement, with unnest")
    await seed_surveys(sessions)
    await _fill(engine)
    who = json.dumps([[FAZHI.code, f"{n:064x}"] for n in range(5)])
    uses = json.dumps([[n, "2026-06-01 00:00:00.000000"] for n in range(1, 6)])
    ids = await _plan(engine, SQLITE_STATEMENTS["response_ids"], (who,))
    assert "(survey=? AND respondent=?)" in ids and "SCAN survey_response" not in ids, ids
    used = await _plan(engine, SQLITE_STATEMENTS["mark_used"], (uses,))
    assert "SEARCH survey_invitation USING INTEGER PRIMARY KEY" in used, used
    assert "CORRELATED" not in used and "SCAN survey_invitation" not in used, used
