"""Running a command's work against the database: open the engine, migrate, run, dispose."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.errors import PufaError
from storage.db import create_engine, session_factory
from storage.migrate import upgrade_engine

__all__ = ["with_sessions"]

R = TypeVar("R")


async def with_sessions(
    database_url: str,
    body: Callable[[async_sessionmaker[AsyncSession]], Awaitable[R]],
    migrate: bool = True,
) -> R:
    """Open the engine (migrating first), run ``body(sessions)``, dispose of the engine.

    A database that cannot be reached is a one-line :class:`~core.errors.PufaError`.
    """
    engine = create_engine(database_url)
    try:
        if migrate:
            await upgrade_engine(engine)
        return await body(session_factory(engine))
    except OSError as exc:
        raise PufaError(f"cannot reach the database: {exc}") from exc
    finally:
        await engine.dispose()
