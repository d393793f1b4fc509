"""Signed, versioned button payloads (at most 64 bytes, Telegram's callback-data limit).

A payload reads ``<version>.<action>.<arg>.<mac>``: ``version`` is the conversation version
the button was drawn for (a later step makes it stale), ``action`` one letter, ``arg`` a short
argument, and ``mac`` a truncated HMAC-SHA256 over the person's channel id and the rest, so a
forged payload, or one pressed by somebody else in a group, is rejected.

Buttons of a message pufa pushes itself (a reminder with a *Confirm* button) are not drawn for
one person's conversation: :func:`sign_push` signs them for the chat they are sent to, with
version 0, and the runtime accepts them from anyone in that chat as *global actions*; the
feature that handles the action checks that the presser may do it (a unit's bound account).
"""

from __future__ import annotations

import base64
import hmac
import re
from dataclasses import dataclass

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "ButtonPayload",
    "PayloadError",
    "push_owner",
    "sign",
    "sign_push",
    "verify",
]

MAX_PAYLOAD_BYTES = 64
_MAC_CHARS = 10
_ARG_RE = re.compile(r"[A-Za-z0-9_-]{0,32}")
_ACTION_RE = re.compile(r"[a-z]")


class PayloadError(ValueError):
    """A payload that is malformed or whose signature does not match."""


@dataclass(frozen=True, slots=True)
class ButtonPayload:
    """A verified payload: the conversation ``version``, the ``action`` letter and ``arg``."""

    version: int
    action: str
    arg: str


def _mac(secret: bytes, owner: str, body: str) -> str:
    digest = hmac.digest(secret, f"{owner}|{body}".encode(), "sha256")
    return base64.urlsafe_b64encode(digest).decode("ascii")[:_MAC_CHARS]


def sign(secret: bytes, owner: str, version: int, action: str, arg: str = "") -> str:
    """The payload of a button for ``owner`` (``"<channel>:<external id>"``)."""
    if not _ACTION_RE.fullmatch(action) or not _ARG_RE.fullmatch(arg):
        raise ValueError(f"bad button action/arg: {action!r} {arg!r}")
    body = f"{version:x}.{action}.{arg}"
    payload = f"{body}.{_mac(secret, owner, body)}"
    if len(payload.encode("ascii")) > MAX_PAYLOAD_BYTES:
        raise ValueError("button payload over 64 bytes")
    return payload


def push_owner(channel: str, chat_id: str) -> str:
    """The signing owner of buttons pushed to ``chat_id`` on ``channel``."""
    return f"push:{channel}:{chat_id}"


def sign_push(secret: bytes, channel: str, chat_id: str, action: str, arg: str = "") -> str:
    """The payload of a button in a message pushed to ``chat_id`` (version 0)."""
    return sign(secret, push_owner(channel, chat_id), 0, action, arg)


def verify(secret: bytes, owner: str, payload: str) -> ButtonPayload:
    """Check a payload pressed by ``owner``; raise :class:`PayloadError` if it is not ours."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadError("too long")
    body, _, mac = payload.rpartition(".")
    parts = body.split(".")
    if len(parts) != 3 or not hmac.compare_digest(mac, _mac(secret, owner, body)):
        raise PayloadError("bad signature")
    version_hex, action, arg = parts
    try:
        version = int(version_hex, 16)
    except ValueError:
        raise PayloadError("bad version") from None
    return ButtonPayload(version, action, arg)
