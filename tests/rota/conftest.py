"""Fixtures of the rota tests: the seeded database and a dialog runtime on a test clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot

from bot.app import build_runtime
from bot.channels.telegram_request import AiohttpRequest
from core.feature import Catalogs
from core.settings import Settings
from tests.fakes.telegram_api import FakeBotApi
from tests.helpers import seed_db
from tests.rota.helpers import Chats, Clock, Delivery


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


@pytest.fixture
async def delivery() -> AsyncIterator[Delivery]:
    """The outbox worker sending to a fake Telegram Bot API through python-telegram-bot."""
    async with FakeBotApi() as fake:
        request = AiohttpRequest(read_timeout=5.0, connect_timeout=2.0)
        bot = Bot(fake.token, base_url=fake.api_base, request=request)
        await bot.initialize()
        try:
            yield Delivery(fake, bot)
        finally:
            await bot.shutdown()
