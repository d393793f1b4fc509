"""``pufa rota …``: the calendar, the scheduler's tick, marking, the report, feeds, robots.

Times are ISO 8601; without an offset they are local (``PUFA_TIMEZONE``). Commands that change
something take ``--now`` to act as if it were another time (rehearsals, tests). ``MEETING`` is a
meeting's number as printed by ``pufa rota meetings list`` (``12`` or ``#12``); ``UNIT`` a
unit's name (司法局) or code (sfj). Failures are one line on stderr with exit status 1; bad usage
exits 2.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from bot.outbox.queue import Recipient
from bot.rota.calendar import COMMITTEES, WEEKDAYS, series_dates
from bot.rota.config import load_offsets
from bot.rota.ical import unit_key, unit_url
from bot.rota.plan import short_months
from bot.rota.report import compute, format_table, render_json, render_table, render_xlsx
from bot.rota.robot import disable_robot, mask_robot_url, robot_url_problem, set_robot
from bot.rota.service import (
    Env,
    Queued,
    add_meetings,
    cancel_meeting,
    mark,
    move_meeting,
    tick,
)
from bot.rota.store import Snapshot, find_unit, load, load_catalog, parse_meeting_ref
from core.cli import get_settings
from core.clock import utcnow
from core.errors import PufaError
from core.i18n import negotiate, translator
from core.settings import Settings
from storage.audit import record
from storage.db import transaction
from storage.models_rota import RotaFeedKey
from storage.runner import with_sessions
from storage.seed import load_catalog as seed_catalog

__all__ = ["commands", "parse_duration", "parse_moment"]

R = TypeVar("R")
COMMITTEE_LABELS = {"standing": "区委常委会", "executive": "政府常务会"}
_DURATION = re.compile(r"(\d+)\s*(s|m|min|h|d)")


def parse_moment(text: str, settings: Settings, what: str = "DATETIME") -> datetime:
    """An ISO 8601 date and time (local when it has no offset), as UTC."""
    raw = text.strip()
    if len(raw) <= 10:
        raise click.BadParameter(
            f"{raw!r} needs a time too, e.g. 2027-03-11T08:30", param_hint=what
        )
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise click.BadParameter(
            f"{raw!r} is not an ISO 8601 date and time, e.g. 2027-03-11T08:30", param_hint=what
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=settings.tz)
    return value.astimezone(UTC)


def parse_duration(text: str) -> timedelta:
    """``30m``, ``1h``, ``1d``, ``90s``."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise click.BadParameter(f"{text!r}: use e.g. 30m, 1h or 1d", param_hint="--every")
    n, unit = int(match.group(1)), match.group(2)
    step = {
        "s": timedelta(seconds=n),
        "m": timedelta(minutes=n),
        "min": timedelta(minutes=n),
        "h": timedelta(hours=n),
        "d": timedelta(days=n),
    }[unit]
    if step <= timedelta(0):
        raise click.BadParameter("the step must be more than zero", param_hint="--every")
    return step


def _now(ctx: click.Context, text: str | None) -> datetime:
    return parse_moment(text, get_settings(ctx), "--now") if text else utcnow()


def _run(ctx: click.Context, body: Callable[[async_sessionmaker[AsyncSession]], Awaitable[R]]) -> R:
    async def with_catalog(sessions: async_sessionmaker[AsyncSession]) -> R:
        async with transaction(sessions) as session:
            await seed_catalog(session)  # the units and both rotas (idempotent)
        return await body(sessions)

    return asyncio.run(with_sessions(get_settings(ctx).database_url, with_catalog))


def _in_transaction(ctx: click.Context, now: datetime, work: Callable[[Env], Awaitable[R]]) -> R:
    settings = get_settings(ctx)
    offsets = load_offsets()

    async def body(sessions: async_sessionmaker[AsyncSession]) -> R:
        async with transaction(sessions) as session:
            return await work(Env.of(session, settings, offsets, now, "cli"))

    return _run(ctx, body)


def _local(settings: Settings, moment: datetime) -> str:
    local = moment.astimezone(settings.tz)
    return f"{local:%Y-%m-%d %H:%M} {local:%a}"


