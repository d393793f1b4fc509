"""Helpers shared by tests of several features (fixtures live in the conftest files)."""

from __future__ import annotations

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import seed_all
from core.feature import Catalogs, SeedReport
from core.settings import Settings
from storage.db import transaction

TEST_SECRET = "test-secret-key-not-for-production-0123456789"


def plain_settings(database_url: str = "sqlite+aiosqlite:///./unused.db") -> Settings:
    """Settings with the test secret key (for helpers that have no fixture at hand)."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=database_url, secret_key=SecretStr(TEST_SECRET), env="test"
    )


async def seed_db(
    sessions: async_sessionmaker[AsyncSession],
    *,
    demo: bool = False,
    settings: Settings | None = None,
) -> SeedReport:
    """Load the catalog of every feature (and the demo data), as ``pufa seed [--demo]`` does."""
    async with transaction(sessions) as session:
        return await seed_all(session, settings or plain_settings(), Catalogs(), demo=demo)
