"""The group committer when another writer (a second process, or a chat dialog) stores a
conflicting response while a batch is being stored: through sessions (PostgreSQL, and SQLite
without the writer thread) and through SQLite's writer thread, which pufa serve uses."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.db import create_engine, session_factory
from storage.models_surveys import SurveyResponse
from surveys.committer import GroupCommitter
from surveys.respondents import pseudonym
from surveys.schema import load_catalog
from surveys.sqlite_writer import SQLiteBatchWriter
from surveys.submission import AlreadyAnswered, Submission, SubmitResult, submit_response
from tests.surveys.conftest import NOW, SECRET, fazhi_answers, seed_surveys


@pytest.mark.parametrize("store", ["sessions", "writer thread"])
async def test_conflicting_writer_outside_the_batch(
    db_url: str, sessions: async_sessionmaker[AsyncSession], store: str
) -> None:
    writer = None
    if store == "writer thread":
        url = make_url(db_url)
        if url.get_backend_name() != "sqlite":
            pytest.skip("the writer thread is SQLite's")
        engine = create_engine(db_url)
        writer = SQLiteBatchWriter(str(url.database), engine.dialect)
        await engine.dispose()
    await seed_surveys(sessions)
    survey = load_catalog()["fazhi-2026"]
    first, contested = (pseudonym(SECRET, "test", r) for r in ("r1", "r2"))

    def item(respondent: str) -> Submission:
        return Submission(survey, fazhi_answers(), respondent, "web", None, "zh_CN", NOW)

    committer = GroupCommitter(sessions, store=writer.store if writer else None)
    committer.start()
    other_engine = create_engine(db_url)  # the other process
    try:
        async with session_factory(other_engine)() as other:
            await other.begin()
            await submit_response(
                other,
                survey,
                fazhi_answers(level="dissatisfied"),
                respondent=contested,
                channel="telegram",
                township_code=None,
                locale="zh_CN",
                now=NOW,
            )
            await other.flush()  # written, not committed: the batch cannot see it yet
            batch = asyncio.gather(committer.submit(item(first)), committer.submit(item(contested)))
            await asyncio.sleep(0.5)  # the batch has checked and is waiting on the other writer
            await other.commit()
        outcomes = await asyncio.wait_for(batch, timeout=30)
    finally:
        await committer.stop()
        await other_engine.dispose()
        if writer is not None:
            await writer.close()

    assert isinstance(outcomes[0], SubmitResult)
    assert isinstance(outcomes[1], AlreadyAnswered)
    async with sessions() as session:
        rows = dict(
            (
                await session.execute(
                    select(SurveyResponse.respondent, func.count()).group_by(
                        SurveyResponse.respondent
                    )
                )
            ).all()
        )
    assert rows == {first: 1, contested: 1}
