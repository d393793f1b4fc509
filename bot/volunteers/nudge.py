"""The weekly nudge: each township's staff are told which villages are still short.

Run hourly by ``pufa serve`` (and on demand by ``pufa volunteers nudge``). From Monday 09:00
local time on, every township with a village below target gets one message per staff chat for
the ISO week, queued in the outbox with the dedupe key
``volunteers.nudge:<township>:<year>-W<week>:<channel>:<chat>`` — so running again in the same
week queues nothing new. A township with no village short gets nothing. The figures are the
township's working view (what ``/register`` shows), sample data included where a demo was
loaded.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.outbox.queue import Outgoing, enqueue, recipients
from bot.volunteers.coverage import iso_week, nudge_due, nudge_text
from bot.volunteers.store import coverage
from core.feature import PeriodicTask, TaskContext
from core.i18n import translator
from core.messages import Reply
from storage.db import transaction
from storage.models import Township

__all__ = ["NUDGE_TASK", "queue_nudges"]

KEY_PREFIX = "volunteers.nudge"


async def queue_nudges(
    session: AsyncSession, *, now: datetime, tz: ZoneInfo, default_locale: str = "zh_CN"
) -> int:
    """Queue this week's nudges that are due and not yet queued; return how many are new."""
    local = now.astimezone(tz)
    if not nudge_due(local):
        return 0
    week = iso_week(local)
    figures = await coverage(session, include_sample=True)
    ids = {
        code: tid
        for code, tid in (await session.execute(select(col(Township.code), col(Township.id)))).all()
    }
    messages: list[Outgoing] = []
    for town in figures.townships:
        short = figures.short_villages(town.township)
        if not short:
            continue
        for recipient in await recipients(
            session, "staff", township_id=ids[town.township], default_locale=default_locale
        ):
            text = nudge_text(translator(recipient.locale), town.township_name, short)
            messages.append(
                Outgoing(
                    dedupe_key=(
                        f"{KEY_PREFIX}:{town.township}:{week}:"
                        f"{recipient.channel}:{recipient.address}"
                    ),
                    recipient=recipient,
                    reply=Reply(text),
                    kind="nudge",
                )
            )
    return await enqueue(session, messages, now)


async def _run(ctx: TaskContext) -> None:
    async with transaction(ctx.sessions) as session:
        await queue_nudges(
            session,
            now=ctx.now,
            tz=ctx.settings.tz,
            default_locale=ctx.settings.default_locale,
        )


NUDGE_TASK = PeriodicTask("volunteers.nudge", timedelta(hours=1), _run, first=timedelta(minutes=1))
"""Checks hourly whether this week's nudge is due (the dedupe key keeps it weekly)."""