def _meeting_line(settings: Settings, snapshot: Snapshot, meeting_id: int) -> str:
    row = snapshot.rows[meeting_id]
    slot = snapshot.slots.get(meeting_id)
    unit = snapshot.units.get(slot.unit_id) if slot else None
    duty = f"period {slot.period}  {unit.name} ({unit.code})" if slot and unit else row.status
    label = COMMITTEE_LABELS.get(row.committee, row.committee)
    return f"#{meeting_id}  {row.committee} {label}  {_local(settings, row.starts_at)}  {duty}"


_now_option = click.option(
    "--now",
    "now_text",
    default=None,
    metavar="ISO8601",
    help="Act as if it were this time (rehearsals and tests).",
)


@click.group()
def rota() -> None:
    """The 普法学法微课堂 lecture rotas: meetings, reminders, report, calendar feeds."""


@rota.group()
def meetings() -> None:
    """Schedule, list, move or cancel committee meetings."""


def _committee(value: str) -> str:
    if value not in COMMITTEES:
        raise click.BadParameter(
            f"{value!r}: use standing (区委常委会) or executive (政府常务会)",
            param_hint="COMMITTEE",
        )
    return value


@meetings.command("add")
@click.argument("committee")
@click.argument("when", metavar="DATETIME")
@_now_option
@click.pass_context
def meetings_add(ctx: click.Context, committee: str, when: str, now_text: str | None) -> None:
    """Schedule a meeting of COMMITTEE (standing or executive) at DATETIME."""
    settings = get_settings(ctx)
    moment = parse_moment(when, settings)
    _committee(committee)

    async def work(env: Env) -> list[str]:
        added, skipped = await add_meetings(env, committee, [moment])
        if skipped:
            raise PufaError(f"{committee} already meets at {_local(settings, moment)}")
        snapshot = await load(env.session)
        return [_meeting_line(settings, snapshot, r.id) for r in added if r.id is not None]

    for line in _in_transaction(ctx, _now(ctx, now_text), work):
        click.echo(f"added {line}")


@meetings.command("series")
@click.argument("committee")
@click.option("--weekday", required=True, type=click.Choice(list(WEEKDAYS)), help="Day of week.")
@click.option(
    "--weeks", required=True, help="Which of them in each month: e.g. 2,4 (1-5, or last)."
)
@click.option("--time", "at", required=True, help="Local time, e.g. 08:30.")
@click.option("--months", type=click.IntRange(1, 24), default=3, show_default=True)
@click.option("--from", "first", default=None, help="First day (YYYY-MM-DD; default today).")
@_now_option
@click.pass_context
def meetings_series(
    ctx: click.Context,
    committee: str,
    weekday: str,
    weeks: str,
    at: str,
    months: int,
    first: str | None,
    now_text: str | None,
) -> None:
    """Schedule a series, e.g. every 2nd and 4th Thursday 08:30 for three months:
    ``series standing --weekday thu --weeks 2,4 --time 08:30 --months 3``."""
    settings = get_settings(ctx)
    _committee(committee)
    try:
        numbers = sorted({-1 if w.strip() == "last" else int(w) for w in weeks.split(",")})
    except ValueError:
        raise click.BadParameter(f"{weeks!r}: use e.g. 2,4", param_hint="--weeks") from None
    if not all(n == -1 or 1 <= n <= 5 for n in numbers):
        raise click.BadParameter(f"{weeks!r}: weeks are 1 to 5, or last", param_hint="--weeks")
    try:
        clock = time.fromisoformat(at)
    except ValueError:
        raise click.BadParameter(f"{at!r}: use e.g. 08:30", param_hint="--time") from None
    now = _now(ctx, now_text)
    try:
        start = date.fromisoformat(first) if first else now.astimezone(settings.tz).date()
    except ValueError:
        raise click.BadParameter(f"{first!r}: use YYYY-MM-DD", param_hint="--from") from None
    times = [
        t.astimezone(UTC)
        for t in series_dates(start, months, WEEKDAYS[weekday], numbers, clock, settings.tz)
        if t > now
    ]

    async def work(env: Env) -> tuple[list[str], int]:
        added, skipped = await add_meetings(env, committee, times)
        snapshot = await load(env.session)
        return [_meeting_line(settings, snapshot, r.id) for r in added if r.id], len(skipped)

    lines, skipped = _in_transaction(ctx, now, work)
    for line in lines:
        click.echo(f"added {line}")
    if skipped:
        click.echo(f"{skipped} already scheduled, left as they were")
    click.echo(f"{len(lines)} meeting(s) added")


