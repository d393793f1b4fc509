"""The outbox: messages pufa started itself that are still waiting or that failed; retry.

Pending (and being sent) and failed messages are listed newest first with their channel,
recipient, attempts, next attempt and last error. Retrying makes failed messages pending again,
due now (:func:`bot.outbox.queue.retry_messages`), and is written to the audit log.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import func, select
from sqlmodel import col

from bot.outbox.queue import listed_text, retry_messages
from bot.web.auth import Principal
from bot.web.common import flash
from bot.web.layout import Page, Route, console_locale, render
from core.appkeys import SESSIONS
from core.clock import utcnow
from core.i18n import N_, Translator, translator
from core.ids import parse_id
from storage.audit import record
from storage.db import transaction
from storage.models_outbox import OutboxMessage

__all__ = ["PAGE"]

SHOWN = 200
"""Messages listed per state."""


def _row(m: OutboxMessage, t: Translator) -> dict[str, Any]:
    text = listed_text(m.body, t) if isinstance(m.body, dict) else ""
    return {
        "id": m.id,
        "kind": m.kind,
        "channel": m.channel,
        "recipient": m.recipient,
        "status": m.status,
        "attempts": m.attempts,
        "next_attempt_at": m.next_attempt_at,
        "created_at": m.created_at,
        "last_error": m.last_error or "",
        "text": text if len(text) <= 140 else text[:139] + "…",
    }


async def outbox(request: web.Request, user: Principal) -> web.StreamResponse:
    """``GET /admin/outbox``."""
    async with request.config_dict[SESSIONS]() as db:
        counts = dict(
            (
                await db.execute(
                    select(col(OutboxMessage.status), func.count()).group_by(
                        col(OutboxMessage.status)
                    )
                )
            ).all()
        )

        t = translator(await console_locale(request))

        async def listed(*statuses: str) -> list[dict[str, Any]]:
            rows = await db.execute(
                select(OutboxMessage)
                .where(col(OutboxMessage.status).in_(statuses))
                .order_by(col(OutboxMessage.id).desc())
                .limit(SHOWN)
            )
            return [_row(m, t) for m in rows.scalars()]

        pending = await listed("pending", "sending")
        failed = await listed("failed")
    return await render(
        request, "outbox.html", {"counts": counts, "pending": pending, "failed": failed}
    )


async def retry(request: web.Request, user: Principal) -> web.StreamResponse:
    """``POST /admin/outbox/retry``: the failed messages ticked (``id``), or all of them
    (``all=1``), are sent again."""
    form = await request.post()
    every = form.get("all") == "1"
    ids = sorted({i for i in map(parse_id, form.getall("id", [])) if i is not None})
    async with transaction(request.config_dict[SESSIONS]) as db:
        stmt = select(col(OutboxMessage.id)).where(col(OutboxMessage.status) == "failed")
        if not every:
            stmt = stmt.where(col(OutboxMessage.id).in_(ids))
        found = [i for i in (await db.execute(stmt)).scalars() if i is not None]
        n = await retry_messages(db, utcnow(), ids=found) if found else 0
        if n:
            record(
                db,
                user.actor,
                "outbox.retry",
                ",".join(str(i) for i in found)[:200],
                before={"status": "failed", "ids": found},
                after={"status": "pending", "ids": found},
            )
    await flash(request, N_("{n} failed messages will be sent again."), n=n)
    raise web.HTTPSeeOther("/admin/outbox")


PAGE = Page(
    name="outbox",
    title=N_("Outbox"),
    path="/outbox",
    permission="outbox.view",
    routes=(
        Route("GET", "/outbox", outbox, "outbox.view"),
        Route("POST", "/outbox/retry", retry, "outbox.retry"),
    ),
)
