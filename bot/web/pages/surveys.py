"""Surveys: open or close one, invitation batches per township, posters, token CSV.

- ``/admin/surveys``: every survey with its state, window and response counts (real and
  sample); an admin opens, closes or returns it to its catalog window (audited, with the state
  before and after).
- ``/admin/surveys/{code}``: its invitation batches per township (how many tokens, how many
  used) and a form that creates a batch and downloads its CSV (``token,url``). Only hashes of
  the tokens are stored, so that download is the one chance to get them.
- ``/admin/surveys/{code}/poster/{township}``: a printable A4 poster for an open survey: title,
  QR code of the township's link, the short link itself, and how long answering takes.

A staff account sees and makes its own township's batches and posters only.
"""

from __future__ import annotations

from typing import Any

import segno
from aiohttp import web
from sqlalchemy import func, select
from sqlmodel import col

from bot.web.auth import Principal
from bot.web.common import catalog, flash, survey_or_404, townships
from bot.web.layout import Page, Route, console_locale, render
from core.appkeys import SESSIONS, SETTINGS
from core.clock import utcnow
from core.i18n import N_
from storage.audit import record
from storage.db import transaction
from storage.models_surveys import SURVEY_STATUSES, SurveyInvitation, SurveyResponse, SurveyState
from surveys.invitations import create_invitations, invitations_csv
from surveys.schema import Survey, localized
from surveys.state import state_is_open, sync_catalog

__all__ = ["PAGE", "minutes_to_answer", "poster_link"]

MAX_CONSOLE_BATCH = 5000
"""Largest batch made from the console (the command line makes up to 100,000)."""
SECONDS_BY_TYPE = {"scale": 5, "single": 5, "multiple": 8, "text": 15}
"""About how long a resident spends on a question of each type, in seconds."""
STATUS_LABELS = {
    "scheduled": N_("follows its answering window"),
    "open": N_("opened by hand"),
    "closed": N_("closed by hand"),
}
STATUS_FLASH = {
    "open": N_("Survey {code} is open: answers are taken now."),
    "closed": N_("Survey {code} is closed: no more answers are taken."),
    "scheduled": N_("Survey {code} follows its answering window again."),
}
STATUS_ACTIONS = {
    "open": N_("Open now"),
    "closed": N_("Close"),
    "scheduled": N_("Follow the window"),
}


def minutes_to_answer(survey: Survey) -> int:
    """About how many minutes answering takes (:data:`SECONDS_BY_TYPE`), at least one."""
    seconds = sum(SECONDS_BY_TYPE.get(str(q.type), 10) for q in survey.questions)
    return max(1, round(seconds / 60))


def poster_link(public_url: str, survey: str, township: str) -> str:
    """The short link on a township's poster: the survey page with the township as source."""
    return f"{public_url.rstrip('/')}/s/{survey}?src={township}"


def _count_responses(township: str | None) -> Any:
    stmt = select(col(SurveyResponse.survey), col(SurveyResponse.sample), func.count()).group_by(
        col(SurveyResponse.survey), col(SurveyResponse.sample)
    )
    if township is not None:
        stmt = stmt.where(col(SurveyResponse.township) == township)
    return stmt


async def survey_list(request: web.Request, user: Principal) -> web.StreamResponse:
    """``GET /admin/surveys``."""
    locale = await console_locale(request)
    surveys = catalog(request)
    async with transaction(request.config_dict[SESSIONS]) as db:
        await sync_catalog(db, surveys)
        states = {
            s.code: s
            for s in (
                await db.execute(select(SurveyState).order_by(col(SurveyState.code)))
            ).scalars()
        }
        counts: dict[tuple[str, bool], int] = {
            (code, bool(sample)): n
            for code, sample, n in (
                await db.execute(_count_responses(user.township_scope(None)))
            ).all()
        }
    now = utcnow()
    rows = []
    for code, state in states.items():
        survey = surveys.get(code)
        rows.append(
            {
                "code": code,
                "title": localized(survey.title, locale) if survey else state.title_zh,
                "status": state.status,
                "open": state_is_open(state.status, state.opens_at, state.closes_at, now),
                "opens_at": state.opens_at,
                "closes_at": state.closes_at,
                "real": counts.get((code, False), 0),
                "sample": counts.get((code, True), 0),
                "invitation_only": survey.invitation_only if survey else False,
                "known": survey is not None,
            }
        )
    return await render(
        request,
        "surveys.html",
        {"rows": rows, "status_labels": STATUS_LABELS, "status_actions": STATUS_ACTIONS},
    )


async def set_status(request: web.Request, user: Principal) -> web.StreamResponse:
    """``POST /admin/surveys/{code}/status``: ``status`` = open, closed or scheduled."""
    code = request.match_info["code"]
    survey_or_404(request, code)
    form = await request.post()
    status = str(form.get("status", ""))
    if status not in SURVEY_STATUSES:
        raise web.HTTPUnprocessableEntity()
    async with transaction(request.config_dict[SESSIONS]) as db:
        await sync_catalog(db, catalog(request))
        state = await db.get(SurveyState, code)
        assert state is not None
        before = state.status
        if before != status:
            state.status = status
            state.updated_at = utcnow()
            record(
                db,
                user.actor,
                f"survey.{status}",
                code,
                before={"status": before},
                after={"status": status},
            )
    await flash(request, STATUS_FLASH[status], code=code)
    raise web.HTTPSeeOther("/admin/surveys")