@meetings.command("list")
@click.argument("committee", required=False)
@click.option("--all", "everything", is_flag=True, help="Include meetings more than 31 days old.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@_now_option
@click.pass_context
def meetings_list(
    ctx: click.Context, committee: str | None, everything: bool, fmt: str, now_text: str | None
) -> None:
    """Meetings with the unit on duty and its status (cancelled ones too)."""
    settings = get_settings(ctx)
    if committee is not None:
        _committee(committee)
    now = _now(ctx, now_text)
    since = now - timedelta(days=31)

    async def body(sessions: async_sessionmaker[AsyncSession]) -> Snapshot:
        async with sessions() as session:
            return await load(session)

    snapshot = _run(ctx, body)
    items: list[dict[str, Any]] = []
    for row in sorted(snapshot.rows.values(), key=lambda r: (r.starts_at, r.id or 0)):
        if committee is not None and row.committee != committee:
            continue
        if not everything and row.starts_at < since:
            continue
        assert row.id is not None
        slot = snapshot.slots.get(row.id)
        unit = snapshot.units.get(slot.unit_id) if slot else None
        reply = snapshot.reply(slot) if slot else None
        items.append(
            {
                "id": row.id,
                "committee": row.committee,
                "starts_at": row.starts_at.astimezone(settings.tz).isoformat(timespec="minutes"),
                "status": row.status,
                "revision": row.revision,
                "period": slot.period if slot else None,
                "unit": unit.code if unit else None,
                "unit_name": unit.name if unit else None,
                "confirmed": bool(reply and slot and reply.confirmed_for(slot.meeting)),
                "topic": reply.topic_title if reply else None,
                "outcome": row.outcome,
                "sample": row.sample,
            }
        )
    if fmt == "json":
        click.echo(json.dumps(items, ensure_ascii=False, indent=2))
        return
    table = [["meeting", "committee", "when", "period", "unit", "status"]]
    for item in items:
        status = [item["status"]]
        if item["status"] == "scheduled":
            status.append("confirmed" if item["confirmed"] else "not confirmed")
            status.append("topic" if item["topic"] else "no topic")
            if item["outcome"]:
                status.append(item["outcome"])
        if item["sample"]:
            status.append("sample")
        when = datetime.fromisoformat(item["starts_at"])
        table.append(
            [
                f"#{item['id']}",
                f"{item['committee']} {COMMITTEE_LABELS[item['committee']]}",
                f"{when:%Y-%m-%d %H:%M %a}",
                str(item["period"] or "—"),
                f"{item['unit_name']} ({item['unit']})" if item["unit"] else "—",
                ", ".join(status),
            ]
        )
    click.echo(format_table(table, right={3}) if items else "no meetings scheduled")
    samples = " not counting sample meetings" if any(m.sample for m in snapshot.meetings) else ""
    for c, month, count in short_months(snapshot.meetings, now, load_offsets(), settings.tz):
        if committee is None or c == committee:
            click.echo(
                f"note: {c} {COMMITTEE_LABELS[c]} has {count} lecture(s) in {month}"
                f" (at least 2 a month){samples}"
            )


@meetings.command("move")
@click.argument("meeting")
@click.argument("when", metavar="DATETIME")
@_now_option
@click.pass_context
def meetings_move(ctx: click.Context, meeting: str, when: str, now_text: str | None) -> None:
    """Move MEETING to DATETIME; its reminders follow and the old ones are withdrawn."""
    settings = get_settings(ctx)
    meeting_id = parse_meeting_ref(meeting)
    moment = parse_moment(when, settings)

    async def work(env: Env) -> str:
        await move_meeting(env, meeting_id, moment)
        return _meeting_line(settings, await load(env.session), meeting_id)

    click.echo(f"moved {_in_transaction(ctx, _now(ctx, now_text), work)}")


@meetings.command("cancel")
@click.argument("meeting")
@_now_option
@click.pass_context
def meetings_cancel(ctx: click.Context, meeting: str, now_text: str | None) -> None:
    """Cancel MEETING: its unit passes to the next meeting."""
    settings = get_settings(ctx)
    meeting_id = parse_meeting_ref(meeting)

    async def work(env: Env) -> str:
        before = await load(env.session)
        slot = before.slots.get(meeting_id)
        unit = before.units.get(slot.unit_id) if slot else None
        await cancel_meeting(env, meeting_id)
        after = await load(env.session)
        line = f"cancelled {_meeting_line(settings, after, meeting_id)}"
        if slot is not None and unit is not None:
            moved = after.slot_of_turn(slot.meeting.committee, slot.turn)
            where = (
                f"#{moved.meeting.id} {_local(settings, moved.meeting.starts_at)}"
                if moved
                else "no meeting yet"
            )
            line += f"\n{unit.name} (period {slot.period}) passes to {where}"
        return line

    click.echo(_in_transaction(ctx, _now(ctx, now_text), work))


@rota.command("mark")
@click.argument("meeting")
@click.argument("outcome", type=click.Choice(["delivered", "missed"]))
@_now_option
@click.pass_context
def rota_mark(ctx: click.Context, meeting: str, outcome: str, now_text: str | None) -> None:
    """Record whether the lecture before MEETING was delivered or missed."""
    settings = get_settings(ctx)
    meeting_id = parse_meeting_ref(meeting)

    async def work(env: Env) -> str:
        await mark(env, meeting_id, outcome)
        return _meeting_line(settings, await load(env.session), meeting_id)

    click.echo(f"{outcome}: {_in_transaction(ctx, _now(ctx, now_text), work)}")


def _queued_line(settings: Settings, q: Queued) -> str:
    about = q.committee
    if q.meeting_id is not None and q.starts_at is not None:
        when = _local(settings, q.starts_at)
        about = f"#{q.meeting_id} {q.committee} period {q.period} {when} {q.unit}"
    return f"  {q.kind:<19} {about} -> {q.channel}:{q.address}"


@rota.command("tick")
@click.option(
    "--now",
    "now_text",
    default=None,
    metavar="ISO8601",
    help="Plan as if it were this time (default: now).",
)
@click.option("--dry-run", is_flag=True, help="Print what would be queued; queue nothing.")
@click.option(
    "--until",
    "until_text",
    default=None,
    metavar="ISO8601",
    help="Run again at every --every step up to this time (catching up, rehearsals).",
)
@click.option(
    "--every",
    "every_text",
    default="1h",
    show_default=True,
    help="Step for --until: e.g. 1m, 30m, 1h.",
)
@click.pass_context
def rota_tick(
    ctx: click.Context,
    now_text: str | None,
    dry_run: bool,
    until_text: str | None,
    every_text: str,
) -> None:
    """Run the reminder scheduler once as if it were --now; print what was queued."""
    settings = get_settings(ctx)
    now = _now(ctx, now_text)
    until = parse_moment(until_text, settings, "--until") if until_text else now
    if until < now:
        raise click.BadParameter("--until is before --now", param_hint="--until")
    every = parse_duration(every_text)
    if (until - now) / every > 100_000:
        raise click.BadParameter("too many steps: use a longer --every", param_hint="--every")
    offsets = load_offsets()

    async def body(
        sessions: async_sessionmaker[AsyncSession],
    ) -> list[tuple[datetime, list[Queued]]]:
        steps: list[tuple[datetime, list[Queued]]] = []
        async with sessions() as session:
            catalog = await load_catalog(session)
        chats: dict[int | None, list[Recipient]] = {}
        moment = now
        while moment <= until:
            async with transaction(sessions) as session:
                env = Env.of(session, settings, offsets, moment, "scheduler")
                env.catalog, env.chats = catalog, chats  # read once for a run of ticks
                steps.append((moment, await tick(env, dry_run=dry_run)))
            moment += every
        return steps

    total = 0
    for moment, queued in _run(ctx, body):
        if not queued:
            continue
        local = moment.astimezone(settings.tz)
        verb = "would queue" if dry_run else "queued"
        click.echo(f"{local:%Y-%m-%d %H:%M %z}: {verb} {len(queued)}")
        for q in queued:
            click.echo(_queued_line(settings, q))
        total += len(queued)
    click.echo(f"{'would queue' if dry_run else 'queued'} {total}")


@rota.command("report")
@click.option("--year", type=click.IntRange(2000, 2100), required=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "xlsx"]), default="table")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--include-sample", is_flag=True, help="Count sample (demo) meetings too.")
@click.option("--lang", default=None, help="zh_CN (default) or en.")
@click.pass_context
def rota_report(
    ctx: click.Context,
    year: int,
    fmt: str,
    output: Path | None,
    include_sample: bool,
    lang: str | None,
) -> None:
    """Appraisal figures per unit and committee for a year (all 40 rota places)."""
    settings = get_settings(ctx)
    locale = negotiate(lang, settings.default_locale) if lang else settings.default_locale
    if fmt == "xlsx" and output is None:
        raise click.UsageError("--format xlsx needs -o FILE")

    async def body(sessions: async_sessionmaker[AsyncSession]) -> Snapshot:
        async with sessions() as session:
            return await load(session)

    snapshot = _run(ctx, body)
    rows = compute(snapshot, year, settings.tz, load_offsets(), include_sample=include_sample)
    t = translator(locale)
    if fmt == "xlsx":
        assert output is not None
        data = render_xlsx(rows, year, t, include_sample)
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_bytes(data)
        except OSError as exc:
            raise PufaError(f"cannot write {output}: {exc.strerror}") from exc
        click.echo(f"written {output}")
        return
    text = (
        render_json(rows, year, include_sample)
        if fmt == "json"
        else render_table(rows, year, t, include_sample)
    )
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise PufaError(f"cannot write {output}: {exc.strerror}") from exc
    click.echo(f"written {output}")


