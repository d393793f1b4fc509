"""Fixtures of the rota tests: the seeded database and a dialog runtime on a test clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import build_runtime
from core.feature import Catalogs
from core.settings import Settings
from tests.helpers import seed_db
from tests.rota.helpers import Chats, Clock


@pytest.fixture
async def seeded(sessions: async_sessionmaker[AsyncSession]) -> async_sessionmaker[AsyncSession]:
    """The test database with the catalog (units, both rotas) loaded."""
    await seed_db(sessions)
    return sessions


@pytest.fixture
def make_chats(
    settings: Settings, seeded: async_sessionmaker[AsyncSession]
) -> Callable[[datetime], Chats]:
    """``make_chats(start)``: the dialog runtime on a clock starting at ``start``."""

    def _make(start: datetime) -> Chats:
        clock = Clock(start)
        runtime = build_runtime(settings, seeded, Catalogs(), clock=clock)
        return Chats(runtime, clock, seeded)

    return _make
