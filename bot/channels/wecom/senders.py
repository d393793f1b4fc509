"""Outbox senders of the WeCom channel: app messages (``wecom``) and group robots
(``wecom_robot``).

Both follow :class:`bot.outbox.sender.Sender`: deliver one :class:`OutboundItem` or raise

- :class:`TransientSendError` when trying later can help: WeCom unreachable, an HTTP error,
  a rate limit (45009 and friends, with the wait to respect), a token still refused after the
  one refresh, or any code not known to be final;
- :class:`PermanentSendError` when it cannot: a member that does not exist or cannot see the
  app, content WeCom refuses, a robot that is gone or whose URL cannot be read.

App messages go out as a template card when the reply fits one, else as text (a card WeCom
refuses is sent again as text at once). A group robot takes 20 messages a minute; the sender
keeps that pace per robot itself and answers a 21st with a transient error saying when a slot
frees, rather than letting WeCom refuse it.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col
from yarl import URL

from bot.channels.wecom.api import (
    RATE_LIMITED,
    TOKEN_ERRORS,
    WeComApi,
    WeComError,
    WeComUnreachable,
)
from bot.channels.wecom.render import card_of, robot_markdown, text_chunks, text_of
from bot.outbox.sender import (
    OutboundItem,
    PermanentSendError,
    TransientSendError,
    send_pieces,
)
from core.crypto import Sealer, SealError
from storage.db import transaction
from storage.models_outbox import PushTarget

__all__ = [
    "APP_CHANNEL",
    "PERMANENT_ERRORS",
    "ROBOT_CHANNEL",
    "ROBOT_PER_MINUTE",
    "ROBOT_SEAL_PURPOSE",
    "RobotSender",
    "WeComSender",
]

log = logging.getLogger(__name__)

APP_CHANNEL = "wecom"
ROBOT_CHANNEL = "wecom_robot"
ROBOT_SEAL_PURPOSE = "wecom.robot"
"""The :class:`~core.crypto.Sealer` purpose of a robot's webhook URL in ``PushTarget.secret``."""
ROBOT_PER_MINUTE = 20
PERMANENT_ERRORS = frozenset(
    {
        40003,  # invalid userid
        40008,  # invalid message type
        40058,  # invalid parameter
        44004,  # empty content
        45002,  # content too long
        60111,  # userid not found
        81013,  # no valid recipient (userid, department, tag)
        82001,  # every recipient empty
        93000,  # invalid robot webhook URL (the robot was removed)
    }
)
"""Codes that trying again cannot fix."""
RECIPIENT_ERRORS = frozenset({40003, 60111, 81013, 82001})
"""The member cannot receive app messages: a text would fail the same way as a card."""
_RATE_WAIT = {-1: 10.0, 45009: 60.0, 45033: 5.0}


def _transient_or_permanent(exc: WeComError, what: str) -> Exception:
    if exc.errcode in RATE_LIMITED:
        return TransientSendError(
            f"{what}: rate limited ({exc.errcode} {exc.errmsg})", _RATE_WAIT.get(exc.errcode)
        )
    if exc.errcode in PERMANENT_ERRORS:
        return PermanentSendError(f"{what}: {exc.errcode} {exc.errmsg}")
    return TransientSendError(f"{what}: {exc.errcode} {exc.errmsg}")


