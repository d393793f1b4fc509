"""The group committer when another writer (a second process, or a chat dialog) stores a
conflicting response between the batch's checks and its insert."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.db import create_engine, session_factory
from storage.models_surveys import SurveyResponse
from surveys.committer import GroupCommitter
from surveys.respondents import pseudonym
from surveys.schema import load_catalog
from surveys.submission import AlreadyAnswered, Submission, SubmitResult, submit_response
from tests.surveys.conftest import NOW, SECRET, fazhi_answers, seed_surveys


async def test_conflicting_writer_outside_the_batch(
    db_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await seed_surveys(sessions)
    survey = load_catalog()["fazhi-2026"]
    first, contested = (pseudonym(SECRET, "test", r) for r in ("r1", "r2"))

    def item(respondent: str) -> Submission:
        return Submission(survey, fazhi_answers(), respondent, "web", None, "zh_CN", NOW)

    committer = GroupCommitter(sessions)
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
