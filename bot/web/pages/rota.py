"""The lecture rota: both committees' calendars, the unit on duty, changes, swaps, the report.

- ``/admin/rota``: for each committee (区委常委会, 政府常务会) the unit on duty at its next
  meeting and how far it is (confirmed, topic, the content deadline), the coming meetings and
  those of the last 31 days (``?all=1``: every past meeting) with the unit on duty, its
  confirmation, topic and outcome, months short of two lectures, the swap requests waiting for
  an answer, and forms to schedule a meeting and to record a swap a unit asked for.
- ``/admin/rota/meetings/{id}``: one meeting: move it, cancel it, mark the lecture delivered
  or missed.
- ``/admin/rota/report``: a year's appraisal figures per unit (as ``pufa rota report``), and
  ``/admin/rota/report.xlsx`` the same workbook.

Every change goes through the rota's own functions (:mod:`bot.rota.service`), in one
transaction with its audit entry and the messages it queues to the units; what cannot be done
(a time already past, a meeting already held, a swap the calendar has overtaken) is shown in
the rota's own words.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any, NoReturn

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.rota.calendar import COMMITTEES, Slot
from bot.rota.config import load_offsets
from bot.rota.plan import content_deadline, short_months
from bot.rota.report import compute, render_xlsx, title
from bot.rota.service import (
    MARK_FROM,
    REASON_MAX,
    Env,
    RotaProblem,
    add_meetings,
    cancel_meeting,
    decide_swap,
    mark,
    move_meeting,
    request_swap,
)
from bot.rota.store import Snapshot, load
from bot.rota.texts import committee_name, month_name, unit_name
from bot.web.auth import Principal
from bot.web.common import flash, flash_error, form_text, local_input, parse_local
from bot.web.layout import Page, Route, console_locale, render
from bot.web.login import safe_next
from core.appkeys import SESSIONS, SETTINGS
from core.clock import utcnow
from core.i18n import N_, Translator, translator
from core.ids import parse_digits, parse_id
from storage.db import transaction
from storage.models_rota import RotaSwap

__all__ = ["PAGE", "DutyView", "duty_summary"]

RECENT = timedelta(days=31)
"""How far back the calendar shows past meetings (unless ``?all=1``)."""
HOME = "/admin/rota"


@dataclass(frozen=True, slots=True)
class MeetingView:
    """A meeting as the pages show it."""

    id: int
    committee: str
    starts_at: datetime
    when: str
    local: str
    cancelled: bool
    period: int | None
    unit: str
    confirmed: bool
    topic: str | None
    outline: str
    outcome: str | None
    sample: bool
    past: bool
    markable: bool
    deadline: str


@dataclass(frozen=True, slots=True)
class DutyView:
    """The unit on duty at a committee's next meeting (``meeting`` ``None``: none scheduled)."""

    committee: str
    name: str
    meeting: MeetingView | None


def _meeting(
    snapshot: Snapshot, meeting_id: int, t: Translator, tz: tzinfo, now: datetime
) -> MeetingView:
    row = snapshot.rows[meeting_id]
    slot = snapshot.slots.get(meeting_id)
    reply = snapshot.reply(slot) if slot else None
    turn = snapshot.turn_row(slot) if slot else None
    unit = snapshot.units.get(snapshot.credited_unit(slot)) if slot else None
    cancelled = row.status == "cancelled"
    deadline = ""
    if slot is not None:
        deadline = t.datetime(content_deadline(slot, load_offsets()).astimezone(tz))
    return MeetingView(
        id=meeting_id,
        committee=row.committee,
        starts_at=row.starts_at,
        when=t.datetime(row.starts_at.astimezone(tz)),
        local=local_input(row.starts_at, tz),
        cancelled=cancelled,
        period=slot.period if slot else None,
        unit=unit_name(t, unit) if unit else "",
        confirmed=bool(reply and slot and reply.confirmed_for(slot.meeting)),
        topic=reply.topic_title if reply else None,
        outline=(turn.topic_outline or "") if turn else "",
        outcome=row.outcome,
        sample=row.sample,
        past=row.starts_at <= now,
        markable=not cancelled and now >= row.starts_at - MARK_FROM,
        deadline=deadline,
    )


