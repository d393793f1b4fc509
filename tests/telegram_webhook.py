"""pufa answering Telegram through its webhook, against the fake Bot API, for end-to-end tests.

The whole app (:func:`bot.app.create_app`) runs behind a real HTTP server with Telegram in
webhook mode, pointed at :class:`~tests.fakes.telegram_api.FakeBotApi`; :class:`Webhook` posts
updates as Telegram does (running a method returned in the webhook answer, as Telegram does) and
reads what the bot sent at the fake.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import create_app
from bot.channels.telegram import SECRET_HEADER, WEBHOOK_PATH
from core.settings import Settings
from storage.db import create_engine, session_factory
from tests.fakes.telegram_api import FakeBotApi
from tests.helpers import free_port, seed_db

WEBHOOK_SECRET = "hook-secret_123"


def webhook_settings(
    make_settings: Callable[..., Settings], fake: FakeBotApi, **overrides: Any
) -> Settings:
    """Settings with Telegram in webhook mode against ``fake``, on a free port."""
    port = free_port()
    values: dict[str, Any] = {
        "telegram_token": fake.token,
        "telegram_mode": "webhook",
        "telegram_webhook_secret": WEBHOOK_SECRET,
        "telegram_api_base": fake.api_base,
        "public_url": f"http://127.0.0.1:{port}",
        "port": port,
        "send_rate": 1000,
    }
    values.update(overrides)
    return make_settings(**values)


@dataclass
class Webhook:
    """pufa serving its webhook, the fake Bot API, and people talking to it."""

    fake: FakeBotApi
    client: TestClient[Any, Any]
    sessions: async_sessionmaker[AsyncSession]
    settings: Settings

    async def post(
        self, update: dict[str, Any] | bytes, secret: str | None = WEBHOOK_SECRET
    ) -> int:
        """POST an update as Telegram does and, like Telegram, run a method in the answer."""
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers[SECRET_HEADER] = secret
        kwargs: dict[str, Any] = {"data": update} if isinstance(update, bytes) else {"json": update}
        async with self.client.post(WEBHOOK_PATH, headers=headers, **kwargs) as response:
            status = response.status
            if response.content_type == "application/json":
                body = await response.json()
                await self.api(body.pop("method"), body)
        return status

    async def api(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        """Call the fake Bot API directly (as Telegram runs a method from a webhook answer)."""
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{self.fake.api_base}{self.fake.token}/{method}", json=body) as answer,
        ):
            data: dict[str, Any] = await answer.json()
            assert answer.status == 200 and data["ok"], data
            return data

    async def text(self, user: int, text: str, lang: str | None = "zh-hans", **kw: Any) -> int:
        """``user`` sends ``text`` (in a private chat unless ``chat_id`` is given)."""
        return await self.post(
            self.fake.make_message_update(
                None, user, kw.pop("chat_id", None), text, language_code=lang, **kw
            )
        )

    async def press(
        self, user: int, message: dict[str, Any], which: int | str, lang: str = "zh-hans"
    ) -> int:
        """``user`` presses a button of ``message``: by index (reading order) or by a part of
        its label."""
        buttons = [b for row in message["reply_markup"]["inline_keyboard"] for b in row]
        if isinstance(which, int):
            chosen = buttons[which]
        else:
            found = [b for b in buttons if which in b["text"]]
            assert found, f"no button {which!r} in {[b['text'] for b in buttons]}"
            chosen = found[0]
        return await self.post(
            self.fake.make_callback_update(
                None,
                user,
                message["chat"]["id"],
                message["message_id"],
                chosen["callback_data"],
                language_code=lang,
            )
        )

    def last(self, chat: int) -> dict[str, Any]:
        """The latest message sent to ``chat``."""
        return self.fake.sent_messages(chat)[-1]

    def last_with_keyboard(self, chat: int) -> dict[str, Any]:
        """The latest message sent to ``chat`` with an inline keyboard."""
        return [m for m in self.fake.sent_messages(chat) if m.get("reply_markup")][-1]

    def texts_since(self, chat: int, mark: int) -> list[str]:
        """Texts sent to ``chat`` after its first ``mark`` messages."""
        return [m["text"] for m in self.fake.sent_messages(chat)[mark:]]


@asynccontextmanager
async def serve_webhook(
    settings: Settings, fake: FakeBotApi, *, demo: bool = True
) -> AsyncIterator[Webhook]:
    """pufa with ``settings`` (see :func:`webhook_settings`) behind a real HTTP server, its
    catalog (and, with ``demo``, the sample data) loaded."""
    client = TestClient(TestServer(create_app(settings), host="127.0.0.1", port=settings.port))
    await client.start_server()
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    await seed_db(sessions, demo=demo, settings=settings)
    try:
        yield Webhook(fake, client, sessions, settings)
    finally:
        await client.close()
        await engine.dispose()
