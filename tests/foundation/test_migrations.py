"""Migrations create every table, and the models and the migrations agree."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import ForeignKeyConstraint, inspect, text

from storage.db import create_engine
from storage.migrate import (
    alembic_config,
    at_head,
    current_heads,
    script_heads,
    upgrade_engine,
)
from storage.schema import STATEMENT_CHECKED_FOREIGN_KEYS, metadata


def _trigger_checked(change: tuple[object, ...], dialect: str) -> bool:
    """Whether ``change`` is a foreign key PostgreSQL checks with triggers instead (its
    behaviour is tested in ``tests/surveys/test_answer_response_check.py``)."""
    if dialect != "postgresql" or change[0] != "add_fk":
        return False
    fk = change[1]
    assert isinstance(fk, ForeignKeyConstraint)
    return {(fk.table.name, column.name) for column in fk.columns} <= (
        STATEMENT_CHECKED_FOREIGN_KEYS
    )


def _diff(connection) -> list:  # type: ignore[no-untyped-def]
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    dialect = connection.dialect.name
    return [c for c in compare_metadata(context, metadata) if not _trigger_checked(c, dialect)]


async def test_upgrade_creates_every_table_and_matches_models(empty_url: str) -> None:
    engine = create_engine(empty_url)
    try:
        await upgrade_engine(engine)
        async with engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
            diff = await conn.run_sync(_diff)
    finally:
        await engine.dispose()
    assert set(metadata.tables) <= tables
    assert version in current_heads()
    assert diff == [], f"models and migrations disagree: {diff}"


async def test_downgrade_to_base_and_back(empty_url: str) -> None:
    from alembic import command

    engine = create_engine(empty_url)
    try:
        await upgrade_engine(engine)
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(connection=c), "base"))
        async with engine.connect() as conn:
            left = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert left <= {"alembic_version"}
        await upgrade_engine(engine)
        async with engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert set(metadata.tables) <= tables
    finally:
        await engine.dispose()


def test_single_head() -> None:
    assert len(current_heads()) == 1


def test_heads_read_from_the_files_are_alembics() -> None:
    """Commands skip loading Alembic when the database is current; the heads they compare
    with are read from the migration files and must be exactly what Alembic finds."""
    assert script_heads() == frozenset(current_heads())


async def test_a_current_database_is_recognised_without_migrating(empty_url: str) -> None:
    engine = create_engine(empty_url)
    try:
        assert not await at_head(engine)  # a brand-new database
        await upgrade_engine(engine)
        assert await at_head(engine)
        async with engine.begin() as conn:  # one revision behind: no longer at the head
            await conn.execute(text("UPDATE alembic_version SET version_num = '0006'"))
        assert not await at_head(engine)
    finally:
        await engine.dispose()


async def test_invitations_leave_room_for_their_update_on_postgresql(empty_url: str) -> None:
    """On PostgreSQL an invitation's one update (``used_at``) stays on its page (HOT) and
    touches none of its indexes: the table is created with fillfactor 50."""
    engine = create_engine(empty_url)
    try:
        if engine.dialect.name != "postgresql":
            pytest.skip("a PostgreSQL storage parameter")
        await upgrade_engine(engine)
        async with engine.connect() as conn:
            options = (
                await conn.execute(
                    text("SELECT reloptions FROM pg_class WHERE relname = 'survey_invitation'")
                )
            ).scalar()
    finally:
        await engine.dispose()
    assert options == ["fillfactor=50"]
