"""Notices: a message to the lecture units, the township staff or the rota coordinator, queued
through the outbox (what ``pufa notify`` does), and the notices sent lately.

The audience is every chat bound to the role: all units, or those in one committee's rota;
all township staff, or those of one township; the coordinator. Each chat gets the text under a
``[通知]`` heading in its own language (:mod:`bot.outbox.notices`). The form carries a key made
when it was drawn, so submitting it twice (a double click, the browser's resend) queues the
notice once. Every notice is written to the audit log with its audience, text and how many
chats it was queued for; the last ones are listed under the form.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlmodel import col

from bot.outbox.notices import AUDIENCES, COMMITTEES, MAX_TEXT, send_notice
from bot.rota.texts import committee_name
from bot.web.auth import Principal
from bot.web.common import flash, form_text, townships
from bot.web.layout import Page, Route, console_locale, render
from core.appkeys import SESSIONS, SETTINGS
from core.clock import utcnow
from core.i18n import N_, translator
from storage.audit import record
from storage.db import transaction
from storage.models import AuditLog

__all__ = ["PAGE"]

AUDIENCE_LABELS = {
    "units": N_("Lecture units"),
    "staff": N_("Township staff"),
    "coordinator": N_("The rota coordinator"),
}
RECENT = 20
"""Notices listed under the form."""
_KEY = re.compile(r"[0-9a-f]{32}")


async def _page(
    request: web.Request,
    values: dict[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
) -> web.Response:
    t = translator(await console_locale(request))
    async with request.config_dict[SESSIONS]() as db:
        towns = await townships(db)
        sent = list(
            (
                await db.execute(
                    select(AuditLog)
                    .where(col(AuditLog.action) == "notice.send")
                    .order_by(col(AuditLog.id).desc())
                    .limit(RECENT)
                )
            ).scalars()
        )
    names = dict(towns)
    recent: list[dict[str, Any]] = []
    for entry in sent:
        after = entry.detail.get("after") or {}
        audience = str(after.get("audience", ""))
        scope = ""
        if after.get("committee"):
            scope = committee_name(t, str(after["committee"]))
        elif after.get("township"):
            scope = names.get(str(after["township"]), str(after["township"]))
        recent.append(
            {
                "at": entry.at,
                "actor": entry.actor,
                "audience": t._(AUDIENCE_LABELS.get(audience, audience)),
                "scope": scope,
                "text": str(after.get("text", "")),
                "chats": after.get("chats", 0),
                "queued": after.get("queued", 0),
            }
        )
    form = {"audience": "units", "committee": "", "township": "", "text": ""}
    form.update(values or {})
    form["key"] = uuid.uuid4().hex if error is None else form.get("key", uuid.uuid4().hex)
    return await render(
        request,
        "notices.html",
        {
            "form": form,
            "error": error,
            "audiences": [(code, t._(label)) for code, label in AUDIENCE_LABELS.items()],
            "committees": [(c, committee_name(t, c)) for c in COMMITTEES],
            "townships": towns,
            "max_text": MAX_TEXT,
            "recent": recent,
        },
        status=status,
    )


async def notices(request: web.Request, user: Principal) -> web.StreamResponse:
    """``GET /admin/notices``."""
    return await _page(request)


async def send(request: web.Request, user: Principal) -> web.StreamResponse:
    """``POST /admin/notices``: ``audience``, ``committee`` (units), ``township`` (staff),
    ``text`` and the form's ``key``."""
    form = await request.post()
    values = {
        "audience": form_text(form.get("audience"), 16),
        "committee": form_text(form.get("committee"), 16),
        "township": form_text(form.get("township"), 64),
        "text": form_text(form.get("text"), MAX_TEXT + 1),
        "key": form_text(form.get("key"), 32),
    }
    t = translator(await console_locale(request))
    audience, committee, township, text = (
        values["audience"],
        values["committee"] or None,
        values["township"] or None,
        values["text"],
    )
    key = values["key"] if _KEY.fullmatch(values["key"]) else uuid.uuid4().hex
    error: str | None = None
    if audience not in AUDIENCES:
        error = t._("Choose who receives the notice.")
    elif committee is not None and (audience != "units" or committee not in COMMITTEES):
        error = t._("A committee can be chosen for lecture units only.")
    elif township is not None and audience != "staff":
        error = t._("A township can be chosen for township staff only.")
    elif not text:
        error = t._("Write the notice.")
    elif len(text) > MAX_TEXT:
        error = t._("A notice has at most {max} characters.", max=MAX_TEXT)
    if error is None and township is not None:
        async with request.config_dict[SESSIONS]() as db:
            if township not in dict(await townships(db)):
                error = t._("There is no township {code}.", code=township)
    if error is not None:
        return await _page(request, values, error, status=422)
    settings = request.config_dict[SETTINGS]
    async with transaction(request.config_dict[SESSIONS]) as db:
        result = await send_notice(
            db,
            audience,
            text,
            key=key,
            now=utcnow(),
            committee=committee,
            township=township,
            default_locale=settings.default_locale,
        )
        if result.chats == 0:
            error = t._(
                "Nobody is bound to that audience yet, so nothing was queued. Bind chats with"
                " pufa invite unit, pufa invite staff or pufa invite coordinator."
            )
        elif result.queued:
            record(
                db,
                user.actor,
                "notice.send",
                audience,
                before=None,
                after={
                    "audience": audience,
                    "committee": committee,
                    "township": township,
                    "text": text,
                    "chats": result.chats,
                    "queued": result.queued,
                    "key": key,
                },
            )
    if error is not None:
        return await _page(request, values, error, status=422)
    if result.queued:
        await flash(request, N_("The notice is queued for {n} chats."), n=result.queued)
    else:
        await flash(request, N_("This notice was queued already; nothing new was sent."))
    raise web.HTTPSeeOther("/admin/notices")


PAGE = Page(
    name="notices",
    title=N_("Notices"),
    path="/notices",
    permission="notices.send",
    routes=(
        Route("GET", "/notices", notices, "notices.send"),
        Route("POST", "/notices", send, "notices.send"),
    ),
)
"""The notices page."""
