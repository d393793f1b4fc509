"""Alembic, configured from code (no alembic.ini needed by operators).

``pufa db upgrade``, ``pufa serve`` and every command that opens the database call
:func:`upgrade_engine`. A database already at the head revision is recognised with one
query, without loading Alembic (which takes about a second to import: most commands find the
database current, and start faster for it).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


_REVISION = re.compile(r"^revision(?::[^=]*)? = [\"']([\w-]+)[\"']", re.M)
_DOWN = re.compile(r"^down_revision(?::[^=]*)? = [\"']([\w-]+)[\"']", re.M)


@cache
def script_heads() -> frozenset[str]:
    """The head revisions of the migration scripts, read from the files (no Alembic)."""
    revisions: set[str] = set()
    downs: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        revisions.update(_REVISION.findall(source))
        downs.update(_DOWN.findall(source))
    return frozenset(revisions - downs)


async def at_head(engine: AsyncEngine) -> bool:
    """Whether the database is at the scripts' head revision (one query)."""
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
            return frozenset(r[0] for r in rows) == script_heads()
    except DBAPIError:
        return False  # no alembic_version table yet: a new database


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    """An Alembic config pointing at pufa's migrations for ``url`` or an open connection."""
    from alembic.config import Config  # loaded only when migrating (see the module docstring)

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (blocking; runs its own event loop)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def _upgrade_on(connection: Connection, revision: str) -> None:
    from alembic import command

    command.upgrade(alembic_config(connection=connection), revision)


async def upgrade_engine(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply migrations through an already-created async engine (nothing to do, and Alembic
    not loaded, when the database is already at the head)."""
    if revision == "head" and await at_head(engine):
        return
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade_on, revision)


def current_heads() -> tuple[str, ...]:
    """The head revision ids of the migration scripts (as Alembic sees them)."""
    from alembic.script import ScriptDirectory

    return tuple(ScriptDirectory.from_config(alembic_config()).get_heads())
