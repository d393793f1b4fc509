"""The Telegram side of the outbox: the sender's error mapping, updates counted in /metrics,
and python-telegram-bot's public API only."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.channels.telegram import SECRET_HEADER, WEBHOOK_PATH, TelegramSender
from bot.outbox.sender import OutboundItem, PermanentSendError, TransientSendError
from core.messages import Button, Reply
from core.settings import Settings
from tests.fakes.telegram_api import FakeBotApi
from tests.helpers import free_port
from tests.outbox.conftest import ptb_bot

ROOT = Path(__file__).resolve().parents[2]


def _item(recipient: str = "42", text: str = "你好") -> OutboundItem:
    reply = Reply(text, ((Button("确认", "0.c.7.abcdefghij"),),))
    return OutboundItem(1, "telegram", recipient, "zh_CN", reply, "reminder", 0)


async def test_sender_sends_text_with_keyboard(fake: FakeBotApi, sender: TelegramSender) -> None:
    await sender.send(_item())
    sent = fake.last_sent(42)
    assert sent["text"] == "你好"
    assert sent["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "0.c.7.abcdefghij"
    assert sender.min_interval("42") == 1.0 and sender.min_interval("-100123") == 3.0


@pytest.mark.parametrize(
    ("fault", "kind", "retry_after", "says"),
    [
        ({"error_code": 400, "description": "Bad Request: chat not found"}, "permanent", None,
         "chat not found"),
        ({"error_code": 403}, "permanent", None, "blocked"),
        ({"error_code": 400, "description": "Bad Request: message is too long"}, "permanent",
         None, "too long"),
        ({"error_code": 400, "migrate_to_chat_id": -1009}, "permanent", None, "-1009"),
        ({"error_code": 429, "retry_after": 3}, "transient", 3.0, "Flood control"),
        ({"error_code": 500}, "transient", None, "Internal Server Error"),
        ({"error_code": 502}, "transient", None, "Bad Gateway"),
    ],
)  # fmt: skip
async def test_sender_tells_transient_from_permanent_failures(
    fake: FakeBotApi,
    sender: TelegramSender,
    fault: dict[str, Any],
    kind: str,
    retry_after: float | None,
    says: str,
) -> None:
    fake.fail_next("sendMessage", **fault)
    expected = PermanentSendError if kind == "permanent" else TransientSendError
    with pytest.raises(expected) as raised:
        await sender.send(_item())
    assert says.lower() in str(raised.value).lower()
    if isinstance(raised.value, TransientSendError):
        assert raised.value.retry_after == retry_after
    assert fake.sent_messages() == []


async def test_sender_on_timeouts_dropped_connections_and_bad_addresses(
    fake: FakeBotApi, sender: TelegramSender
) -> None:
    fake.stall_next("sendMessage", seconds=10)
    with pytest.raises(TransientSendError) as timed_out:
        await sender.send(_item())
    assert timed_out.value.retry_after is None
    fake.drop_next("sendMessage")
    with pytest.raises(TransientSendError):
        await sender.send(_item())
    with pytest.raises(PermanentSendError, match="not a Telegram chat id"):
        await sender.send(_item("zhangsan"))
    assert fake.faults == {"timeout": 1, "drop": 1}
    await sender.send(_item())
    assert len(fake.sent_messages()) == 1


async def test_a_refused_token_holds_messages_back_without_failing_them(
    fake: FakeBotApi,
) -> None:
    async with ptb_bot(fake) as bot:
        fake.token = "7000000001:AnotherTokenAltogether_0123456789ab"  # revoked meanwhile
        with pytest.raises(TransientSendError) as refused:
            await TelegramSender(bot).send(_item())
    assert refused.value.retry_after == TelegramSender.INVALID_TOKEN_WAIT


async def test_updates_are_counted_in_metrics_by_outcome(
    make_settings: Callable[..., Settings], fake: FakeBotApi
) -> None:
    port = free_port()
    settings = make_settings(
        telegram_token=fake.token,
        telegram_mode="webhook",
        telegram_webhook_secret="s3cret",
        telegram_api_base=fake.api_base,
        public_url=f"http://127.0.0.1:{port}",
    )
    server = TestServer(create_app(settings), host="127.0.0.1", port=port)
    async with TestClient(server) as client:
        health = await (await client.get("/healthz")).json()
        assert health["channels"]["telegram"]["state"] == "up"
        update = fake.make_message_update(None, 55, None, "/help")
        group_chatter = fake.make_message_update(None, 56, -100777, "大家好", chat_type="group")
        for body, secret in (
            (update, "s3cret"),
            (update, "s3cret"),  # redelivered
            (group_chatter, "s3cret"),
            (update, "wrong"),
        ):
            await client.post(WEBHOOK_PATH, json=body, headers={SECRET_HEADER: secret})
        await client.post(WEBHOOK_PATH, data=b"nonsense", headers={SECRET_HEADER: "s3cret"})
        text = await (await client.get("/metrics")).text()
    counted = {
        line.split("outcome=")[1].split('"')[1]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith('pufa_chat_updates_total{channel="telegram"')
    }
    assert counted == {
        "answered": 1.0,
        "duplicate": 1.0,
        "ignored": 1.0,
        "rejected": 1.0,
        "invalid": 1.0,
    }
    assert len(fake.sent_messages(55)) == 1


def _private_uses(path: Path) -> list[str]:
    """Private python-telegram-bot names a module uses: ``telegram._…`` imports and
    ``._post`` / ``._do_post`` calls."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("telegram._"):
            found.append(f"{path.name}: from {node.module} import …")
        if isinstance(node, ast.Import):
            found += [f"{path.name}: import {a.name}" for a in node.names if "._" in a.name]
        if isinstance(node, ast.Attribute) and node.attr in ("_post", "_do_post"):
            found.append(f"{path.name}: .{node.attr}")
    return found


def test_the_telegram_channel_uses_only_the_public_ptb_api() -> None:
    modules = sorted((ROOT / "bot" / "channels").glob("*.py"))
    assert modules
    assert [use for path in modules for use in _private_uses(path)] == []


async def test_a_text_over_the_bot_api_limit_goes_as_several_messages(
    fake: FakeBotApi, sender: TelegramSender
) -> None:
    lines = [f"{n}. 第{n}村 法律明白人 缺 2 名（贫困村须 3 名）" for n in range(1, 301)]
    await sender.send(_item(text="\n".join(lines)))
    sent = fake.sent_messages(42)
    assert len(sent) > 1  # the fake Bot API refuses a text over 4,096 characters
    assert [line for message in sent for line in message["text"].split("\n")] == lines
    assert [bool(m.get("reply_markup")) for m in sent] == [False] * (len(sent) - 1) + [True]
