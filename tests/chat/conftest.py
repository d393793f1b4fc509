"""Fixtures of the chat tests: a seeded database, a dialog runtime with a settable clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import build_runtime
from bot.dialogs import DialogRuntime
from core.feature import Catalogs
from core.messages import Inbound, Reply
from core.settings import Settings
from tests.helpers import seed_db


@dataclass
class Clock:
    """A clock tests move by hand."""

    now: datetime = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward."""
        self.now += delta


@pytest.fixture
def clock() -> Clock:
    """A fixed clock inside the 2026 survey window."""
    return Clock()


@pytest.fixture
async def seeded(sessions: async_sessionmaker[AsyncSession]) -> async_sessionmaker[AsyncSession]:
    """The test database with the catalog and the demo townships loaded."""
    await seed_db(sessions, demo=True)
    return sessions


@pytest.fixture
def runtime(
    settings: Settings, seeded: async_sessionmaker[AsyncSession], clock: Clock
) -> DialogRuntime:
    """The dialog runtime on the seeded test database."""
    return build_runtime(settings, seeded, Catalogs(), clock=clock)


@pytest.fixture
def say(runtime: DialogRuntime) -> Callable[..., object]:
    """``await say("text", user="1", lang="en")`` → replies; ``payload=`` presses a button."""
    counter = {"n": 0}

    async def _say(
        text: str | None = None,
        *,
        user: str = "1001",
        lang: str | None = "zh-hans",
        payload: str | None = None,
        channel: str = "telegram",
        event_id: str | None = None,
        source: str | None = "77",
    ) -> list[Reply]:
        counter["n"] += 1
        return await runtime.handle(
            Inbound(
                channel=channel,
                external_id=user,
                chat_id=user,
                text=text,
                payload=payload,
                language=lang,
                event_id=None if channel == "console" else (event_id or f"e{counter['n']}"),
                bare_commands=channel == "console",
                source_message_id=source if payload else None,
            )
        )

    return _say
