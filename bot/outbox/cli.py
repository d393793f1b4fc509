"""``pufa notify`` and ``pufa outbox list|retry``: notices through the outbox, and what it holds.

- ``pufa notify units|staff|coordinator [--committee standing|executive] [--township CODE]
  TEXT`` queues a notice to every chat bound to the role (the units of one committee's rota,
  the staff of one township) and prints the number queued alone on its last line. A running
  ``pufa serve`` sends it.
- ``pufa outbox list [--status …] [--format table|json]`` lists messages pufa started itself,
  newest first, times in ``PUFA_TIMEZONE`` with their offset.
- ``pufa outbox retry ID… | --failed`` sends failed messages again.
"""

from __future__ import annotations

import asyncio
import json
import unicodedata
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import click
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from bot.outbox.notices import AUDIENCES, COMMITTEES, MAX_TEXT, notice_messages, send_notice
from bot.outbox.queue import listed_text, retry_messages
from core.cli import get_settings
from core.clock import utcnow
from core.errors import PufaError
from core.i18n import translator
from storage.db import transaction
from storage.models_outbox import OUTBOX_STATUSES, OutboxMessage
from storage.runner import with_sessions

__all__ = ["commands", "format_table", "local_time", "notice_messages"]


def local_time(value: datetime | None, tz: ZoneInfo) -> str:
    """``2026-12-01 10:00:00+08:00``: a UTC time in the district's zone with its offset."""
    if value is None:
        return ""
    return value.astimezone(tz).isoformat(sep=" ", timespec="seconds")


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain text table, columns padded to the widest cell (Chinese counts double)."""
    table = [list(header), *[list(r) for r in rows]]
    widths = [max(_width(row[i]) for row in table) for i in range(len(header))]
    lines = [
        "  ".join(cell + " " * (widths[i] - _width(cell)) for i, cell in enumerate(row)).rstrip()
        for row in table
    ]
    return "\n".join(lines)


@click.command("notify")
@click.argument("role", type=click.Choice(list(AUDIENCES)))
@click.argument("text", nargs=-1, required=True)
@click.option(
    "--committee",
    type=click.Choice(list(COMMITTEES)),
    default=None,
    help="Units: only those in this committee's lecture rota (standing 区委常委会, "
    "executive 政府常务会).",
)
@click.option("--township", default=None, help="Staff: only those of this township (code).")
@click.option(
    "--key",
    default=None,
    help="Name of this notice: queuing it again under the same key sends nothing new.",
)
@click.pass_context
def notify(
    ctx: click.Context,
    role: str,
    text: tuple[str, ...],
    committee: str | None,
    township: str | None,
    key: str | None,
) -> None:
    """Queue the notice TEXT to every chat bound to ROLE; prints the number queued last."""
    if committee is not None and role != "units":
        raise click.UsageError("--committee applies to units only")
    if township is not None and role != "staff":
        raise click.UsageError("--township applies to staff only")
    body = " ".join(text).strip()
    if not body:
        raise click.UsageError("the notice TEXT is empty")
    if len(body) > MAX_TEXT:
        raise click.UsageError(f"the notice is {len(body)} characters; at most {MAX_TEXT}")
    settings = get_settings(ctx)
    notice_key = key or uuid.uuid4().hex[:16]

    async def run(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
        async with transaction(sessions) as session:
            result = await send_notice(
                session,
                role,
                body,
                key=notice_key,
                now=utcnow(),
                committee=committee,
                township=township,
                default_locale=settings.default_locale,
            )
            return result.chats, result.queued

    found, queued = asyncio.run(with_sessions(settings.database_url, run))
    if not found:
        invite = {"units": "unit UNIT", "staff": "staff --township CODE"}.get(role, role)
        click.echo(
            f"nobody is bound to that role yet: bind chats with `pufa invite {invite}`",
            err=True,
        )
    else:
        scope = f" (units of the {committee} committee)" if committee else ""
        scope = f" (staff of {township})" if township else scope
        click.echo(
            f"notice {notice_key}: {queued} of {found} chats queued{scope}; `pufa serve` sends them"
        )
    click.echo(str(queued))


@click.group("outbox")
def outbox() -> None:
    """Messages pufa starts itself (reminders, escalations, notices)."""


@outbox.command("list")
@click.option(
    "--status",
    type=click.Choice(list(OUTBOX_STATUSES)),
    default=None,
    help="Only messages in this state.",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@click.pass_context
def outbox_list(ctx: click.Context, status: str | None, fmt: str, limit: int) -> None:
    """List outbox messages, newest first (times in PUFA_TIMEZONE)."""
    settings = get_settings(ctx)
    tz = settings.tz

    async def run(sessions: async_sessionmaker[AsyncSession]) -> list[OutboxMessage]:
        query = select(OutboxMessage).order_by(col(OutboxMessage.id).desc()).limit(limit)
        if status is not None:
            query = query.where(col(OutboxMessage.status) == status)
        async with sessions() as session:
            return list((await session.execute(query)).scalars())

    rows = asyncio.run(with_sessions(settings.database_url, run))
    if fmt == "json":
        click.echo(json.dumps([_as_json(m, tz) for m in rows], ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("no messages")
        return
    header = ["id", "status", "channel", "recipient", "kind", "attempts", "when", "last error"]
    table = [
        [
            str(m.id),
            m.status,
            m.channel,
            m.recipient,
            m.kind,
            str(m.attempts),
            local_time(m.sent_at or m.next_attempt_at, tz),
            _short(m.last_error or ""),
        ]
        for m in rows
    ]
    click.echo(format_table(header, table))


def _short(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _as_json(message: OutboxMessage, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "id": message.id,
        "status": message.status,
        "channel": message.channel,
        "recipient": message.recipient,
        "kind": message.kind,
        "locale": message.locale,
        "attempts": message.attempts,
        "last_error": message.last_error,
        "text": listed_text(message.body or {}, translator(None)),
        "dedupe_key": message.dedupe_key,
        "created_at": local_time(message.created_at, tz).replace(" ", "T"),
        "next_attempt_at": local_time(message.next_attempt_at, tz).replace(" ", "T"),
        "sent_at": local_time(message.sent_at, tz).replace(" ", "T") or None,
    }


@outbox.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--failed", "all_failed", is_flag=True, help="Every failed message.")
@click.pass_context
def outbox_retry(ctx: click.Context, ids: tuple[int, ...], all_failed: bool) -> None:
    """Send failed messages (IDs, or --failed for all) again; prints how many last."""
    if bool(ids) == all_failed:
        raise click.UsageError("give message IDs or --failed (not both)")
    settings = get_settings(ctx)

    async def run(sessions: async_sessionmaker[AsyncSession]) -> int:
        async with transaction(sessions) as session:
            if ids:
                result = await session.execute(
                    select(col(OutboxMessage.id), col(OutboxMessage.status)).where(
                        col(OutboxMessage.id).in_(ids)
                    )
                )
                found = {message_id: status for message_id, status in result.all()}
                missing = [str(i) for i in ids if i not in found]
                if missing:
                    raise PufaError(f"no outbox message {', '.join(missing)}")
                wrong = [f"{i} is {found[i]}" for i in ids if found[i] != "failed"]
                if wrong:
                    raise PufaError(f"only failed messages can be retried: {'; '.join(wrong)}")
            return await retry_messages(session, utcnow(), ids=list(ids), failed=all_failed)

    count = asyncio.run(with_sessions(settings.database_url, run))
    click.echo(f"{count} message(s) queued again; `pufa serve` sends them")
    click.echo(str(count))


commands = [notify, outbox]