class WeComSender:
    """Sends outbox messages as WeCom app messages to members (recipient = WeCom userid).

    Args:
        api: The WeCom API client.
        agent_id: The app's agent id.
    """

    def __init__(self, api: WeComApi, agent_id: int) -> None:
        self.api = api
        self.agent_id = agent_id

    async def _post(self, to_user: str, msgtype: str, content: dict[str, Any]) -> None:
        """One ``message/send``; WeCom's errors are left as they are."""
        try:
            data = await self.api.send_message(self.agent_id, to_user, msgtype, content)
        except WeComUnreachable as exc:
            raise TransientSendError(f"WeCom unreachable: {exc}") from exc
        invalid = str(data.get("invaliduser") or "")
        if to_user.lower() in (part.lower() for part in invalid.split("|")):
            raise PermanentSendError(
                f"WeCom member {to_user!r} does not exist or cannot see the app"
            )

    async def send(self, item: OutboundItem) -> None:
        """Deliver ``item`` to the member ``item.recipient``."""
        reply = item.reply
        # Pieces already delivered mean an earlier attempt fell back to text: go on with it.
        card = (
            card_of(reply, f"pufa-{item.id}-{secrets.token_hex(6)}")
            if reply.buttons and not item.parts_sent
            else None
        )
        if card is not None:
            try:
                await self._post(item.recipient, "template_card", card)
                return
            except WeComError as exc:
                refused_card = exc.path.endswith("/message/send") and exc.errcode not in (
                    RATE_LIMITED | TOKEN_ERRORS | RECIPIENT_ERRORS
                )
                if not refused_card:
                    raise _transient_or_permanent(
                        exc, f"message/send to {item.recipient!r}"
                    ) from exc
                log.warning(
                    "template card refused; sending text",
                    extra={"errcode": exc.errcode, "errmsg": exc.errmsg},
                )
        await send_pieces(item, text_chunks(text_of(reply)), partial(self._text, item.recipient))

    async def _text(self, to_user: str, chunk: str) -> None:
        """One text message, WeCom's errors as :class:`SendError`."""
        try:
            await self._post(to_user, "text", {"content": chunk})
        except WeComError as exc:
            raise _transient_or_permanent(exc, f"message/send to {to_user!r}") from exc


class RobotLimiter:
    """At most ``per_minute`` posts per robot key in any 60 seconds (in this process)."""

    def __init__(
        self, per_minute: int = ROBOT_PER_MINUTE, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._sent: dict[str, deque[float]] = {}

    def take(self, key: str) -> float:
        """Take a slot for ``key``: 0 when taken, else the seconds until one frees."""
        now = self._clock()
        window = self._sent.setdefault(key, deque())
        while window and now - window[0] >= 60.0:
            window.popleft()
        if len(window) >= self.per_minute:
            return max(60.0 - (now - window[0]), 0.1)
        window.append(now)
        return 0.0


class RobotSender:
    """Posts outbox messages to WeCom group robots as markdown.

    The recipient is the address of a :class:`~storage.models_outbox.PushTarget` of channel
    ``wecom_robot`` (``robot:<unit code>``); its ``secret`` is the robot's webhook URL sealed
    with :class:`~core.crypto.Sealer` (purpose ``wecom.robot``).
    """

    def __init__(
        self,
        api: WeComApi,
        sessions: async_sessionmaker[AsyncSession],
        secret: bytes,
        *,
        limiter: RobotLimiter | None = None,
    ) -> None:
        self.api = api
        self.sessions = sessions
        self._sealer = Sealer(secret, ROBOT_SEAL_PURPOSE)
        self.limiter = limiter or RobotLimiter()

    async def _url(self, address: str) -> URL:
        async with transaction(self.sessions) as session:
            target = (
                await session.execute(
                    select(PushTarget).where(
                        col(PushTarget.channel) == ROBOT_CHANNEL, col(PushTarget.address) == address
                    )
                )
            ).scalar_one_or_none()
        if target is None or not target.active:
            raise PermanentSendError(f"no active group robot {address!r}")
        if not target.secret:
            raise PermanentSendError(f"group robot {address!r} has no webhook URL")
        try:
            url = URL(self._sealer.open(target.secret))
        except SealError as exc:
            raise PermanentSendError(
                f"the webhook URL of {address!r} does not open with this PUFA_SECRET_KEY"
            ) from exc
        except ValueError as exc:
            raise PermanentSendError(f"the webhook URL of {address!r} is not a URL") from exc
        if url.scheme not in ("http", "https") or not url.host or not url.query.get("key"):
            raise PermanentSendError(f"the webhook URL of {address!r} is not a robot URL")
        return url

    async def send(self, item: OutboundItem) -> None:
        """Post ``item`` to the robot ``item.recipient``."""
        url = await self._url(item.recipient)
        wait = self.limiter.take(url.query["key"])
        if wait:
            raise TransientSendError(
                f"group robot {item.recipient!r} had {self.limiter.per_minute} messages "
                "this minute",
                wait,
            )
        body = {"msgtype": "markdown", "markdown": {"content": robot_markdown(item.reply)}}
        try:
            await self.api.post_robot(str(url), body)
        except WeComUnreachable as exc:
            raise TransientSendError(f"WeCom unreachable: {exc}") from exc
        except WeComError as exc:
            raise _transient_or_permanent(exc, f"robot {item.recipient!r}") from exc