@rota.command("ical")
@click.argument("unit")
@click.option("--new", "renew", is_flag=True, help="Issue a new link; the old one stops working.")
@click.pass_context
def rota_ical(ctx: click.Context, unit: str, renew: bool) -> None:
    """The unit's secret calendar-feed link (alone on the last line)."""
    settings = get_settings(ctx)

    async def body(sessions: async_sessionmaker[AsyncSession]) -> tuple[str, str, int]:
        async with transaction(sessions) as session:
            found = await find_unit(session, unit)
            assert found.id is not None
            row = (
                await session.execute(
                    select(RotaFeedKey).where(col(RotaFeedKey.unit_id) == found.id)
                )
            ).scalar_one_or_none()
            if row is None:
                row = RotaFeedKey(unit_id=found.id, generation=1, created_at=utcnow())
                session.add(row)
                record(
                    session,
                    "cli",
                    "rota.ical.issue",
                    f"unit:{found.code}",
                    before=None,
                    after={"generation": 1},
                )
            elif renew:
                record(
                    session,
                    "cli",
                    "rota.ical.issue",
                    f"unit:{found.code}",
                    before={"generation": row.generation},
                    after={"generation": row.generation + 1},
                )
                row.generation += 1
                row.created_at = utcnow()
            return found.name, found.code, row.generation

    name, code, generation = _run(ctx, body)
    key = unit_key(settings.secret(), code, generation)
    public = settings.public_url.rstrip("/")
    click.echo(f"calendar feed of {name} ({code}), link no. {generation}: anyone with the link")
    click.echo("can read the unit's lectures; `pufa rota ical UNIT --new` replaces it.")
    click.echo(f"committee feeds: {public}/rota/standing.ics {public}/rota/executive.ics")
    click.echo(unit_url(settings.public_url, key))


