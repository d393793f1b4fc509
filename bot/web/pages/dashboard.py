"""The dashboard: each indicator's rate with its 95% interval against the target line, the
verdict, responses by township and channel, and what residents wrote; above them, for the
accounts that work on them, the units on duty at the next lectures (with the swap requests
waiting) and the 法律明白人 coverage, each linking to its page.

Figures come from :func:`surveys.results.compute_results` (the same as ``pufa results`` and the
results API). Sample (demo) responses are left out unless ``?sample=1``, and the page says so
when they are in. A staff account sees its own township only. Exports: the results as an
Excel workbook (``results.xlsx``) and as JSON (``results.json``, the results API's shape).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.web.auth import Principal
from bot.web.charts import RateBar, count_chart, rate_chart
from bot.web.common import catalog, townships
from bot.web.layout import Page, Route, console_locale, render
from bot.web.pages.liaisons import coverage_summary
from bot.web.pages.rota import duty_summary
from core.appkeys import SESSIONS, SETTINGS
from core.clock import utcnow
from core.i18n import N_, Translator, translator
from storage.models_surveys import SurveyAnswer, SurveyResponse
from surveys.reports import CHANNEL_LABELS, render_xlsx, verdict_text
from surveys.results import SurveyReport, compute_results
from surveys.schema import Survey, localized

__all__ = ["PAGE"]

COMMENTS_SHOWN = 20


def default_survey(surveys: dict[str, Survey]) -> str | None:
    """The survey shown first: the first open-to-the-public survey by code, else any."""
    public = sorted(code for code, s in surveys.items() if not s.invitation_only)
    return public[0] if public else min(surveys, default=None)


class Filters:
    """The dashboard's query: survey, township (scoped to the account) and sample answers."""

    def __init__(self, request: web.Request, user: Principal) -> None:
        surveys = catalog(request)
        code = request.query.get("survey") or default_survey(surveys)
        if code is None or code not in surveys:
            raise web.HTTPNotFound()
        self.survey = surveys[code]
        self.township = user.township_scope(request.query.get("township") or None)
        self.include_sample = request.query.get("sample") == "1"

    def query(self, **extra: str) -> str:
        """The query string for these filters."""
        params = {"survey": self.survey.code}
        if self.township:
            params["township"] = self.township
        if self.include_sample:
            params["sample"] = "1"
        params.update(extra)
        return urlencode(params)


async def _report(request: web.Request, f: Filters, locale: str) -> SurveyReport:
    async with request.config_dict[SESSIONS]() as db:
        if f.township is not None and f.township not in dict(await townships(db)):
            raise web.HTTPNotFound()
        return await compute_results(
            db, f.survey, locale=locale, township=f.township, include_sample=f.include_sample
        )


def _responses(f: Filters) -> Any:
    stmt = select(col(SurveyResponse.township), col(SurveyResponse.channel), func.count()).where(
        col(SurveyResponse.survey) == f.survey.code
    )
    if f.township is not None:
        stmt = stmt.where(col(SurveyResponse.township) == f.township)
    if not f.include_sample:
        stmt = stmt.where(col(SurveyResponse.sample).is_(False))
    return stmt.group_by(col(SurveyResponse.township), col(SurveyResponse.channel))


async def _comments(db: AsyncSession, f: Filters, locale: str) -> list[dict[str, Any]]:
    stmt = (
        select(
            col(SurveyAnswer.question),
            col(SurveyAnswer.text),
            col(SurveyAnswer.township),
            col(SurveyResponse.created_at),
        )
        .join(SurveyResponse, col(SurveyResponse.id) == col(SurveyAnswer.response_id))
        .where(col(SurveyAnswer.survey) == f.survey.code, col(SurveyAnswer.text).is_not(None))
        .order_by(col(SurveyAnswer.id).desc())
        .limit(COMMENTS_SHOWN)
    )
    if f.township is not None:
        stmt = stmt.where(col(SurveyAnswer.township) == f.township)
    if not f.include_sample:
        stmt = stmt.where(col(SurveyResponse.sample).is_(False))
    out = []
    for question, text, township, created in (await db.execute(stmt)).all():
        q = f.survey.question(question)
        out.append(
            {
                "question": localized(q.text, locale) if q else question,
                "text": text,
                "township": township,
                "at": created,
            }
        )
    return out


def _target_text(t: Translator, target: float | None) -> str:
    return t._("significant rise") if target is None else "≥ " + t.percent(target, 0)


def _pct(t: Translator, value: float | None) -> str:
    return "—" if value is None else t.percent(value)


