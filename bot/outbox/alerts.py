"""Telling the coordinator, once, which messages could not be delivered.

A message the worker gives up on (a permanent error such as a blocked bot or a chat that no
longer exists, or its last attempt) needs a person: rebind the unit's chat, ask a township to
unblock the bot, check the connection to the platform. :func:`alert_failures` gathers the
failed messages nobody was told about yet, stamps them ``alerted_at`` and queues one digest
for every chat bound to the coordinator role, through the outbox like any other push, in the
coordinator's language. Each failure is reported once: the rows are locked (``SKIP LOCKED`` on
PostgreSQL, one writer on SQLite) and stamped in the transaction that queues the digest.
Failures that arrive together go in one digest: the report waits until no new failure came
for ``settle`` (but never longer than ``max_wait``).

Failed alerts and failed chat replies are never reported (no alert about an alert). When no
coordinator is bound yet the failures wait, and are reported once one is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.outbox.queue import Outgoing, enqueue, recipients
from core.i18n import N_, Translator, translator
from core.messages import Reply
from storage.models import ChatIdentity, Township, Unit
from storage.models_outbox import OutboxMessage, PushTarget

__all__ = ["QUIET_KINDS", "AlertRun", "alert_failures", "digest", "reportable"]

QUIET_KINDS = ("alert", "reply")
"""Kinds whose failures are not reported: alerts themselves, and answers to a chat."""

SHOWN = 10
"""Failures listed by name in one digest; the rest are counted."""

_KINDS = {
    "notice": N_("notice"),
    "reminder": N_("reminder"),
    "escalation": N_("escalation"),
    "nudge": N_("nudge"),
}


@dataclass(frozen=True, slots=True)
class AlertRun:
    """What :func:`alert_failures` did: digests ``queued``, or failures ``waiting`` to settle
    before they are reported."""

    queued: int = 0
    waiting: bool = False


def reportable() -> Any:
    """The condition of a failure that waits to be reported."""
    return (
        (col(OutboxMessage.status) == "failed")
        & col(OutboxMessage.alerted_at).is_(None)
        & col(OutboxMessage.kind).not_in(QUIET_KINDS)
    )


async def alert_failures(
    session: AsyncSession,
    now: datetime,
    *,
    default_locale: str = "zh_CN",
    postgres: bool = False,
    settle: timedelta = timedelta(seconds=10),
    max_wait: timedelta = timedelta(minutes=2),
) -> AlertRun:
    """Queue one digest of the failures not reported yet to every coordinator chat, in
    ``session``'s transaction, once they have settled. Nothing is queued when nothing new
    failed, or no coordinator is bound yet (the failures wait for one)."""
    pick = (
        select(col(OutboxMessage.id), col(OutboxMessage.last_attempt_at))
        .where(reportable())
        .order_by(col(OutboxMessage.id))
    )
    if postgres:
        pick = pick.with_for_update(skip_locked=True)
    found = list((await session.execute(pick)).all())
    if not found:
        return AlertRun()
    coordinators = await recipients(session, "coordinator", default_locale=default_locale)
    if not coordinators:
        return AlertRun()
    times = [at for _id, at in found if at is not None]
    if times and max(times) > now - settle and min(times) > now - max_wait:
        return AlertRun(waiting=True)
    ids = [message_id for message_id, _at in found]
    shown = list(
        (
            await session.execute(
                select(OutboxMessage)
                .where(col(OutboxMessage.id).in_(ids[:SHOWN]))
                .order_by(col(OutboxMessage.id))
            )
        ).scalars()
    )
    names = await _names(session, shown)
    await session.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.id).in_(ids))
        .values(alerted_at=now)
        .execution_options(synchronize_session=False)
    )
    messages = [
        Outgoing(
            dedupe_key=f"outbox:failed:{ids[0]}-{ids[-1]}:{to.channel}:{to.address}",
            recipient=to,
            reply=Reply(digest(translator(to.locale), len(ids), shown, names)),
            kind="alert",
        )
        for to in coordinators
    ]
    return AlertRun(queued=await enqueue(session, messages, now))


def digest(
    t: Translator,
    total: int,
    shown: Sequence[OutboxMessage],
    names: dict[tuple[str, str], str],
) -> str:
    """The digest text: how many failed, the first few (what, to whom, why), what to do."""
    lines = [
        t.ngettext(
            "{n} message could not be delivered and needs a person:",
            "{n} messages could not be delivered and need a person:",
            total,
        )
    ]
    for message in shown:
        what = t._(_KINDS[message.kind]) if message.kind in _KINDS else message.kind
        where = f"{message.channel} {message.recipient}"
        name = names.get((message.channel, message.recipient))
        whom = f"{name} ({where})" if name else where
        lines.append(
            t._(
                "• {what} to {whom}: {why}",
                what=what,
                whom=whom,
                why=_why(t, message.last_error or ""),
            )
        )
    if total > len(shown):
        lines.append(t._("…and {n} more.", n=total - len(shown)))
    lines.append(
        t._(
            "See them with `pufa outbox list --status failed`; once the cause is fixed, send "
            "them again with `pufa outbox retry --failed`."
        )
    )
    return "\n".join(lines)


def _why(t: Translator, error: str) -> str:
    lowered = error.lower()
    if "blocked" in lowered:
        return t._("the bot was blocked in that chat")
    if "chat not found" in lowered:
        return t._("the chat no longer exists or the bot was removed from it")
    if "kicked" in lowered or "not a member" in lowered:
        return t._("the bot was removed from that chat")
    return error[:160] or t._("unknown error")


async def _names(
    session: AsyncSession, messages: Sequence[OutboxMessage]
) -> dict[tuple[str, str], str]:
    """Who each (channel, recipient) is: the unit or township it is bound to, or the label of
    a bound group."""
    wanted = {(m.channel, m.recipient) for m in messages}
    if not wanted:
        return {}
    units = {u.id: u.name for u in (await session.execute(select(Unit))).scalars()}
    townships = {t.id: t.name for t in (await session.execute(select(Township))).scalars()}
    found: dict[tuple[str, str], str] = {}
    addresses = [address for _channel, address in wanted]
    targets = await session.execute(
        select(PushTarget).where(col(PushTarget.address).in_(addresses))
    )
    for target in targets.scalars():
        key = (target.channel, target.address)
        if key in wanted:
            scope = units.get(target.unit_id or 0) or townships.get(target.township_id or 0)
            found[key] = target.label or scope or ""
    identities = await session.execute(
        select(ChatIdentity).where(col(ChatIdentity.external_id).in_(addresses))
    )
    for identity in identities.scalars():
        key = (identity.channel, identity.external_id)
        if key in wanted and not found.get(key):
            found[key] = units.get(identity.unit_id or 0) or townships.get(
                identity.township_id or 0, ""
            )
    return {k: v for k, v in found.items() if v}
