"""Queueing pushes: what every feature calls to send a message it starts itself.

A feature decides *what* to send and to whom, and calls :func:`enqueue` in the transaction
that made the decision (a reminder plan, an escalation, a notice). The rows commit or roll back
with that decision; the outbox worker sends them later. Each message carries a ``dedupe_key``
that is unique in the table: queueing the same key again does nothing, so re-planning the same
reminder, or two schedulers running at once, never sends it twice.

:func:`recipients` resolves a role (the units' accounts, a township's staff, the
coordinators) to the chats that receive its pushes: every chat account bound to the role, plus
the group chats and group robots bound to it (:class:`~storage.models_outbox.PushTarget`).
Texts are rendered by the feature in the recipient's ``locale``; buttons in pushed messages
are signed for the chat they go to (:func:`push_button`).

A process that runs the outbox worker makes its sessions wake the worker when a transaction
that queued messages commits (:func:`wake_on_commit`), so what this process queues goes out at
once; what other processes queue is found by the worker's next look (about every half second).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from core import payloads
from core.crypto import Sealer, SealError
from core.i18n import N_, Translator
from core.messages import Button, Link, Reply
from storage.db import after_commit
from storage.models import ChatIdentity
from storage.models_outbox import OutboxMessage, PushTarget
from storage.types import table_of

__all__ = [
    "Outgoing",
    "Recipient",
    "body_of",
    "cancel_pending",
    "enqueue",
    "is_private",
    "listed_text",
    "push_button",
    "recipients",
    "reply_of",
    "retry_messages",
    "set_push_target",
    "wake_on_commit",
]

ROLES = ("unit", "staff", "coordinator")
"""Roles a push can be addressed to."""

NO_PUSH_CHANNEL = "console"
"""The terminal channel of ``pufa chat``: nothing can be pushed to it."""

WAKE_INFO_KEY = "pufa.outbox.wake"
"""Key in a session's ``info`` of the function that wakes this process's outbox worker."""


@dataclass(frozen=True, slots=True)
class Recipient:
    """Where one pushed message goes.

    Attributes:
        channel: ``telegram``, ``wecom``, ``wecom_robot``, ``console``…
        address: The chat to send to on that channel (Telegram chat id, WeCom user id, the id
            of a group robot's :class:`~storage.models_outbox.PushTarget`).
        locale: The language to write in.
        identity_id: The chat identity of a person, ``None`` for a group or robot.
    """

    channel: str
    address: str
    locale: str
    identity_id: int | None = None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to queue.

    Attributes:
        dedupe_key: Unique forever: the same key is never queued twice (at most 200 chars).
        recipient: Where it goes.
        reply: The rendered message (text, buttons made with :func:`push_button`, links).
        kind: What it is, for listings: ``notice``, ``reminder``, ``escalation``, ``nudge``,
            ``alert``.
        not_before: Send no earlier than this (default: as soon as possible).
        private: The message may hold personal data (a chat reply that repeats what a person
            typed, e.g. a liaison's name and mobile number): its body is stored sealed
            (:data:`SEAL_PURPOSE`), listings show only that it is private, and only the
            worker opens it to send it.
    """

    dedupe_key: str
    recipient: Recipient
    reply: Reply
    kind: str = "notice"
    not_before: datetime | None = None
    private: bool = False


SEAL_PURPOSE = "outbox.body"
"""The :class:`~core.crypto.Sealer` purpose of private message bodies."""


PRIVATE_TEXT = N_("(a private chat reply: its content is stored sealed)")
"""What listings show instead of a private message's text."""


def is_private(body: dict[str, Any]) -> bool:
    """Whether a stored body is sealed (a private message)."""
    return "sealed" in body


def listed_text(body: dict[str, Any], t: Translator) -> str:
    """A message's text as listings show it: private ones are never opened there."""
    if is_private(body):
        return t._(PRIVATE_TEXT)
    return str(body.get("text", ""))


def body_of(reply: Reply, sealer: Sealer | None = None) -> dict[str, Any]:
    """The JSON body stored for a reply (sealed when a ``sealer`` is given)."""
    body: dict[str, Any] = {"text": reply.text}
    if reply.lead:
        body["lead"] = reply.lead
    if reply.buttons:
        body["buttons"] = [
            [{"label": b.label, "payload": b.payload} for b in row] for row in reply.buttons
        ]
    if reply.links:
        body["links"] = [{"label": link.label, "url": link.url} for link in reply.links]
    if sealer is not None:
        return {"sealed": sealer.seal(json.dumps(body, ensure_ascii=False))}
    return body


def reply_of(body: dict[str, Any], sealer: Sealer | None = None) -> Reply:
    """The reply a stored body describes (what a sender renders); a sealed body needs the
    ``sealer`` (:class:`~core.crypto.SealError` if it does not open)."""
    if is_private(body):
        if sealer is None:
            raise SealError("a private outbox message needs the key to be read")
        body = json.loads(sealer.open(str(body["sealed"])))
    buttons = tuple(
        tuple(Button(str(b["label"]), str(b["payload"])) for b in row)
        for row in body.get("buttons", ())
    )
    links = tuple(Link(str(x["label"]), str(x["url"])) for x in body.get("links", ()))
    return Reply(str(body.get("text", "")), buttons, links, lead=str(body.get("lead", "")))


def push_button(
    secret: bytes, recipient: Recipient, label: str, action: str, arg: str = ""
) -> Button:
    """A button for a message pushed to ``recipient``: anyone in that chat may press it, and
    the feature's action handler checks that they may do what it does."""
    return Button(
        label, payloads.sign_push(secret, recipient.channel, recipient.address, action, arg)
    )


async def enqueue(
    session: AsyncSession,
    messages: Iterable[Outgoing],
    now: datetime,
    *,
    secret: bytes | None = None,
) -> int:
    """Queue ``messages`` in ``session``'s transaction; return how many were new.

    A message whose ``dedupe_key`` is already in the table (queued earlier, sent, failed or
    cancelled) is skipped without an error. Private messages are sealed with ``secret``.
    """
    messages = list(messages)
    sealer = None
    if any(m.private for m in messages):
        if secret is None:
            raise ValueError("private outbox messages need the secret key to be sealed")
        sealer = Sealer(secret, SEAL_PURPOSE)
    rows = [
        {
            "dedupe_key": m.dedupe_key,
            "channel": m.recipient.channel,
            "recipient": m.recipient.address,
            "locale": m.recipient.locale,
            "kind": m.kind,
            "body": body_of(m.reply, sealer if m.private else None),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": max(m.not_before, now) if m.not_before else now,
            "created_at": now,
        }
        for m in messages
    ]
    if not rows:
        return 0
    table = table_of(OutboxMessage)
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(table).on_conflict_do_nothing(index_elements=["dedupe_key"])
    queued = 0
    for row in rows:
        result = await session.execute(stmt.values(**row))
        queued += int(getattr(result, "rowcount", 0) or 0)
    wake = session.info.get(WAKE_INFO_KEY)
    if queued and callable(wake):
        after_commit(session, wake)
    return queued


def wake_on_commit(sessions: async_sessionmaker[AsyncSession], wake: Callable[[], None]) -> None:
    """Make every session of ``sessions`` call ``wake`` after committing a transaction in which
    :func:`enqueue` queued something (the worker of this process then sends it at once)."""
    info = dict(sessions.kw.get("info") or {})
    info[WAKE_INFO_KEY] = wake
    sessions.configure(info=info)


async def cancel_pending(session: AsyncSession, keys: Sequence[str], now: datetime) -> int:
    """Withdraw messages not yet sent (a moved meeting's old reminders); return how many."""
    if not keys:
        return 0
    result = await session.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.dedupe_key).in_(keys), col(OutboxMessage.status) == "pending")
        .values(status="cancelled", last_error=f"cancelled at {now.isoformat()}")
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def retry_messages(
    session: AsyncSession, now: datetime, *, ids: Sequence[int] = (), failed: bool = False
) -> int:
    """Send failed messages again (the ones in ``ids``, or every failed one): they become
    pending, due now, with their attempts reset (and, should they fail again, the coordinator
    is told again). Returns how many."""
    condition = col(OutboxMessage.status) == "failed"
    if not failed:
        if not ids:
            return 0
        condition = condition & col(OutboxMessage.id).in_(ids)
    result = await session.execute(
        update(OutboxMessage)
        .where(condition)
        .values(
            status="pending", attempts=0, next_attempt_at=now, lease_until=None, alerted_at=None
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def recipients(
    session: AsyncSession,
    role: str,
    *,
    unit_id: int | None = None,
    township_id: int | None = None,
    default_locale: str = "zh_CN",
) -> list[Recipient]:
    """Every chat that receives ``role``'s pushes (optionally one unit's or township's).

    Private chats of the accounts bound to the role come first, then active group chats and
    group robots, each once. Console accounts (``pufa chat``) are left out: a terminal
    session cannot be reached with a push.
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    query = select(ChatIdentity).where(
        col(ChatIdentity.role) == role, col(ChatIdentity.channel) != NO_PUSH_CHANNEL
    )
    targets = select(PushTarget).where(col(PushTarget.role) == role, col(PushTarget.active))
    if unit_id is not None:
        query = query.where(col(ChatIdentity.unit_id) == unit_id)
        targets = targets.where(col(PushTarget.unit_id) == unit_id)
    if township_id is not None:
        query = query.where(col(ChatIdentity.township_id) == township_id)
        targets = targets.where(col(PushTarget.township_id) == township_id)
    found: dict[tuple[str, str], Recipient] = {}
    for identity in (await session.execute(query.order_by(col(ChatIdentity.id)))).scalars():
        key = (identity.channel, identity.external_id)
        found.setdefault(
            key,
            Recipient(
                identity.channel,
                identity.external_id,
                identity.locale or default_locale,
                identity.id,
            ),
        )
    for target in (await session.execute(targets.order_by(col(PushTarget.id)))).scalars():
        found.setdefault(
            (target.channel, target.address),
            Recipient(target.channel, target.address, target.locale),
        )
    return list(found.values())


async def set_push_target(
    session: AsyncSession,
    *,
    channel: str,
    address: str,
    role: str,
    unit_id: int | None = None,
    township_id: int | None = None,
    locale: str = "zh_CN",
    label: str = "",
    secret: str | None = None,
) -> PushTarget:
    """Bind a group chat (or robot) to ``role``: it receives that role's pushes from now on.

    Binding the same channel address again replaces its role and scope.
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    target = (
        await session.execute(
            select(PushTarget).where(
                col(PushTarget.channel) == channel, col(PushTarget.address) == address
            )
        )
    ).scalar_one_or_none()
    if target is None:
        target = PushTarget(channel=channel, address=address, role=role)
        session.add(target)
    target.role = role
    target.unit_id = unit_id
    target.township_id = township_id
    target.locale = locale
    target.label = label
    target.secret = secret
    target.active = True
    await session.flush()
    return target
