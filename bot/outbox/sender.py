"""What the outbox worker hands a channel, and how a channel says a send failed.

The composition root gives the worker one :class:`Sender` per channel name (``telegram``,
``wecom``, ``wecom_robot``…); the outbox never imports a channel. A sender delivers one
:class:`OutboundItem` or raises:

- :class:`TransientSendError` — worth trying again later (5xx, timeout, dropped connection,
  a rate limit); ``retry_after`` is the wait the platform asked for, if it said;
- :class:`PermanentSendError` — trying again cannot help (chat not found, bot blocked by the
  user, a robot URL that no longer exists); the message fails at once.

Any other exception is treated as transient. A transient error with ``retry_after`` (the
platform's "too many requests") does not count as an attempt: the worker pauses the channel
for that long and sends the message then.

A message too long for one send goes as several pieces (:func:`send_pieces`). The outbox
keeps the count of pieces delivered (``OutboundItem.parts_sent``), so a retry after a failed
piece sends only the pieces still missing.

Two things a sender may offer besides :meth:`Sender.send` (the worker asks for them with
:func:`is_ready` and :func:`min_interval`, and does without when they are missing):

- ``ready`` — a boolean property, false while the channel cannot reach its platform (not
  started yet, retrying in the background); the worker leaves that channel's messages queued,
  without spending their attempts, until it is true again;
- ``min_interval(recipient) -> float`` — the seconds the platform wants between two messages
  to one recipient (Telegram: one a second to a chat, 20 a minute to a group).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from core.messages import Reply

__all__ = [
    "OutboundItem",
    "PermanentSendError",
    "SendError",
    "Sender",
    "TransientSendError",
    "is_ready",
    "min_interval",
    "send_pieces",
]

_Piece = TypeVar("_Piece")


@dataclass(frozen=True, slots=True)
class OutboundItem:
    """One claimed outbox message, as a sender sees it.

    Attributes:
        id: The outbox row id.
        channel: The channel name the sender was registered for.
        recipient: The address on that channel (chat id, WeCom user id, push target id).
        locale: The language the message was rendered in.
        reply: Text, buttons (signed for this chat) and links.
        kind: ``notice``, ``reminder``, ``escalation``, ``nudge``, ``alert``, ``reply``…
        attempts: Attempts made before this one.
        parts_sent: Pieces of a long message delivered by earlier attempts.
    """

    id: int
    channel: str
    recipient: str
    locale: str
    reply: Reply
    kind: str
    attempts: int
    parts_sent: int = 0


class SendError(Exception):
    """A send that did not succeed.

    ``parts_sent`` is set by :func:`send_pieces`: the pieces of the message delivered so far
    (this attempt's and the earlier ones'), or ``None`` when the sender did not count."""

    parts_sent: int | None = None


class TransientSendError(SendError):
    """Try again later; ``retry_after`` seconds if the platform said how long to wait."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentSendError(SendError):
    """Trying again cannot help; the message fails now."""


class Sender(Protocol):
    """Delivers outbox messages on one channel."""

    async def send(self, item: OutboundItem) -> None:
        """Deliver ``item``, or raise a :class:`SendError`."""
        ...


def is_ready(sender: Any) -> bool:
    """Whether ``sender`` can send now (its optional ``ready``; true when it has none)."""
    return bool(getattr(sender, "ready", True))


def min_interval(sender: Any, recipient: str, default: float = 0.0) -> float:
    """Seconds between two messages to ``recipient`` (the sender's optional ``min_interval``,
    or ``default``)."""
    method = getattr(sender, "min_interval", None)
    if method is None:
        return default
    return float(method(recipient))


async def send_pieces(
    item: OutboundItem, pieces: Sequence[_Piece], send_one: Callable[[_Piece], Awaitable[None]]
) -> None:
    """Send the pieces of ``item`` that earlier attempts did not deliver, in order.

    A failure is raised as a :class:`SendError` carrying the count of pieces delivered so far
    (any other exception becomes a :class:`TransientSendError`), for the outbox to keep.
    """
    done = item.parts_sent
    for piece in pieces[done:]:
        try:
            await send_one(piece)
        except SendError as exc:
            exc.parts_sent = done
            raise
        except Exception as exc:
            error = TransientSendError(str(exc).strip() or type(exc).__name__)
            error.parts_sent = done
            raise error from exc
        done += 1
