"""Fixtures of the outbox tests: the fake Bot API, a real python-telegram-bot ``Bot`` talking to
it over HTTP, and helpers to queue messages and look at what arrived."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col
from telegram import Bot

from bot.channels.telegram import TelegramSender
from bot.channels.telegram_request import AiohttpRequest
from bot.outbox.queue import Outgoing, Recipient, enqueue
from bot.outbox.sender import OutboundItem, Sender
from bot.outbox.worker import OutboxWorker, WorkerConfig
from core.clock import utcnow
from core.messages import Reply
from core.metrics import Metrics
from storage.db import transaction
from storage.models_outbox import OutboxMessage
from tests.fakes.telegram_api import Call, FakeBotApi


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    """The fake Telegram Bot API on a loopback port."""
    async with FakeBotApi() as api:
        yield api


@asynccontextmanager
async def ptb_bot(fake: FakeBotApi, *, read_timeout: float = 5.0) -> AsyncIterator[Bot]:
    """A python-telegram-bot ``Bot`` on pufa's aiohttp request backend, pointed at ``fake``."""
    request = AiohttpRequest(read_timeout=read_timeout, connect_timeout=2.0)
    bot = Bot(fake.token, base_url=fake.api_base, request=request)
    await bot.initialize()
    try:
        yield bot
    finally:
        await bot.shutdown()


@pytest.fixture
async def sender(fake: FakeBotApi) -> AsyncIterator[TelegramSender]:
    """pufa's Telegram sender on a real PTB bot (client read timeout 0.5 s)."""
    async with ptb_bot(fake, read_timeout=0.5) as bot:
        yield TelegramSender(bot)


def make_worker(
    sessions: async_sessionmaker[AsyncSession],
    senders: dict[str, Sender],
    metrics: Metrics | None = None,
    **config: Any,
) -> OutboxWorker:
    """A worker with quick retries unless ``config`` says otherwise."""
    values: dict[str, Any] = {
        "rate": 200.0,
        "backoff_base": 0.05,
        "backoff_cap": 0.2,
        "poll_interval": 0.1,
        "housekeeping_interval": 0.5,
        "alert_settle": 0.3,
    }
    values.update(config)
    return OutboxWorker(sessions, senders, config=WorkerConfig(**values), metrics=metrics)


async def queue_texts(
    sessions: async_sessionmaker[AsyncSession],
    messages: Iterable[tuple[str, str]],
    *,
    channel: str = "telegram",
    kind: str = "notice",
) -> int:
    """Queue ``(chat, text)`` pairs (the text is also the dedupe key)."""
    outgoing = [
        Outgoing(f"test:{text}", Recipient(channel, chat, "zh_CN"), Reply(text), kind)
        for chat, text in messages
    ]
    async with transaction(sessions) as session:
        return await enqueue(session, outgoing, utcnow())


async def rows(sessions: async_sessionmaker[AsyncSession]) -> list[OutboxMessage]:
    """Every outbox row, oldest first."""
    async with sessions() as session:
        found = await session.execute(select(OutboxMessage).order_by(col(OutboxMessage.id)))
        return list(found.scalars())


def delivered(fake: FakeBotApi) -> list[str]:
    """Texts of the messages the fake accepted, in order."""
    return [m["text"] for m in fake.sent_messages()]


def send_times(fake: FakeBotApi, chat: int | None = None) -> list[float]:
    """Arrival times at the fake of the sendMessage calls that took effect (to ``chat``)."""
    calls: Sequence[Call] = fake.calls_to("sendMessage")
    return sorted(
        c.time for c in calls if c.ok and (chat is None or c.params.get("chat_id") == chat)
    )


def most_in_window(times: Sequence[float], window: float) -> int:
    """The most calls that arrived within any ``window`` seconds (half-open)."""
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def counter(metrics: Metrics, outcome: str, channel: str = "telegram") -> float:
    """This process's ``pufa_outbox_messages_total`` for one outcome."""
    value = metrics.registry.get_sample_value(
        "pufa_outbox_messages_total", {"channel": channel, "outcome": outcome}
    )
    return value or 0.0


ARRIVAL_JITTER = 0.25
"""The most a message may take from the worker's hand to the fake Bot API on a busy machine."""


class Timed:
    """Wraps a sender and notes when each message was handed to it (by chat)."""

    def __init__(self, inner: TelegramSender) -> None:
        self.inner = inner
        self.times: dict[str, list[float]] = defaultdict(list)
        self.all: list[float] = []

    def min_interval(self, recipient: str) -> float:
        return self.inner.min_interval(recipient)

    async def send(self, item: OutboundItem) -> None:
        now = asyncio.get_running_loop().time()
        self.times[item.recipient].append(now)
        self.all.append(now)
        await self.inner.send(item)
