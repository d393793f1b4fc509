"""pufa with WeCom on, the fake WeCom API, and WeCom's side of the callback, for the tests.

:meth:`WeCom.deliver` sends the outbox's pending rows by calling the WeCom senders' ``send()``
on each, as the outbox worker will: a row is ``sent`` when ``send`` returns, stays ``pending``
(one more attempt counted) on a :class:`TransientSendError`, and is ``failed`` on a
:class:`PermanentSendError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from bot.channels.wecom import CALLBACK_PATH, WECOM, WeComChannel
from bot.outbox.queue import SEAL_PURPOSE, reply_of
from bot.outbox.sender import OutboundItem, PermanentSendError, SendError, TransientSendError
from bot.outbox.worker import SENDERS
from core.clock import utcnow
from core.crypto import Sealer
from storage.db import transaction
from storage.models_outbox import OutboxMessage
from tests.fakes.wecom_api import FakeWeComApi, WeComCallbacks
from tests.helpers import TEST_SECRET


@dataclass
class Answer:
    """pufa's answer to one callback."""

    status: int
    body: str
    params: dict[str, str] = field(default_factory=dict)


@dataclass
class WeCom:
    """pufa serving ``/wecom/callback``, the fake API it sends to, and WeCom's callbacks."""

    client: TestClient[Any, Any]
    fake: FakeWeComApi
    callbacks: WeComCallbacks
    sessions: async_sessionmaker[AsyncSession]

    @property
    def channel(self) -> WeComChannel:
        """The running channel."""
        return self.client.app[WECOM]

    async def post_raw(
        self, params: dict[str, str], body: bytes, headers: dict[str, str] | None = None
    ) -> Answer:
        """POST a callback exactly as given."""
        async with self.client.post(
            CALLBACK_PATH, params=params, data=body, headers=headers or {}
        ) as response:
            return Answer(response.status, await response.text(), params)

    async def post(self, xml: str, *, timestamp: int | None = None) -> Answer:
        """WeCom delivers the message ``xml`` (encrypted by wechatpy); waits for the step."""
        params, body = self.callbacks.encrypt(xml, timestamp=timestamp)
        answer = await self.post_raw(params, body)
        assert await self.channel.idle(30)
        return answer

    async def say(self, user: str, text: str, msg_id: str | None = None) -> Answer:
        """``user`` sends ``text`` in the app."""
        return await self.post(self.callbacks.text(user, text, msg_id))

    async def press(self, user: str, card: dict[str, Any], index: int) -> Answer:
        """``user`` presses button ``index`` of a template card pufa sent."""
        button = card["template_card"]["button_list"][index]
        return await self.post(
            self.callbacks.card_press(user, button["key"], card["template_card"]["task_id"])
        )

    async def chat(self, user: str, text: str) -> list[dict[str, Any]]:
        """``user`` sends ``text``; the replies are delivered and returned."""
        before = len(self.fake.messages_to(user))
        answer = await self.say(user, text)
        assert answer.status == 200, answer.body
        assert await self.deliver() == []
        return self.fake.messages_to(user)[before:]

    async def pending(self) -> list[OutboxMessage]:
        """Pending outbox rows, oldest first."""
        async with transaction(self.sessions) as session:
            rows = await session.execute(
                select(OutboxMessage)
                .where(col(OutboxMessage.status) == "pending")
                .order_by(col(OutboxMessage.id))
            )
            return list(rows.scalars())

    async def deliver(self) -> list[SendError]:
        """Send every pending row once with the channel's senders; the errors raised."""
        senders = self.client.app[SENDERS]
        errors: list[SendError] = []
        for row in await self.pending():
            assert row.id is not None
            item = OutboundItem(
                row.id,
                row.channel,
                row.recipient,
                row.locale,
                reply_of(row.body, Sealer(TEST_SECRET.encode(), SEAL_PURPOSE)),
                row.kind,
                row.attempts,
                row.parts_sent,
            )
            status, error = "sent", None
            try:
                await senders[row.channel].send(item)
            except TransientSendError as exc:
                status, error = "pending", exc
            except PermanentSendError as exc:
                status, error = "failed", exc
            if error is not None:
                errors.append(error)
            async with transaction(self.sessions) as session:
                await session.execute(
                    update(OutboxMessage)
                    .where(col(OutboxMessage.id) == row.id)
                    .values(
                        status=status,
                        attempts=row.attempts + 1,
                        last_error=str(error) if error else None,
                        sent_at=utcnow() if status == "sent" else None,
                        parts_sent=row.parts_sent
                        if error is None or error.parts_sent is None
                        else error.parts_sent,
                    )
                )
        return errors