def _ordered(snapshot: Snapshot) -> list[int]:
    return [
        row.id
        for row in sorted(snapshot.rows.values(), key=lambda r: (r.starts_at, r.id or 0))
        if row.id is not None
    ]


def duties(snapshot: Snapshot, t: Translator, tz: tzinfo, now: datetime) -> list[DutyView]:
    """The unit on duty at each committee's next held meeting."""
    out = []
    for committee in COMMITTEES:
        coming = snapshot.upcoming(now, committee)
        meeting = _meeting(snapshot, coming[0].meeting.id, t, tz, now) if coming else None
        out.append(DutyView(committee, committee_name(t, committee), meeting))
    return out


async def duty_summary(
    session: AsyncSession, t: Translator, tz: tzinfo, now: datetime
) -> tuple[list[DutyView], int]:
    """What the dashboard shows of the rota: the units on duty and how many swap requests
    wait for an answer."""
    snapshot = await load(session)
    waiting = (
        await session.execute(
            select(func.count()).select_from(RotaSwap).where(col(RotaSwap.status) == "requested")
        )
    ).scalar_one()
    return duties(snapshot, t, tz, now), int(waiting)


def _swap_view(
    swap: RotaSwap, snapshot: Snapshot, t: Translator, tz: tzinfo, now: datetime
) -> dict[str, Any]:
    a = snapshot.slot_of_turn(swap.committee, swap.turn_a)
    b = snapshot.slot_of_turn(swap.committee, swap.turn_b)
    current = (
        a is not None
        and b is not None
        and a.meeting.id == swap.meeting_a_id
        and b.meeting.id == swap.meeting_b_id
        and a.meeting.starts_at > now
        and b.meeting.starts_at > now
    )

    def when(slot: Slot | None, meeting_id: int) -> str:
        row = snapshot.rows.get(meeting_id)
        moment = slot.meeting.starts_at if slot else row.starts_at if row else None
        return t.datetime(moment.astimezone(tz)) if moment else "?"

    return {
        "id": swap.id,
        "committee": committee_name(t, swap.committee),
        "unit_a": unit_name(t, snapshot.units.get(swap.unit_a_id)),
        "unit_b": unit_name(t, snapshot.units.get(swap.unit_b_id)),
        "when_a": when(a, swap.meeting_a_id),
        "when_b": when(b, swap.meeting_b_id),
        "meeting_a": swap.meeting_a_id,
        "meeting_b": swap.meeting_b_id,
        "requested_by": swap.requested_by,
        "requested_at": swap.requested_at,
        "reason": swap.reason or "",
        "current": current,
    }


async def calendar(request: web.Request, user: Principal) -> web.StreamResponse:
    """``GET /admin/rota``."""
    settings = request.config_dict[SETTINGS]
    tz = settings.tz
    t = translator(await console_locale(request))
    now = utcnow()
    everything = request.query.get("all") == "1"
    async with request.config_dict[SESSIONS]() as db:
        snapshot = await load(db)
        swaps = list(
            (
                await db.execute(
                    select(RotaSwap)
                    .where(col(RotaSwap.status) == "requested")
                    .order_by(col(RotaSwap.id))
                )
            ).scalars()
        )
    views = {i: _meeting(snapshot, i, t, tz, now) for i in _ordered(snapshot)}
    short = short_months(snapshot.meetings, now, load_offsets(), tz)
    committees = []
    for duty in duties(snapshot, t, tz, now):
        mine = [v for v in views.values() if v.committee == duty.committee]
        committees.append(
            {
                "code": duty.committee,
                "name": duty.name,
                "duty": duty.meeting,
                "upcoming": [v for v in mine if not v.past],
                "recent": [
                    v
                    for v in reversed(mine)
                    if v.past and (everything or v.starts_at >= now - RECENT)
                ],
                "short": [
                    {"month": month_name(t, month), "count": count}
                    for committee, month, count in short
                    if committee == duty.committee
                ],
            }
        )
    choices = [
        (
            committee_name(t, committee),
            [
                {"id": v.id, "label": f"{v.when} · {v.unit}"}
                for v in views.values()
                if v.committee == committee and not v.past and not v.cancelled and not v.sample
            ],
        )
        for committee in COMMITTEES
    ]
    return await render(
        request,
        "rota.html",
        {
            "committees": committees,
            "swaps": [_swap_view(s, snapshot, t, tz, now) for s in swaps],
            "choices": [(name, group) for name, group in choices if group],
            "can_swap": any(len(group) > 1 for _name, group in choices),
            "default_b": next((group[1]["id"] for _name, group in choices if len(group) > 1), None),
            "committee_codes": [(c, committee_name(t, c)) for c in COMMITTEES],
            "everything": everything,
            "samples": any(m.sample for m in snapshot.meetings),
            "reason_max": REASON_MAX,
            "new_time": local_input(now + timedelta(days=7), tz)[:11] + "08:30",
        },
    )


