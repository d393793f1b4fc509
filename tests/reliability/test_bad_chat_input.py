"""Hostile bytes at the chat entry points: the Telegram webhook and the WeCom callback.

Bodies that are not what the platform sends (invalid UTF-8, deep nesting, huge numbers, NUL
bytes, oversize) get a 4xx and change nothing; hostile text inside a genuine update or
callback (NUL, HTML, SQL, numbers past 64 bits) is answered without a 5xx, and the channel
goes on answering the next person normally.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot.channels.telegram import SECRET_HEADER, WEBHOOK_PATH
from bot.dialogs.runtime import apology
from core.settings import Settings
from storage.models_dialogs import ProcessedEvent
from tests.fakes.telegram_api import FakeBotApi
from tests.reliability.counts import COUNTS
from tests.telegram_webhook import WEBHOOK_SECRET, Webhook, serve_webhook, webhook_settings
from tests.wecom.conftest import (  # noqa: F401  (fixtures)
    aes_key,
    callbacks,
    fake_wecom,
    wecom,
    wecom_settings,
)
from tests.wecom.harness import WeCom

DEEP = 30_000
APOLOGIES = {apology("zh_CN"), apology("en")}
HOSTILE_TEXTS = [
    "前\x00后",
    "\x00",
    "<script>alert(1)</script>",
    "'); DROP TABLE chat_identity; --",
    "\ud83d",  # half an emoji, as JSON can carry it
    "x" * 4000,
    "²",  # str.isdigit() says yes, int() says no
    "፩",  # an Ethiopic digit: the same, and NFKC leaves it as it is
    "1፩",
]


def _count(status: int) -> None:
    COUNTS["bad input: requests"] += 1
    COUNTS[f"bad input: {status // 100}xx responses"] += 1
    COUNTS["bad input: faults injected"] += 1


@pytest.fixture
async def telegram(make_settings: Callable[..., Settings]) -> AsyncIterator[Webhook]:
    """pufa with its Telegram webhook, against the fake Bot API."""
    async with (
        FakeBotApi() as fake,
        serve_webhook(webhook_settings(make_settings, fake), fake) as hook,
    ):
        yield hook


async def _raw(client: TestClient[Any, Any], body: bytes) -> int:
    headers = {"Content-Type": "application/json", SECRET_HEADER: WEBHOOK_SECRET}
    async with client.post(WEBHOOK_PATH, data=body, headers=headers) as response:
        await response.read()
        return response.status


async def test_telegram_webhook_refuses_hostile_bodies_and_keeps_answering(
    telegram: Webhook,
) -> None:
    bodies = {
        "invalid UTF-8": b'{"update_id": 1, "message": "\xff\xfe"}',
        "deep nesting": b'{"update_id": 2, "message": ' + b"[" * DEEP + b"]" * DEEP + b"}",
        "huge number": b'{"update_id": 1' + b"0" * 5000 + b"}",
        "NaN": b'{"update_id": NaN}',
        "NUL bytes": b"\x00" * 100,
        "not an object": b"[1, 2, 3]",
        "oversize": b'{"update_id": 3, "x": "' + b"x" * (70 * 1024) + b'"}',
        "lone surrogate": b'{"update_id": 4, "message": {"text": "\\ud800"}}',
    }
    for name, body in bodies.items():
        status = await _raw(telegram.client, body)
        _count(status)
        assert 400 <= status < 500, (name, status)
    # a genuine update with numbers past 64 bits, and hostile text from real people
    for update_id in (2**63, 2**64 + 1, -1):
        update = telegram.fake.make_message_update(None, 5001, None, "/help")
        update["update_id"] = update_id  # the fake's own numbering goes on as before
        status = await _raw(telegram.client, json.dumps(update).encode())
        _count(status)
        assert status < 500, (update_id, status)
        if update_id > 2**64:  # parsed as a float (orjson): not an update
            assert status == 400
    user = 5002
    assert await telegram.text(user, "/survey") == 200
    for text in HOSTILE_TEXTS:
        update = telegram.fake.make_message_update(None, user, None, text)
        marker = len(telegram.fake.sent_messages(user))
        status = await _raw(telegram.client, json.dumps(update).encode())
        _count(status)
        assert status < 500, (text[:20], status)
        if status == 200:  # taken: the webhook answers 200 even when the step fails, and
            # then the reply is the apology
            replies = telegram.texts_since(user, marker)
            assert replies, ("no reply", text[:20])
            assert not set(replies) & APOLOGIES, ("the step failed", text[:20], replies)
    # the channel still answers the next person normally
    marker = len(telegram.fake.sent_messages(5003))
    assert await telegram.text(5003, "/help") == 200
    assert telegram.texts_since(5003, marker), "answered"
    async with telegram.sessions() as session:
        events = (await session.execute(select(func.count()).select_from(ProcessedEvent))).scalar()
    assert events is not None and events >= 2


async def test_wecom_callback_refuses_hostile_bodies_and_keeps_answering(wecom: WeCom) -> None:  # noqa: F811
    cb = wecom.callbacks
    params, _ = cb.encrypt(cb.text("x", "help"))
    bodies = {
        "invalid UTF-8": b"<xml><Encrypt>\xff\xfe\xc3\x28</Encrypt></xml>",
        "NUL bytes": b"<xml>\x00\x00</xml>",
        "deep nesting": b"<a>" * 20_000 + b"</a>" * 20_000,
        "huge number": b"<xml><AgentID>1" + b"0" * 5000 + b"</AgentID></xml>",
        "oversize": b"<xml><Encrypt>" + b"A" * (70 * 1024) + b"</Encrypt></xml>",
        "JSON": b'{"Encrypt": "x"}',
    }
    for name, body in bodies.items():
        answer = await wecom.post_raw(params, body)
        _count(answer.status)
        assert 400 <= answer.status < 500, (name, answer.status)
    for query in (
        {"msg_signature": "\x00", "timestamp": "1", "nonce": "1"},
        {"timestamp": "9" * 400},
    ):
        answer = await wecom.post_raw(query, b"<xml/>")
        _count(answer.status)
        assert 400 <= answer.status < 500, (query, answer.status)
    # genuine, signed callbacks carrying hostile text from a person
    assert (await wecom.say("zhangsan", "survey")).status == 200
    for text in HOSTILE_TEXTS:
        if "\ud83d" in text:
            continue  # XML cannot carry it at all
        answer = await wecom.say("zhangsan", text)
        _count(answer.status)
        assert answer.status < 500, (text[:20], answer.status)
    assert (await wecom.say("lisi", "help")).status == 200
    assert await wecom.channel.idle(10)
