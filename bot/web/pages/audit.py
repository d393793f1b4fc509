"""The audit log: who did what and when, with the state before and after, filtered.

Filters: actor and subject (text contained), action (exact, from the actions recorded), and a
date range in ``PUFA_TIMEZONE``. Newest first, 100 a page, with a link to older entries.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy import select
from sqlmodel import col

from bot.web.auth import Principal
from bot.web.layout import Page, Route, render
from core.appkeys import SESSIONS, SETTINGS
from core.i18n import N_
from core.ids import parse_id
from storage.models import AuditLog

__all__ = ["PAGE"]

PER_PAGE = 100


def _day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def audit(request: web.Request, user: Principal) -> web.StreamResponse:
    """``GET /admin/audit``."""
    q = request.query
    actor = q.get("actor", "").strip()[:128]
    action = q.get("action", "").strip()[:64]
    subject = q.get("subject", "").strip()[:200]
    start, end = _day(q.get("from")), _day(q.get("to"))
    before = parse_id(q.get("before"))
    tz = request.config_dict[SETTINGS].tz
    stmt = select(AuditLog)
    if actor:
        stmt = stmt.where(col(AuditLog.actor).like(_like(actor), escape="\\"))
    if action:
        stmt = stmt.where(col(AuditLog.action) == action)
    if subject:
        stmt = stmt.where(col(AuditLog.subject).like(_like(subject), escape="\\"))
    if start:
        stmt = stmt.where(col(AuditLog.at) >= datetime.combine(start, time(), tz))
    if end:
        stmt = stmt.where(col(AuditLog.at) < datetime.combine(end + timedelta(days=1), time(), tz))
    if before:
        stmt = stmt.where(col(AuditLog.id) < before)
    async with request.config_dict[SESSIONS]() as db:
        entries = list(
            (await db.execute(stmt.order_by(col(AuditLog.id).desc()).limit(PER_PAGE + 1))).scalars()
        )
        actions = sorted(
            (await db.execute(select(col(AuditLog.action)).distinct())).scalars().all()
        )
    more = len(entries) > PER_PAGE
    entries = entries[:PER_PAGE]
    rows: list[dict[str, Any]] = [
        {
            "at": e.at,
            "actor": e.actor,
            "action": e.action,
            "subject": e.subject,
            "before": _json(e.detail.get("before")) if "before" in e.detail else None,
            "after": _json(e.detail.get("after")) if "after" in e.detail else None,
            "other": _json({k: v for k, v in e.detail.items() if k not in ("before", "after")}),
        }
        for e in entries
    ]
    filters = {
        k: v
        for k, v in {
            "actor": actor,
            "action": action,
            "subject": subject,
            "from": q.get("from", ""),
            "to": q.get("to", ""),
        }.items()
        if v
    }
    older = (
        "/admin/audit?" + urlencode({**filters, "before": entries[-1].id})
        if more and entries
        else None
    )
    return await render(
        request,
        "audit.html",
        {"rows": rows, "actions": actions, "filters": filters, "older": older},
    )


def _json(value: Any) -> str:
    if value in (None, {}):
        return ""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


PAGE = Page(
    name="audit",
    title=N_("Audit log"),
    path="/audit",
    permission="audit.view",
    routes=(Route("GET", "/audit", audit, "audit.view"),),
)
