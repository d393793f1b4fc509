"""iCalendar feeds of the lecture rota (the ``icalendar`` library).

- ``GET /rota/{committee}.ics`` — every lecture of a committee (``standing``, ``executive``);
- ``GET /rota/unit/{key}.ics`` — one unit's lectures in both rotas, behind a secret key printed
  by ``pufa rota ical UNIT``.

Each lecture is an event in the ten minutes before the meeting (会前十分钟), with the unit,
the period, its status and the topic once sent, and a reminder the day before. The unit key is
derived from the secret key and the unit's feed generation (:func:`unit_key`), so no key is
stored and ``pufa rota ical UNIT --new`` revokes the previous link.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from datetime import datetime, timedelta, tzinfo

from aiohttp import web
from icalendar import Alarm, Calendar, Event
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.rota.calendar import COMMITTEES, Slot
from bot.rota.store import Snapshot, load
from bot.rota.texts import committee_name, unit_name
from core.appkeys import SESSIONS, SETTINGS
from core.clock import utcnow
from core.crypto import keyed_hash
from core.http import json_error, request_locale
from core.i18n import Translator, translator
from storage.models import Unit
from storage.models_rota import RotaFeedKey

__all__ = ["LECTURE_MINUTES", "feed", "find_unit_by_key", "setup", "unit_key", "unit_url"]

LECTURE_MINUTES = 10
"""The lecture is given in the ten minutes before the meeting (会前十分钟)."""
_PURPOSE = "rota.ical"
_KEY_CHARS = 32


def unit_key(secret: bytes, unit_code: str, generation: int) -> str:
    """The secret key of a unit's feed (128 bits, hex)."""
    return keyed_hash(secret, _PURPOSE, f"{unit_code}:{generation}")[:_KEY_CHARS]


def unit_url(public_url: str, key: str) -> str:
    """The feed link printed for a unit."""
    return f"{public_url.rstrip('/')}/rota/unit/{key}.ics"


async def find_unit_by_key(session: AsyncSession, secret: bytes, key: str) -> int | None:
    """The unit whose current feed key is ``key`` (compared in constant time)."""
    if len(key) != _KEY_CHARS:
        return None
    rows = await session.execute(
        select(col(RotaFeedKey.unit_id), col(RotaFeedKey.generation), col(Unit.code)).join(
            Unit, col(Unit.id) == col(RotaFeedKey.unit_id)
        )
    )
    found = None
    for unit_id, generation, code in rows.all():
        if hmac.compare_digest(unit_key(secret, code, generation), key):
            found = unit_id
    return found


def _event(t: Translator, snapshot: Snapshot, slot: Slot, tz: tzinfo, stamp: datetime) -> Event:
    meeting = slot.meeting
    unit = snapshot.units.get(slot.unit_id)
    start = meeting.starts_at.astimezone(tz)
    committee = committee_name(t, meeting.committee)
    summary = t._(
        "普法学法微课堂: {unit} ({committee} no. {period})",
        unit=unit_name(t, unit),
        committee=committee,
        period=slot.period,
    )
    if meeting.sample:
        summary = t._("[sample]") + " " + summary
    reply = snapshot.reply(slot)
    lines = [
        t._(
            "Lecture of 3–5 minutes before the {committee} meeting at {time}; be there ten "
            "minutes early.",
            committee=committee,
            time=start.strftime("%H:%M"),
        )
    ]
    if reply is not None and reply.topic_title:
        lines.append(t._("Topic: {title}", title=reply.topic_title))
    if meeting.outcome == "delivered":
        lines.append(t._("Delivered."))
    elif meeting.outcome == "missed":
        lines.append(t._("Missed."))
    elif reply is not None and reply.confirmed_for(meeting):
        lines.append(t._("Confirmed by the unit."))
    event = Event()
    event.add("uid", f"rota-meeting-{meeting.id}-u{slot.unit_id}@pufa")
    event.add("dtstamp", stamp)
    event.add("dtstart", start - timedelta(minutes=LECTURE_MINUTES))
    event.add("dtend", start)
    event.add("sequence", meeting.revision)
    event.add("summary", summary)
    event.add("description", "\n".join(lines))
    event.add("status", "CONFIRMED")
    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", summary)
    alarm.add("trigger", timedelta(days=-1))
    event.add_component(alarm)
    return event


def feed(
    snapshot: Snapshot,
    slots: Iterable[Slot],
    *,
    name: str,
    tz: tzinfo,
    locale: str,
    now: datetime,
) -> bytes:
    """An iCalendar document of ``slots``."""
    t = translator(locale)
    cal = Calendar()
    cal.add("prodid", "-//pufa//普法学法微课堂//ZH")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", str(tz))
    for slot in sorted(slots, key=lambda s: (s.meeting.starts_at, s.meeting.id)):
        cal.add_component(_event(t, snapshot, slot, tz, now))
    cal.add_missing_timezones()
    return cal.to_ical()


def _ics(body: bytes) -> web.Response:
    return web.Response(
        body=body,
        headers={
            "Content-Type": "text/calendar; charset=utf-8",
            "Cache-Control": "private, max-age=300",
        },
    )


async def committee_feed(request: web.Request) -> web.Response:
    """``GET /rota/{committee}.ics``."""
    committee = request.match_info["committee"]
    if committee not in COMMITTEES:
        return json_error(request, 404)
    settings = request.app[SETTINGS]
    locale = request_locale(request)
    async with request.app[SESSIONS]() as session:
        snapshot = await load(session)
    t = translator(locale)
    slots = [s for s in snapshot.slots.values() if s.meeting.committee == committee]
    name = t._("普法学法微课堂 — {committee}", committee=committee_name(t, committee))
    return _ics(feed(snapshot, slots, name=name, tz=settings.tz, locale=locale, now=utcnow()))


async def unit_feed(request: web.Request) -> web.Response:
    """``GET /rota/unit/{key}.ics``: 404 for a key that is not (or no longer) valid."""
    settings = request.app[SETTINGS]
    locale = request_locale(request)
    async with request.app[SESSIONS]() as session:
        unit_id = await find_unit_by_key(session, settings.secret(), request.match_info["key"])
        if unit_id is None:
            return json_error(request, 404)
        snapshot = await load(session)
    t = translator(locale)
    slots = [s for s in snapshot.slots.values() if snapshot.credited_unit(s) == unit_id]
    name = t._("普法学法微课堂 — {unit}", unit=unit_name(t, snapshot.units.get(unit_id)))
    return _ics(feed(snapshot, slots, name=name, tz=settings.tz, locale=locale, now=utcnow()))


def setup(app: web.Application, catalog: object = None) -> None:
    """Add the feed routes."""
    app.router.add_get("/rota/unit/{key}.ics", unit_feed)
    app.router.add_get("/rota/{committee}.ics", committee_feed)
