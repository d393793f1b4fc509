"""Helpers for the survey tests: valid answers, invitation tokens, API tokens."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.db import asyncpg_dsn
from surveys.postgres_writer import PostgresBatchWriter
from surveys.sqlite_writer import SQLiteWriterProcess
from tests.helpers import TEST_SECRET, seed_db

SECRET = TEST_SECRET.encode()
NOW = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)


def serve_batch_writer(
    db_url: str, connections: int = 2
) -> SQLiteWriterProcess | PostgresBatchWriter:
    """The batch writer ``pufa serve`` stores submissions with on ``db_url`` (on PostgreSQL
    over ``connections`` connections)."""
    url = make_url(db_url)
    if url.get_backend_name() != "sqlite":
        return PostgresBatchWriter(asyncpg_dsn(url), connections)
    return SQLiteWriterProcess(str(url.database))


def fazhi_answers(level: str = "satisfied", **overrides: Any) -> dict[str, Any]:
    """A complete, valid answer set for fazhi-2026 (every rating at ``level``)."""
    answers: dict[str, Any] = {
        code: level
        for code in (
            "business_env",
            "public_service",
            "major_decisions",
            "law_enforcement",
            "oversight",
            "info_disclosure",
            "dispute_resolution",
            "rule_of_law_overall",
        )
    }
    answers["channels"] = ["mobile", "website"]
    answers["comment"] = "很好"
    answers.update(overrides)
    return answers


@pytest.fixture
def answers_factory() -> Callable[..., dict[str, Any]]:
    """:func:`fazhi_answers` as a fixture."""
    return fazhi_answers


async def seed_surveys(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Sync the survey catalog into ``survey_state`` (what ``pufa seed`` does)."""
    await seed_db(sessions)


async def make_invitations(
    sessions: async_sessionmaker[AsyncSession],
    count: int = 3,
    survey: str = "fazhi-2026",
    township: str | None = None,
) -> list[str]:
    """Create invitation tokens directly in the database."""
    from storage.db import transaction
    from surveys.invitations import create_invitations

    async with transaction(sessions) as session:
        _, tokens = await create_invitations(
            session, SECRET, survey, township=township, count=count, now=NOW
        )
    return tokens


async def make_api_token(
    sessions: async_sessionmaker[AsyncSession], role: str = "analyst", township: str | None = None
) -> str:
    """Create a results-API bearer token."""
    from storage.api_tokens import create_api_token
    from storage.db import transaction

    async with transaction(sessions) as session:
        token, _ = await create_api_token(session, role, township=township, now=NOW)
    return token


MakeTokens = Callable[..., Awaitable[list[str]]]