async def meeting_page(request: web.Request, user: Principal) -> web.StreamResponse:
    """``GET /admin/rota/meetings/{id}``."""
    meeting_id = _meeting_id(request)
    settings = request.config_dict[SETTINGS]
    t = translator(await console_locale(request))
    now = utcnow()
    async with request.config_dict[SESSIONS]() as db:
        snapshot = await load(db)
    if meeting_id not in snapshot.rows:
        raise web.HTTPNotFound()
    view = _meeting(snapshot, meeting_id, t, settings.tz, now)
    return await render(
        request,
        "meeting.html",
        {
            "m": view,
            "committee": committee_name(t, view.committee),
            "mark_from": t.datetime((view.starts_at - MARK_FROM).astimezone(settings.tz)),
        },
    )


def _meeting_id(request: web.Request) -> int:
    meeting_id = parse_id(request.match_info["id"])
    if meeting_id is None:
        raise web.HTTPNotFound()
    return meeting_id


Change = Callable[[Env], Awaitable[tuple[str, dict[str, Any]]]]
"""A change to the calendar: the flash message (msgid and parameters) when it is made."""


async def _change(request: web.Request, user: Principal, back: str, work: Change) -> NoReturn:
    """Make ``work`` in a transaction as ``user``, flash its message or the rota's reason
    why not, and go ``back``. The transaction commits even when the rota says no, as the chat
    does: a swap found out of date is recorded as expired."""
    settings = request.config_dict[SETTINGS]
    t = translator(await console_locale(request))
    problem: str | None = None
    async with transaction(request.config_dict[SESSIONS]) as db:
        env = Env.of(db, settings, load_offsets(), utcnow(), user.actor)
        try:
            message, params = await work(env)
        except RotaProblem as refused:
            problem = refused.render(t, settings.tz)
    if problem is not None:
        await flash_error(request, problem)
    else:
        await flash(request, message, **params)
    raise web.HTTPSeeOther(back)


async def _when(request: web.Request, value: object) -> datetime | None:
    moment = parse_local(form_text(value, 32), request.config_dict[SETTINGS].tz)
    if moment is None:
        t = translator(await console_locale(request))
        await flash_error(request, t._("Enter a date and a time, e.g. 2027-03-11 08:30."))
    return moment


async def add(request: web.Request, user: Principal) -> web.StreamResponse:
    """``POST /admin/rota/meetings``: ``committee``, ``when`` (local date and time)."""
    form = await request.post()
    committee = form_text(form.get("committee"), 16)
    moment = await _when(request, form.get("when"))
    if moment is None:
        raise web.HTTPSeeOther(HOME)
    t = translator(await console_locale(request))

    async def work(env: Env) -> tuple[str, dict[str, Any]]:
        added, skipped = await add_meetings(env, committee, [moment])
        if skipped:
            raise RotaProblem(
                N_("The {committee} already meets at {when}."),
                committee=committee_name(t, committee),
                when=moment,
            )
        return N_("Meeting #{id} of the {committee} is scheduled for {when}."), {
            "id": added[0].id,
            "committee": committee_name(t, committee),
            "when": t.datetime(moment.astimezone(env.tz)),
        }

    await _change(request, user, HOME, work)