async def dashboard(request: web.Request, user: Principal) -> web.StreamResponse:
    """``GET /admin/dashboard``."""
    f = Filters(request, user)
    locale = await console_locale(request)
    t = translator(locale)
    report = await _report(request, f, locale)
    async with request.config_dict[SESSIONS]() as db:
        counts = (await db.execute(_responses(f))).all()
        comments = await _comments(db, f, locale)
        towns = await townships(db)
        duty, swaps = (
            await duty_summary(db, t, request.config_dict[SETTINGS].tz, utcnow())
            if user.can("rota.view")
            else (None, 0)
        )
        registry = await coverage_summary(db, f.township) if user.can("liaisons.view") else None
    names = dict(towns)
    by_town: dict[str | None, int] = {}
    by_channel: dict[str, int] = {}
    for township, channel, n in counts:
        by_town[township] = by_town.get(township, 0) + n
        by_channel[channel] = by_channel.get(channel, 0) + n
    total = sum(by_channel.values())
    rows = []
    bars = []
    for row in report.indicators:
        r = row.result
        rows.append(
            {
                "title": row.title,
                "n": r.n,
                "rate": _pct(t, r.rate),
                "interval": f"{_pct(t, r.ci_low)} – {_pct(t, r.ci_high)}" if r.n else "—",
                "target": _target_text(t, r.target),
                "verdict": str(r.verdict),
                "verdict_text": verdict_text(t, row),
                "unknown": r.unknown,
            }
        )
        bars.append(
            RateBar(
                row.title, r.rate, r.ci_low, r.ci_high, r.target, str(r.verdict), _pct(t, r.rate)
            )
        )
    town_items = [
        (names.get(code, code) if code else t._("No township"), n)
        for code, n in sorted(by_town.items(), key=lambda kv: kv[0] or "~")
    ]
    channel_items = [
        (t._(CHANNEL_LABELS.get(code, code)), n) for code, n in sorted(by_channel.items())
    ]
    return await render(
        request,
        "dashboard.html",
        {
            "surveys": sorted(
                (code, localized(s.title, locale)) for code, s in catalog(request).items()
            ),
            "survey": f.survey,
            "survey_title": report.title,
            "township": f.township,
            "townships": towns,
            "include_sample": f.include_sample,
            "total": total,
            "rows": rows,
            "rate_chart": rate_chart(bars, t._("Satisfaction by indicator"), t._("Target")),
            "town_items": town_items,
            "town_chart": count_chart(town_items, t._("Responses by township")),
            "channel_items": channel_items,
            "channel_chart": count_chart(channel_items, t._("Responses by channel")),
            "comments": comments,
            "township_names": names,
            "export_xlsx": "/admin/dashboard/results.xlsx?" + f.query(),
            "export_json": "/admin/dashboard/results.json?" + f.query(),
            "sample_toggle": "/admin/dashboard?" + f.query(sample="0" if f.include_sample else "1"),
            "duty": duty,
            "swaps_waiting": swaps,
            "registry": registry,
        },
    )


async def results_xlsx(request: web.Request, user: Principal) -> web.StreamResponse:
    """``GET /admin/dashboard/results.xlsx``: the results as an Excel workbook."""
    f = Filters(request, user)
    locale = await console_locale(request)
    report = await _report(request, f, locale)
    name = f"{f.survey.code}-{f.township or 'all'}{'-with-sample' if f.include_sample else ''}"
    return web.Response(
        body=render_xlsx(report, locale),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={
            "Content-Disposition": f'attachment; filename="{name}.xlsx"',
            "Cache-Control": "no-store",
        },
    )


async def results_json(request: web.Request, user: Principal) -> web.StreamResponse:
    """``GET /admin/dashboard/results.json``: the results API's JSON (``?by=township|channel``),
    with ``include_sample`` saying whether sample responses are counted."""
    f = Filters(request, user)
    by = request.query.get("by")
    if by not in (None, "township", "channel"):
        raise web.HTTPNotFound()
    locale = await console_locale(request)
    report = await _report(request, f, locale)
    body = report.to_dict(by)
    body["include_sample"] = f.include_sample
    return web.json_response(
        body,
        dumps=lambda o: json.dumps(o, ensure_ascii=False),
        headers={"Cache-Control": "no-store"},
    )


PAGE = Page(
    name="dashboard",
    title=N_("Dashboard"),
    path="/dashboard",
    permission="results.view",
    routes=(
        Route("GET", "/dashboard", dashboard, "results.view"),
        Route("GET", "/dashboard/results.xlsx", results_xlsx, "results.export"),
        Route("GET", "/dashboard/results.json", results_json, "results.export"),
    ),
)
