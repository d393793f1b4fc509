"""Fixtures of the liaison-registry tests: the demo database, staff accounts, a dialog runtime,
the real ``pufa`` command, and pufa's Telegram webhook against the fake Bot API."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from bot.app import build_runtime
from bot.dialogs import DialogRuntime
from core.feature import Catalogs
from core.messages import Inbound, Reply, render_numbered
from core.settings import Settings
from storage.api_tokens import create_api_token
from storage.db import transaction
from storage.models import ChatIdentity, Township
from tests.fakes.telegram_api import FakeBotApi
from tests.helpers import TEST_SECRET, seed_db
from tests.telegram_webhook import Webhook, serve_webhook, webhook_settings

PUFA = [sys.executable, "-m", "bot"]
NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)


# ---------------------------------------------------------------------------------- database


@pytest.fixture
async def demo(sessions: async_sessionmaker[AsyncSession]) -> async_sessionmaker[AsyncSession]:
    """The test database with the catalog and the demo townships, villages and liaisons."""
    await seed_db(sessions, demo=True)
    return sessions


async def make_staff(
    sessions: async_sessionmaker[AsyncSession],
    external_id: str,
    township: str,
    *,
    channel: str = "telegram",
    role: str = "staff",
) -> int:
    """A chat identity bound as staff of ``township`` (or another ``role``); its id."""
    async with transaction(sessions) as session:
        town = (
            await session.execute(select(Township).where(col(Township.code) == township))
        ).scalar_one()
        identity = ChatIdentity(
            channel=channel,
            external_id=external_id,
            role=role,
            township_id=town.id if role == "staff" else None,
            locale="zh_CN",
        )
        session.add(identity)
        await session.flush()
        assert identity.id is not None
        return identity.id


async def make_token(
    sessions: async_sessionmaker[AsyncSession], role: str, township: str | None = None
) -> str:
    """A live API bearer token."""
    async with transaction(sessions) as session:
        token, _row = await create_api_token(session, role, township=township, now=NOW)
    return token


# ---------------------------------------------------------------------------------- dialogs


@dataclass
class Chat:
    """Talk to the dialog runtime as one chat account."""

    runtime: DialogRuntime
    user: str
    lang: str = "zh-hans"
    counter: int = 0
    last: list[Reply] | None = None

    async def send(self, text: str) -> list[Reply]:
        """Type ``text``."""
        return await self._handle(text=text)

    async def press(self, label_part: str) -> list[Reply]:
        """Press the button of the latest keyboard whose label contains ``label_part``."""
        for reply in reversed(self.last or []):
            for button in reply.flat_buttons:
                if label_part in button.label:
                    return await self._handle(payload=button.payload)
        raise AssertionError(f"no button with {label_part!r} in {self.texts()}")

    def texts(self) -> str:
        """The latest replies, rendered as on a channel without buttons."""
        return "\n".join(render_numbered(r) for r in self.last or [])

    def labels(self) -> list[str]:
        """Labels of the buttons in the latest replies."""
        return [b.label for r in self.last or [] for b in r.flat_buttons]

    async def _handle(self, text: str | None = None, payload: str | None = None) -> list[Reply]:
        self.counter += 1
        self.last = await self.runtime.handle(
            Inbound(
                channel="telegram",
                external_id=self.user,
                chat_id=self.user,
                text=text,
                payload=payload,
                language=self.lang,
                event_id=f"{self.user}-{self.counter}",
                source_message_id="1" if payload else None,
            )
        )
        return self.last


@pytest.fixture
def runtime(settings: Settings, demo: async_sessionmaker[AsyncSession]) -> DialogRuntime:
    """The dialog runtime on the demo database."""
    return build_runtime(settings, demo, Catalogs(), clock=lambda: NOW)


@pytest.fixture
def chat(runtime: DialogRuntime) -> Callable[[str], Chat]:
    """``chat("1001")`` talks as Telegram user 1001."""
    return lambda user, lang="zh-hans": Chat(runtime, user, lang)


# ---------------------------------------------------------------------------------- pufa


def pufa_env(db_url: str, **extra: str) -> dict[str, str]:
    """The environment of a ``pufa`` process on the test database with the test key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUFA_")}
    env.update(
        {
            "PUFA_DATABASE_URL": db_url,
            "PUFA_SECRET_KEY": TEST_SECRET,
            "PUFA_LOG_FORMAT": "text",
            "PUFA_DEFAULT_LOCALE": "zh_CN",
        },
        **extra,
    )
    return env


@pytest.fixture
def pufa(db_url: str, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the real ``pufa`` command: ``pufa("import", "villages", str(path))``."""

    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*PUFA, *args],
            cwd=tmp_path,
            env=pufa_env(db_url, **env),
            capture_output=True,
            text=True,
            timeout=180,
        )

    return run


# ---------------------------------------------------------------------------------- telegram


TelegramBot = Webhook
"""pufa serving its webhook against the fake Bot API (tests/telegram_webhook.py)."""


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    """The fake Telegram Bot API server."""
    async with FakeBotApi() as api:
        yield api


@pytest.fixture
async def telegram(
    make_settings: Callable[..., Settings], fake: FakeBotApi
) -> AsyncIterator[TelegramBot]:
    """pufa with Telegram in webhook mode against the fake Bot API, on the demo database."""
    async with serve_webhook(webhook_settings(make_settings, fake), fake) as served:
        yield served