async def move(request: web.Request, user: Principal) -> web.StreamResponse:
    """``POST /admin/rota/meetings/{id}/move``: ``when`` (local date and time)."""
    meeting_id = _meeting_id(request)
    back = f"{HOME}/meetings/{meeting_id}"
    form = await request.post()
    moment = await _when(request, form.get("when"))
    if moment is None:
        raise web.HTTPSeeOther(back)
    t = translator(await console_locale(request))

    async def work(env: Env) -> tuple[str, dict[str, Any]]:
        await move_meeting(env, meeting_id, moment)
        return N_("Meeting #{id} is moved to {when}; the unit on duty is told."), {
            "id": meeting_id,
            "when": t.datetime(moment.astimezone(env.tz)),
        }

    await _change(request, user, back, work)


async def cancel(request: web.Request, user: Principal) -> web.StreamResponse:
    """``POST /admin/rota/meetings/{id}/cancel``."""
    meeting_id = _meeting_id(request)

    async def work(env: Env) -> tuple[str, dict[str, Any]]:
        await cancel_meeting(env, meeting_id)
        return N_("Meeting #{id} is cancelled; its unit passes to the next meeting."), {
            "id": meeting_id
        }

    await _change(request, user, HOME, work)


OUTCOME_FLASH = {
    "delivered": N_("Meeting #{id}: the lecture of {unit} is marked delivered."),
    "missed": N_("Meeting #{id}: the lecture of {unit} is marked missed."),
}


async def mark_outcome(request: web.Request, user: Principal) -> web.StreamResponse:
    """``POST /admin/rota/meetings/{id}/mark``: ``outcome`` delivered or missed; ``next``."""
    meeting_id = _meeting_id(request)
    form = await request.post()
    outcome = form_text(form.get("outcome"), 16)
    back = safe_next(form_text(form.get("next"), 200) or f"{HOME}/meetings/{meeting_id}")
    t = translator(await console_locale(request))

    async def work(env: Env) -> tuple[str, dict[str, Any]]:
        _row, slot = await mark(env, meeting_id, outcome)
        snapshot = await load(env.session)
        unit = snapshot.units.get(snapshot.credited_unit(slot))
        return OUTCOME_FLASH[outcome], {"id": meeting_id, "unit": unit_name(t, unit)}

    await _change(request, user, back, work)


async def record_swap(request: web.Request, user: Principal) -> web.StreamResponse:
    """``POST /admin/rota/swaps``: a unit asked (by phone, in person) to exchange its lecture
    ``meeting_a`` with ``meeting_b``, for ``reason``; the other unit and the coordinator are
    asked as if the unit had asked in chat."""
    form = await request.post()
    meeting_a, meeting_b = (parse_id(form.get(name)) for name in ("meeting_a", "meeting_b"))
    reason = form.get("reason")
    if meeting_a is None or meeting_b is None:
        t = translator(await console_locale(request))
        await flash_error(request, t._("Choose the two lectures to swap."))
        raise web.HTTPSeeOther(HOME + "#swaps")

    async def work(env: Env) -> tuple[str, dict[str, Any]]:
        snapshot = await load(env.session)
        slot = snapshot.slots.get(meeting_a)
        swap = await request_swap(
            env,
            meeting_a,
            meeting_b,
            slot.unit_id if slot else 0,
            reason if isinstance(reason, str) else "",
        )
        return N_("Swap request #{id} is recorded; the other unit has been asked."), {"id": swap.id}

    await _change(request, user, HOME + "#swaps", work)


