"""Notices: a text for everybody bound to a role, queued through the outbox.

What ``pufa notify`` and the console's notice form both do. The audience is one of
:data:`AUDIENCES`: the lecture units (optionally only those in one committee's rota), the
township staff (optionally of one township) or the rota coordinator. Each chat gets one message
headed in its own language; the notice's ``key`` makes queueing it idempotent, so sending the
same notice twice (a second click, a re-run script) queues nothing new.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.outbox.queue import Outgoing, Recipient, enqueue, recipients
from core.errors import PufaError
from core.i18n import N_, translator
from core.messages import Reply
from storage.models import RotaEntry, Township

__all__ = [
    "AUDIENCES",
    "COMMITTEES",
    "MAX_TEXT",
    "NOTICE",
    "NoticeResult",
    "notice_messages",
    "notice_targets",
    "send_notice",
]

MAX_TEXT = 4000
"""Longest notice text (Telegram takes 4096 characters, leaving room for the heading)."""

NOTICE = N_("[Notice] {text}")

AUDIENCES: dict[str, str] = {"units": "unit", "staff": "staff", "coordinator": "coordinator"}
"""Audience (as ``pufa notify`` names it) → the push role it reaches."""

COMMITTEES = ("standing", "executive")
"""The committees whose rota's units a notice may be limited to."""


@dataclass(frozen=True, slots=True)
class NoticeResult:
    """What queueing a notice did: the chats found for the audience and how many were new."""

    chats: int
    queued: int


def notice_messages(targets: Sequence[Recipient], text: str, key: str) -> list[Outgoing]:
    """One notice per chat, headed in the chat's language; ``key`` makes it idempotent."""
    return [
        Outgoing(
            dedupe_key=f"notice:{key}:{to.channel}:{to.address}",
            recipient=to,
            reply=Reply(translator(to.locale)._(NOTICE, text=text)),
            kind="notice",
        )
        for to in targets
    ]


async def notice_targets(
    session: AsyncSession,
    audience: str,
    *,
    committee: str | None = None,
    township: str | None = None,
    default_locale: str = "zh_CN",
) -> list[Recipient]:
    """Every chat a notice to ``audience`` reaches (each once), in a stable order.

    :class:`ValueError` for an unknown audience or committee, or a scope that does not apply
    (a committee for anyone but units, a township for anyone but staff); :class:`PufaError`
    for a township that does not exist.
    """
    role = AUDIENCES.get(audience)
    if role is None:
        raise ValueError(f"unknown audience {audience!r}")
    if committee is not None and (role != "unit" or committee not in COMMITTEES):
        raise ValueError(f"a committee ({committee!r}) limits notices to units only")
    if township is not None and role != "staff":
        raise ValueError("a township limits notices to staff only")
    if role == "unit" and committee is not None:
        unit_ids = (
            await session.execute(
                select(col(RotaEntry.unit_id))
                .where(col(RotaEntry.committee) == committee)
                .order_by(col(RotaEntry.position))
            )
        ).scalars()
        found: dict[tuple[str, str], Recipient] = {}
        for unit_id in unit_ids:
            for to in await recipients(
                session, "unit", unit_id=unit_id, default_locale=default_locale
            ):
                found.setdefault((to.channel, to.address), to)
        return list(found.values())
    if role == "staff" and township is not None:
        found_township = (
            await session.execute(select(Township).where(col(Township.code) == township))
        ).scalar_one_or_none()
        if found_township is None:
            raise PufaError(f"unknown township {township!r}")
        return await recipients(
            session, "staff", township_id=found_township.id, default_locale=default_locale
        )
    return await recipients(session, role, default_locale=default_locale)


async def send_notice(
    session: AsyncSession,
    audience: str,
    text: str,
    *,
    key: str,
    now: datetime,
    committee: str | None = None,
    township: str | None = None,
    default_locale: str = "zh_CN",
) -> NoticeResult:
    """Queue ``text`` (stripped, at most :data:`MAX_TEXT` characters, else
    :class:`ValueError`) to every chat of the audience in ``session``'s transaction."""
    body = text.strip()
    if not body or len(body) > MAX_TEXT:
        raise ValueError(f"a notice has 1 to {MAX_TEXT} characters")
    targets = await notice_targets(
        session, audience, committee=committee, township=township, default_locale=default_locale
    )
    queued = await enqueue(session, notice_messages(targets, body, key), now)
    return NoticeResult(len(targets), queued)
