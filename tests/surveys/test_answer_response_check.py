"""Every stored answer names a stored response, on SQLite (a declared foreign key) and on
PostgreSQL (statement-level triggers, migration 0018): the same guarantees, each tested here
through real statements against the migrated database."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import col

from storage.models_surveys import SurveyAnswer, SurveyResponse

RESPONSE = SurveyResponse.__table__  # type: ignore[attr-defined]
ANSWER = SurveyAnswer.__table__  # type: ignore[attr-defined]


async def _response(conn: AsyncConnection, respondent: str) -> int:
    """Insert a response of survey ``s``; its id."""
    result = await conn.execute(
        RESPONSE.insert().returning(RESPONSE.c.id),
        {"survey": "s", "respondent": respondent, "channel": "web"},
    )
    return int(result.scalar_one())


def _answer(response_id: int, question: str = "q1") -> dict[str, object]:
    return {
        "response_id": response_id,
        "survey": "s",
        "question": question,
        "value": "yes",
        "channel": "web",
    }


async def _refused(engine: AsyncEngine, statement: Any, params: Any = None) -> None:
    """Run ``statement`` in a transaction of its own; it must fail on the integrity check."""
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(statement, params)


async def _counts(engine: AsyncEngine) -> tuple[int, int]:
    async with engine.connect() as conn:
        responses = (await conn.execute(select(func.count()).select_from(RESPONSE))).scalar_one()
        answers = (await conn.execute(select(func.count()).select_from(ANSWER))).scalar_one()
    return responses, answers


async def test_an_answer_naming_no_response_is_refused_and_its_statement_stores_nothing(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as conn:
        rid = await _response(conn, "p1")
        await conn.execute(ANSWER.insert(), [_answer(rid, "q1"), _answer(rid, "q2")])
    # one statement: two answers of a stored response, one of a response that does not exist
    await _refused(
        engine, ANSWER.insert(), [_answer(rid, "q3"), _answer(rid + 1000, "q1"), _answer(rid, "q4")]
    )
    assert await _counts(engine) == (1, 2)


async def test_an_answer_cannot_be_moved_to_a_response_that_does_not_exist(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as conn:
        rid = await _response(conn, "p1")
        other = await _response(conn, "p2")
        await conn.execute(ANSWER.insert(), [_answer(rid)])
    async with engine.begin() as conn:  # to another stored response: allowed
        await conn.execute(update(ANSWER).values(response_id=other))
    await _refused(engine, update(ANSWER).values(response_id=other + 1000))
    async with engine.connect() as conn:
        assert (await conn.execute(select(ANSWER.c.response_id))).scalars().all() == [other]


async def test_a_response_with_answers_cannot_be_deleted_or_renumbered(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as conn:
        named = await _response(conn, "p1")
        unnamed = await _response(conn, "p2")
        await conn.execute(ANSWER.insert(), [_answer(named, "q1"), _answer(named, "q2")])
    await _refused(engine, delete(RESPONSE).where(col(RESPONSE.c.id) == named))
    await _refused(
        engine, update(RESPONSE).where(col(RESPONSE.c.id) == named).values(id=named + 1000)
    )
    # all at once: the named one still stops the statement
    await _refused(engine, delete(RESPONSE))
    assert await _counts(engine) == (2, 2)
    # a response no answer names can go, and an update that keeps the id is not refused
    async with engine.begin() as conn:
        await conn.execute(update(RESPONSE).values(locale="en"))
        await conn.execute(delete(RESPONSE).where(col(RESPONSE.c.id) == unnamed))
    assert await _counts(engine) == (1, 2)


async def test_postgresql_refuses_truncating_responses_while_answers_remain(
    engine: AsyncEngine,
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("TRUNCATE is PostgreSQL's")
    async with engine.begin() as conn:
        rid = await _response(conn, "p1")
        await conn.execute(ANSWER.insert(), [_answer(rid)])
    await _refused(engine, text("TRUNCATE survey_response"))
    assert await _counts(engine) == (1, 1)
    async with engine.begin() as conn:  # both in one statement, as the key allowed
        await conn.execute(text("TRUNCATE survey_response, survey_answer"))
    assert await _counts(engine) == (0, 0)


async def test_postgresql_checks_by_statement_and_a_delete_racing_an_insert_cannot_orphan(
    engine: AsyncEngine,
) -> None:
    """The declared key is gone on PostgreSQL, replaced by triggers; a response whose answers
    are being inserted by an open transaction can only be deleted after it ends, and then the
    delete fails — and an insert naming a response an open transaction deleted waits, then
    fails."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's triggers")
    async with engine.connect() as conn:
        keys = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM pg_constraint WHERE contype = 'f'"
                    " AND conrelid = 'survey_answer'::regclass"
                )
            )
        ).scalar_one()
    assert keys == 0
    async with engine.begin() as conn:
        first = await _response(conn, "p1")
        second = await _response(conn, "p2")

    # 1. answers inserted, not yet committed; a delete of their response waits, then fails
    inserter = await engine.connect()
    deleter = await engine.connect()
    try:
        await inserter.begin()
        await inserter.execute(ANSWER.insert(), [_answer(first)])
        await deleter.begin()
        deleting = asyncio.create_task(
            deleter.execute(delete(RESPONSE).where(col(RESPONSE.c.id) == first))
        )
        await asyncio.sleep(0.3)
        assert not deleting.done(), "the delete did not wait for the answers' transaction"
        await inserter.commit()
        with pytest.raises(IntegrityError):
            await deleting
        await deleter.rollback()

        # 2. a response deleted, not yet committed; an answer naming it waits, then fails
        await deleter.begin()
        await deleter.execute(delete(RESPONSE).where(col(RESPONSE.c.id) == second))
        await inserter.begin()
        inserting = asyncio.create_task(inserter.execute(ANSWER.insert(), [_answer(second)]))
        await asyncio.sleep(0.3)
        assert not inserting.done(), "the insert did not wait for the delete's transaction"
        await deleter.commit()
        with pytest.raises(IntegrityError):
            await inserting
        await inserter.rollback()
    finally:
        await inserter.close()
        await deleter.close()
    async with engine.connect() as conn:
        left = (await conn.execute(select(RESPONSE.c.id))).scalars().all()
        named = (await conn.execute(select(ANSWER.c.response_id))).scalars().all()
    assert left == [first] and named == [first]
