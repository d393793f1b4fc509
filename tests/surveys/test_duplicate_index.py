"""The duplicate checks of a submission (an earlier answer of the same respondent, a repeated
Idempotency-Key) search the unique indexes ``(survey, respondent)`` and
``(survey, idempotency_key)`` instead of scanning every stored response.

The statements are the ones :func:`surveys.submission.submit_many` really sends (recorded from
the driver), explained by the database itself (SQLite ``EXPLAIN QUERY PLAN``, PostgreSQL
``EXPLAIN``) over enough stored responses for the planner to choose freely.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import event, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import transaction
from storage.models_surveys import SurveyResponse
from surveys.schema import load_catalog
from surveys.submission import Submission, submit_many
from tests.surveys.conftest import NOW, fazhi_answers, seed_surveys

FAZHI = load_catalog()["fazhi-2026"]
STORED = 20_000


async def _fill(engine: AsyncEngine) -> None:
    rows = [
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
    async with engine.begin() as conn:
        await conn.execute(insert(SurveyResponse), rows)
    async with engine.begin() as conn:
        await conn.exec_driver_sql(
            "ANALYZE survey_response" if engine.dialect.name == "postgresql" else "ANALYZE"
        )


async def _recorded_lookups(engine: AsyncEngine, sessions: Any) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM survey_response" in statement:
            seen.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        items = [
            Submission(
                FAZHI, fazhi_answers(), f"{n:064x}", "api", None, "zh_CN", NOW,
                idempotency_key=f"fresh-{n}",
            )
            for n in (10**9, 10**9 + 1, 3)  # two new respondents and one who answered
        ]  # fmt: skip
        async with transaction(sessions) as session:
            outcomes = await submit_many(session, items)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert [type(o).__name__ for o in outcomes] == [
        "SubmitResult",
        "SubmitResult",
        "AlreadyAnswered",
    ]
    return seen


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
    lookups = await _recorded_lookups(engine, sessions)
    by_column = {
        column: [(s, p) for s, p in lookups if f"survey_response.{column} IN" in s]
        for column in ("respondent", "idempotency_key")
    }
    assert all(by_column.values()), lookups
    for column, statements in by_column.items():
        for statement, parameters in statements:
            plan = await _plan(engine, statement, parameters)
            print(f"{column}:\n{plan}")
            if engine.dialect.name == "sqlite":
                assert f"(survey=? AND {column}=?)" in plan, plan
                assert "SCAN survey_response" not in plan, plan
            else:
                index = (
                    "uq_response_respondent"
                    if column == "respondent"
                    else ("uq_response_idempotency")
                )
                assert index in plan, plan
                cond = next(line for line in plan.splitlines() if "Index Cond" in line)
                assert "survey" in cond and column in cond, plan
                assert "Seq Scan" not in plan, plan