async def decide(request: web.Request, user: Principal) -> web.StreamResponse:
    """``POST /admin/rota/swaps/{id}/decide``: ``decision`` approve or reject (as the
    coordinator)."""
    swap_id = parse_id(request.match_info["id"])
    if swap_id is None:
        raise web.HTTPNotFound()
    form = await request.post()
    decision = form_text(form.get("decision"), 16)
    if decision not in ("approve", "reject"):
        raise web.HTTPUnprocessableEntity()

    async def work(env: Env) -> tuple[str, dict[str, Any]]:
        await decide_swap(env, swap_id, decision == "approve", coordinator=True)
        if decision == "approve":
            return N_("Swap #{id} approved. Everyone concerned has been told."), {"id": swap_id}
        return N_("Swap #{id} rejected; the asking unit has been told."), {"id": swap_id}

    await _change(request, user, HOME + "#swaps", work)


def _year(request: web.Request, now: datetime, tz: tzinfo) -> int:
    raw = request.query.get("year", "")
    year = parse_digits(raw, 4)
    if year is not None and 2000 <= year <= 2100:
        return year
    if raw:
        raise web.HTTPNotFound()
    return now.astimezone(tz).year


async def report(request: web.Request, user: Principal) -> web.StreamResponse:
    """``GET /admin/rota/report?year=Y[&sample=1]``."""
    settings = request.config_dict[SETTINGS]
    t = translator(await console_locale(request))
    now = utcnow()
    year = _year(request, now, settings.tz)
    include_sample = request.query.get("sample") == "1"
    async with request.config_dict[SESSIONS]() as db:
        snapshot = await load(db)
    rows = compute(snapshot, year, settings.tz, load_offsets(), include_sample=include_sample)
    years = sorted(
        {m.starts_at.astimezone(settings.tz).year for m in snapshot.meetings}
        | {now.astimezone(settings.tz).year, year}
    )
    figures = ("assigned", "confirmed_on_time", "topic_on_time", "delivered", "missed")
    query = f"year={year}" + ("&sample=1" if include_sample else "")
    return await render(
        request,
        "rota_report.html",
        {
            "title": title(t, year, include_sample),
            "year": year,
            "years": years,
            "include_sample": include_sample,
            "rows": [
                {
                    "committee": committee_name(t, r.committee),
                    "position": r.position,
                    "unit": r.unit_name_en
                    if t.locale != "zh_CN" and r.unit_name_en
                    else r.unit_name,
                    "figures": [getattr(r, f) for f in figures],
                }
                for r in rows
            ],
            "totals": [sum(getattr(r, f) for r in rows) for f in figures],
            "export": f"{HOME}/report.xlsx?{query}",
        },
    )


async def report_xlsx(request: web.Request, user: Principal) -> web.StreamResponse:
    """``GET /admin/rota/report.xlsx?year=Y[&sample=1]``: the workbook of ``pufa rota
    report --format xlsx``."""
    settings = request.config_dict[SETTINGS]
    t = translator(await console_locale(request))
    year = _year(request, utcnow(), settings.tz)
    include_sample = request.query.get("sample") == "1"
    async with request.config_dict[SESSIONS]() as db:
        snapshot = await load(db)
    rows = compute(snapshot, year, settings.tz, load_offsets(), include_sample=include_sample)
    name = f"rota-{year}{'-with-sample' if include_sample else ''}.xlsx"
    return web.Response(
        body=render_xlsx(rows, year, t, include_sample),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


PAGE = Page(
    name="rota",
    title=N_("Lecture rota"),
    path="/rota",
    permission="rota.view",
    routes=(
        Route("GET", "/rota", calendar, "rota.view"),
        Route("GET", "/rota/report", report, "rota.report"),
        Route("GET", "/rota/report.xlsx", report_xlsx, "rota.report"),
        Route("GET", "/rota/meetings/{id}", meeting_page, "rota.view"),
        Route("POST", "/rota/meetings", add, "rota.manage"),
        Route("POST", "/rota/meetings/{id}/move", move, "rota.manage"),
        Route("POST", "/rota/meetings/{id}/cancel", cancel, "rota.manage"),
        Route("POST", "/rota/meetings/{id}/mark", mark_outcome, "rota.manage"),
        Route("POST", "/rota/swaps", record_swap, "rota.manage"),
        Route("POST", "/rota/swaps/{id}/decide", decide, "rota.manage"),
    ),
)
"""The lecture rota page."""