@rota.command("robot")
@click.argument("unit")
@click.argument("url", required=False)
@click.option("--off", is_flag=True, help="Stop sending the unit's reminders to its robot.")
@click.pass_context
def rota_robot(ctx: click.Context, unit: str, url: str | None, off: bool) -> None:
    """Send UNIT's reminders to a WeCom group robot too (URL stored encrypted)."""
    settings = get_settings(ctx)
    if off == (url is not None):
        raise click.UsageError("give the robot's URL, or --off")
    if url is not None:
        problem = robot_url_problem(url)
        if problem is not None:
            raise click.BadParameter(problem, param_hint="URL")

    async def body(sessions: async_sessionmaker[AsyncSession]) -> str:
        async with transaction(sessions) as session:
            found = await find_unit(session, unit)
            if url is None:
                n = await disable_robot(session, found)
                record(
                    session,
                    "cli",
                    "rota.robot.off",
                    f"unit:{found.code}",
                    before={"active": bool(n)},
                    after={"active": False},
                )
                return f"{found.name}: robot switched off" if n else f"{found.name}: no robot"
            masked = mask_robot_url(url)
            await set_robot(session, settings.secret(), found, url, settings.default_locale)
            record(
                session,
                "cli",
                "rota.robot.set",
                f"unit:{found.code}",
                before=None,
                after={"url": masked},
            )
            return f"{found.name}: reminders also go to the WeCom robot {masked}"

    click.echo(_run(ctx, body))


commands = [rota]
