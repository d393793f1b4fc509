"""The group committer when another writer (a second process, or a chat dialog) stores a
conflicting response while a batch is being stored: through sessions (the committer's fallback)
and through the batch writer pufa serve uses (SQLite's writer process, PostgreSQL's own
connections)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.db import asyncpg_dsn, create_engine, session_factory
from storage.models_surveys import SurveyResponse
from surveys.committer import GroupCommitter
from surveys.postgres_writer import PostgresBatchWriter
from surveys.respondents import invitation_hash, pseudonym
from surveys.schema import load_catalog
from surveys.sqlite_writer import SQLiteWriterProcess
from surveys.submission import (
    AlreadyAnswered,
    Submission,
    SubmitResult,
    TokenUsed,
    submit_response,
)
from tests.surveys.conftest import (
    NOW,
    SECRET,
    fazhi_answers,
    make_invitations,
    seed_surveys,
    serve_batch_writer,
)

Writer = SQLiteWriterProcess | PostgresBatchWriter


async def _writer(db_url: str, store: str) -> Writer | None:
    """The batch writer ``pufa serve`` uses on ``db_url`` (``store == "writer"``), else none."""
    return serve_batch_writer(db_url) if store == "writer" else None


@pytest.mark.parametrize("store", ["sessions", "writer"])
async def test_conflicting_writer_outside_the_batch(
    db_url: str, sessions: async_sessionmaker[AsyncSession], store: str
) -> None:
    writer = await _writer(db_url, store)
    await seed_surveys(sessions)
    survey = load_catalog()["fazhi-2026"]
    first, contested = (pseudonym(SECRET, "test", r) for r in ("r1", "r2"))

    def item(respondent: str) -> Submission:
        return Submission(survey, fazhi_answers(), respondent, "web", None, "zh_CN", NOW)

    committer = GroupCommitter(sessions, writer=writer)
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


@pytest.mark.parametrize("store", ["sessions", "writer"])
async def test_token_used_by_another_writer_during_the_batch(
    db_url: str, sessions: async_sessionmaker[AsyncSession], store: str
) -> None:
    """An invitation used by another writer between the batch's lookup and its write is refused
    (the batch is rolled back and retried one by one), and stored once."""
    writer = await _writer(db_url, store)
    await seed_surveys(sessions)
    survey = load_catalog()["fazhi-2026"]
    (token,) = await make_invitations(sessions, 1, township="xj")
    mine, theirs = (pseudonym(SECRET, "test", r) for r in ("mine", "theirs"))
    item = Submission(survey, fazhi_answers(), mine, "web", None, "zh_CN", NOW)
    item.token_hash = invitation_hash(SECRET, token)
    committer = GroupCommitter(sessions, writer=writer)
    committer.start()
    other_engine = create_engine(db_url)
    try:
        async with session_factory(other_engine)() as other:
            await other.begin()
            await submit_response(
                other, survey, fazhi_answers(), respondent=theirs, channel="telegram",
                township_code=None, locale="zh_CN", now=NOW, token=token, secret=SECRET,
            )  # fmt: skip
            await other.flush()
            pending = asyncio.ensure_future(committer.submit(item))
            await asyncio.sleep(0.5)
            await other.commit()
        outcome = await asyncio.wait_for(pending, timeout=30)
    finally:
        await committer.stop()
        await other_engine.dispose()

    assert isinstance(outcome, TokenUsed), outcome
    async with sessions() as session:
        stored = (
            await session.execute(select(SurveyResponse.respondent, SurveyResponse.invitation_id))
        ).all()
    assert [who for who, _ in stored] == [theirs]


async def test_postgres_writer_reconnects_after_losing_its_connection(
    db_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A batch whose connection the server dropped (a restart, a failover, an administrator)
    is stored on a new connection: the requests waiting on it get their outcome, not an error."""
    url = make_url(db_url)
    if url.get_backend_name() != "postgresql":
        pytest.skip("the writer's own connections are PostgreSQL's")
    await seed_surveys(sessions)
    survey = load_catalog()["fazhi-2026"]
    committer = GroupCommitter(sessions, writer=PostgresBatchWriter(asyncpg_dsn(url), 1))
    committer.start()

    def item(name: str) -> Submission:
        respondent = pseudonym(SECRET, "test", name)
        return Submission(survey, fazhi_answers(), respondent, "web", None, "zh_CN", NOW)

    admin = create_engine(db_url)
    try:
        assert isinstance(await committer.submit(item("before")), SubmitResult)
        async with admin.begin() as conn:
            killed = (
                await conn.exec_driver_sql(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND application_name = ''"
                )
            ).scalar_one()
        assert killed >= 1
        after = await asyncio.wait_for(committer.submit(item("after")), timeout=30)
    finally:
        await committer.stop()
        await admin.dispose()
    assert isinstance(after, SubmitResult) and after.created
    async with sessions() as session:
        stored = (
            await session.execute(select(func.count()).select_from(SurveyResponse))
        ).scalar_one()
    assert stored == 2
