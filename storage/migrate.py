"""Alembic, configured from code (no alembic.ini needed by operators).

``pufa db upgrade`` and ``pufa serve`` call :func:`upgrade`; the app can also migrate on an
open async connection with :func:`upgrade_connection`.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    """An Alembic config pointing at pufa's migrations for ``url`` or an open connection."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (blocking; runs its own event loop)."""
    command.upgrade(alembic_config(url), revision)


def _upgrade_on(connection: Connection, revision: str) -> None:
    command.upgrade(alembic_config(connection=connection), revision)


async def upgrade_engine(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply migrations through an already-created async engine."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade_on, revision)


def current_heads() -> tuple[str, ...]:
    """The head revision ids of the migration scripts."""

    return tuple(ScriptDirectory.from_config(alembic_config()).get_heads())
