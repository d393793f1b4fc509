"""Shared fixtures: a real database (SQLite file, or PostgreSQL when
``PUFA_TEST_POSTGRES_URL`` is set), settings, and the aiohttp app over real HTTP.

With ``PUFA_TEST_POSTGRES_URL`` set, a database that does not answer fails the run instead of
skipping: CI must never pass silently without the PostgreSQL suite it asked for.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.settings import Settings
from storage.db import create_engine, session_factory
from storage.migrate import upgrade_engine
from storage.schema import metadata
from tests.helpers import TEST_SECRET

POSTGRES_URL = os.environ.get("PUFA_TEST_POSTGRES_URL", "")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print what the reliability tests did (requests, responses, faults), when any ran."""
    from tests.reliability.counts import COUNTS, FULL

    if not COUNTS:
        return
    terminalreporter.section(f"reliability counts ({'full' if FULL else 'quick'})")
    for name in sorted(COUNTS):
        terminalreporter.write_line(f"{name:<52} {COUNTS[name]:>8}")


def pytest_report_header(config: pytest.Config) -> str:
    """Say which database the suite runs against."""
    return f"pufa database: {'PostgreSQL ' + POSTGRES_URL if POSTGRES_URL else 'SQLite (file)'}"


@pytest.fixture(scope="session")
def _template_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Migrate once per session: a template SQLite file, or the PostgreSQL test database."""
    if POSTGRES_URL:
        url = POSTGRES_URL

        async def _prepare() -> None:
            engine = create_engine(url)
            try:
                async with engine.begin() as conn:
                    await conn.execute(text("DROP SCHEMA public CASCADE"))
                    await conn.execute(text("CREATE SCHEMA public"))
                await upgrade_engine(engine)
            finally:
                await engine.dispose()

        try:
            asyncio.run(_prepare())
        except OSError as exc:  # pragma: no cover - only when the server is gone
            pytest.fail(f"PUFA_TEST_POSTGRES_URL is set but PostgreSQL does not answer: {exc}")
        return url
    path = tmp_path_factory.mktemp("template") / "template.db"
    url = f"sqlite+aiosqlite:///{path}"

    async def _migrate() -> None:
        engine = create_engine(url)
        try:
            await upgrade_engine(engine)
            async with engine.connect() as conn:
                await conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        finally:
            await engine.dispose()

    asyncio.run(_migrate())
    return str(path)


def fresh_database(template: str, directory: Path) -> str:
    """A migrated, empty database: a copy of the SQLite template in ``directory``, or the
    PostgreSQL test database emptied."""
    if POSTGRES_URL:
        tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)

        async def _truncate() -> None:
            engine = create_engine(POSTGRES_URL)
            try:
                async with engine.begin() as conn:
                    await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            finally:
                await engine.dispose()

        asyncio.run(_truncate())
        return POSTGRES_URL
    path = directory / "pufa.db"
    shutil.copyfile(template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def db_url(_template_db: str, tmp_path: Path) -> str:
    """A migrated, empty database for one test."""
    return fresh_database(_template_db, tmp_path)


@pytest.fixture
def make_settings(db_url: str, tmp_path: Path) -> Callable[..., Settings]:
    """Build Settings for the test database; keyword arguments override fields."""

    def _make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": db_url,
            "data_dir": tmp_path / "data",
            "secret_key": SecretStr(TEST_SECRET),
            "env": "test",
            "log_format": "text",
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return _make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    """Default test settings."""
    return make_settings()


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """The async engine of the test database."""
    eng = create_engine(db_url)
    yield eng
    await eng.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """A session maker on the test database."""
    return session_factory(engine)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[TestClient[Any, Any]]:
    """The whole pufa app behind a real HTTP server on 127.0.0.1."""
    from bot.app import create_app

    app = create_app(settings)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client


@pytest.fixture
async def empty_url(tmp_path: Path) -> AsyncIterator[str]:
    """A brand-new empty database (a fresh PostgreSQL database when testing PostgreSQL)."""
    if not POSTGRES_URL:
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    name = f"pufa_mig_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