async def survey_detail(request: web.Request, user: Principal) -> web.StreamResponse:
    """``GET /admin/surveys/{code}``: batches per township, new batch, posters."""
    survey = survey_or_404(request, request.match_info["code"])
    locale = await console_locale(request)
    scope = user.township_scope(None)
    async with request.config_dict[SESSIONS]() as db:
        towns = await townships(db)
        stmt = (
            select(
                col(SurveyInvitation.township),
                col(SurveyInvitation.batch),
                func.count(),
                func.count(col(SurveyInvitation.used_at)),
                func.min(col(SurveyInvitation.created_at)),
            )
            .where(col(SurveyInvitation.survey) == survey.code)
            .group_by(col(SurveyInvitation.township), col(SurveyInvitation.batch))
            .order_by(func.min(col(SurveyInvitation.created_at)).desc())
        )
        if scope is not None:
            stmt = stmt.where(col(SurveyInvitation.township) == scope)
        batches = [
            {"township": t, "batch": b, "count": n, "used": used, "created": created}
            for t, b, n, used, created in (await db.execute(stmt)).all()
        ]
    if scope is not None:
        towns = [(code, name) for code, name in towns if code == scope]
    return await render(
        request,
        "survey.html",
        {
            "survey": survey,
            "title": localized(survey.title, locale),
            "batches": batches,
            "townships": towns,
            "township_names": dict(towns),
            "max_batch": MAX_CONSOLE_BATCH,
        },
    )


async def create_batch(request: web.Request, user: Principal) -> web.StreamResponse:
    """``POST /admin/surveys/{code}/invitations``: make a batch and download its CSV."""
    survey = survey_or_404(request, request.match_info["code"])
    form = await request.post()
    township = user.township_scope(str(form.get("township", "")) or None)
    try:
        count = int(str(form.get("count", "")))
    except ValueError:
        count = 0
    if township is None or not 1 <= count <= MAX_CONSOLE_BATCH:
        await flash(
            request,
            N_("Choose a township and a number of invitations from 1 to {max}."),
            max=MAX_CONSOLE_BATCH,
        )
        raise web.HTTPSeeOther(f"/admin/surveys/{survey.code}")
    settings = request.config_dict[SETTINGS]
    now = utcnow()
    async with transaction(request.config_dict[SESSIONS]) as db:
        if township not in dict(await townships(db)):
            raise web.HTTPNotFound()
        batch, tokens = await create_invitations(
            db, settings.secret(), survey.code, township=township, count=count, now=now
        )
        record(
            db,
            user.actor,
            "survey.invite",
            survey.code,
            before=None,
            after={"township": township, "count": count, "batch": batch},
        )
    text = invitations_csv(settings.public_url, survey.code, tokens)
    return web.Response(
        body=("\ufeff" + text).encode("utf-8"),  # BOM: Excel and WPS read it as UTF-8
        content_type="text/csv",
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{survey.code}-{batch}.csv"',
            "Cache-Control": "no-store",
        },
    )


def _qr_svg(url: str) -> str:
    return str(segno.make(url, error="m").svg_inline(omitsize=True, border=2, dark="#000"))


async def poster(request: web.Request, user: Principal) -> web.StreamResponse:
    """``GET /admin/surveys/{code}/poster/{township}``: the printable A4 poster."""
    survey = survey_or_404(request, request.match_info["code"])
    township = user.township_scope(request.match_info["township"])
    assert township is not None
    if survey.invitation_only:
        raise web.HTTPNotFound()
    locale = await console_locale(request)
    async with request.config_dict[SESSIONS]() as db:
        names = dict(await townships(db))
    if township not in names:
        raise web.HTTPNotFound()
    link = poster_link(request.config_dict[SETTINGS].public_url, survey.code, township)
    context: dict[str, Any] = {
        "title": localized(survey.title, locale),
        "intro": localized(survey.intro, locale),
        "township_name": names[township],
        "link": link,
        "qr_svg": _qr_svg(link),
        "minutes": minutes_to_answer(survey),
        "questions": len(survey.questions),
        "closes_on": (
            survey.closes_at.astimezone(request.config_dict[SETTINGS].tz).date()
            if survey.closes_at
            else None
        ),
    }
    return await render(request, "poster.html", context)


PAGE = Page(
    name="surveys",
    title=N_("Surveys"),
    path="/surveys",
    permission="surveys.view",
    routes=(
        Route("GET", "/surveys", survey_list, "surveys.view"),
        Route("POST", "/surveys/{code}/status", set_status, "surveys.manage"),
        Route("GET", "/surveys/{code}", survey_detail, "surveys.view"),
        Route("POST", "/surveys/{code}/invitations", create_batch, "invitations.create"),
        Route("GET", "/surveys/{code}/poster/{township}", poster, "posters.view"),
    ),
)
