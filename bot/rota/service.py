"""What the rota does: the scheduler's tick and every change to the calendar.

Each function works in the caller's transaction (:class:`Env` carries the session, the clock
and the settings), so a change, its audit entry and the messages it queues commit together.

- :func:`tick` runs the pure plan (:func:`bot.rota.plan.plan`) for ``now`` and queues what is
  due through the outbox, one message per recipient with a dedupe key per (meeting, revision,
  unit, kind, recipient): a second run at the same moment, or a concurrent one, queues nothing
  again.
- :func:`add_meetings`, :func:`move_meeting`, :func:`cancel_meeting`, :func:`decide_swap`
  change the calendar through :func:`_reconcile`: every meeting whose time or unit changed gets
  a new revision (its old reminders are withdrawn from the outbox and their keys are never
  planned again), and units that had already been told about a lecture are told where it went.
- :func:`confirm`, :func:`set_topic`, :func:`request_swap` record a unit's replies;
  :func:`mark` records whether the lecture was given.

Every change is written to the audit log with what it was before and after.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.outbox.queue import Outgoing, Recipient, cancel_pending, enqueue, recipients
from bot.rota.calendar import COMMITTEES, Slot
from bot.rota.plan import Offsets, Planned, plan
from bot.rota.store import Catalog, Snapshot, load, pending_keys, turn_row
from bot.rota.texts import Texts
from core.errors import PufaError
from core.i18n import N_, Translator
from core.messages import Reply
from core.settings import Settings
from storage.audit import record
from storage.models_outbox import OutboxMessage
from storage.models_rota import RotaMeeting, RotaSwap

__all__ = [
    "Env",
    "Queued",
    "RotaProblem",
    "add_meetings",
    "cancel_meeting",
    "confirm",
    "decide_swap",
    "mark",
    "move_meeting",
    "request_swap",
    "set_topic",
    "tick",
]

OUTBOX_KIND = {
    "heads_up": "reminder",
    "topic_request": "reminder",
    "topic_overdue": "reminder",
    "last_reminder": "reminder",
    "day_of": "reminder",
    "confirm_escalation": "escalation",
    "topic_escalation": "escalation",
    "month_short": "alert",
    "unreachable": "alert",
}
MARK_FROM = timedelta(minutes=10)
"""A lecture can be marked from ten minutes before the meeting (when it is given)."""
TITLE_MAX = 200
OUTLINE_MAX = 2000
REASON_MAX = 500
"""Longest reason given with a swap request."""


class RotaProblem(PufaError):
    """A change that cannot be made, with a message id and its parameters (for chat, the
    message is translated; datetimes are shown in the reader's language and zone)."""

    def __init__(self, msgid: str, **params: Any) -> None:
        super().__init__(msgid.format(**{k: _plain(v) for k, v in params.items()}))
        self.msgid = msgid
        self.params = params

    def render(self, t: Translator, tz: tzinfo) -> str:
        """The message in ``t``'s language."""
        shown = {
            k: t.datetime(v.astimezone(tz)) if isinstance(v, datetime) else v
            for k, v in self.params.items()
        }
        return t._(self.msgid, **shown)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="minutes")
    return value


@dataclass
class Env:
    """What every rota operation works with."""

    session: AsyncSession
    secret: bytes
    tz: tzinfo
    offsets: Offsets
    now: datetime
    actor: str = "cli"
    default_locale: str = "zh_CN"
    catalog: Catalog | None = None
    """Units and rotas already read (a run of many ticks reads them once)."""
    chats: dict[int | None, list[Recipient]] = field(default_factory=dict)
    """Recipients by unit id (``None``: the coordinator), read once per environment."""

    @classmethod
    def of(
        cls,
        session: AsyncSession,
        settings: Settings,
        offsets: Offsets,
        now: datetime,
        actor: str = "cli",
    ) -> Env:
        """An environment from the process settings."""
        return cls(
            session,
            settings.secret(),
            settings.tz,
            offsets,
            now,
            actor,
            settings.default_locale,
        )

    def texts(self, snapshot: Snapshot) -> Texts:
        """The renderer for this snapshot's units."""
        return Texts(snapshot.units, self.tz, self.offsets, self.secret)

    async def unit_chats(self, unit_id: int) -> list[Recipient]:
        """Every chat that receives the unit's pushes."""
        if unit_id not in self.chats:
            self.chats[unit_id] = await recipients(
                self.session, "unit", unit_id=unit_id, default_locale=self.default_locale
            )
        return self.chats[unit_id]

    async def coordinator_chats(self) -> list[Recipient]:
        """Every chat of the rota coordinator."""
        if None not in self.chats:
            self.chats[None] = await recipients(
                self.session, "coordinator", default_locale=self.default_locale
            )
        return self.chats[None]

    async def push(
        self,
        key: str,
        chats: Sequence[Recipient],
        render: Callable[[Recipient], Reply],
        kind: str = "notice",
    ) -> int:
        """Queue one message per chat (dedupe key ``key:channel:address``)."""
        messages = [Outgoing(f"{key}:{r.channel}:{r.address}", r, render(r), kind) for r in chats]
        return await enqueue(self.session, messages, self.now)


# ---------------------------------------------------------------------------------- the tick


@dataclass(frozen=True, slots=True)
class Queued:
    """One message a tick queued (or, in a dry run, would queue)."""

    kind: str
    committee: str
    meeting_id: int | None
    period: int | None
    unit: str
    starts_at: datetime | None
    channel: str
    address: str
    key: str


async def _existing(session: AsyncSession, keys: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        rows = await session.execute(
            select(col(OutboxMessage.dedupe_key)).where(col(OutboxMessage.dedupe_key).in_(chunk))
        )
        found.update(rows.scalars())
    return found


async def tick(env: Env, *, dry_run: bool = False) -> list[Queued]:
    """Queue every message the plan says is due at ``env.now``; return what was new.

    The plan is worked out first and the dedupe keys already in the outbox are left out
    before anything is rendered, so a tick with nothing new costs a few reads.
    """
    snapshot = await load(env.session, env.catalog)
    texts = env.texts(snapshot)
    items = plan(snapshot.slots, snapshot.replies, snapshot.meetings, env.now, env.offsets, env.tz)
    candidates: list[tuple[str, str, Recipient, Planned, Callable[[Recipient], Reply]]] = []
    for item in items:
        render: Callable[[Recipient], Reply]
        if item.audience == "unit":
            assert item.slot is not None
            on_duty = item.slot
            chats = await env.unit_chats(on_duty.unit_id)
            if not chats and item.kind == "heads_up":
                key = item.key.removesuffix(":heads_up") + ":unreachable"
                for to in await env.coordinator_chats():
                    render = partial(texts.unreachable, on_duty)
                    candidates.append(
                        (f"{key}:{to.channel}:{to.address}", "unreachable", to, item, render)
                    )
        else:
            chats = await env.coordinator_chats()
        for to in chats:
            render = partial(texts.planned, item)
            candidates.append(
                (f"{item.key}:{to.channel}:{to.address}", item.kind, to, item, render)
            )
    if not candidates:
        return []
    existing = await _existing(env.session, [c[0] for c in candidates])
    queued: list[Queued] = []
    for key, kind, to, item, render in candidates:
        if key in existing:
            continue
        slot = item.slot
        unit = snapshot.units.get(slot.unit_id) if slot else None
        line = Queued(
            kind,
            item.committee,
            slot.meeting.id if slot else None,
            slot.period if slot else None,
            unit.name if unit else "",
            slot.meeting.starts_at if slot else None,
            to.channel,
            to.address,
            key,
        )
        if dry_run:
            queued.append(line)
            continue
        outgoing = Outgoing(key, to, render(to), OUTBOX_KIND[kind])
        if await enqueue(env.session, [outgoing], env.now):
            queued.append(line)
    return queued


# ---------------------------------------------------------------------------------- changes


def _told(env: Env, slot: Slot) -> bool:
    """Whether the unit on duty has been told about this lecture (the heads-up was due)."""
    meeting = slot.meeting
    if meeting.starts_at <= env.now or meeting.sample:
        return False
    due = meeting.starts_at - env.offsets.heads_up
    if meeting.notice_at is not None:
        due = max(due, meeting.notice_at)
    return due <= env.now


async def _withdraw(env: Env, snapshot: Snapshot, meeting_ids: Sequence[int]) -> int:
    """Cancel pending messages of these meetings' earlier revisions (all, if cancelled)."""
    keys: list[str] = []
    for meeting_id in meeting_ids:
        row = snapshot.rows[meeting_id]
        prefix = f"rota:m{meeting_id}:"
        keep = f"{prefix}r{row.revision}:" if row.status == "scheduled" else None
        for key in await pending_keys(env.session, [prefix]):
            if keep is None or not key.startswith(keep):
                keys.append(key)
    return await cancel_pending(env.session, keys, env.now)


async def _reconcile(
    env: Env, before: Snapshot, after: Snapshot, *, notify: bool = True
) -> list[int]:
    """Give every meeting whose time or unit changed a new revision, withdraw its old
    reminders and tell the units that had been told; return the meetings changed."""
    changed: list[int] = []
    was = {m.id: m for m in before.meetings}
    for meeting_id, row in after.rows.items():
        old = before.slots.get(meeting_id)
        new = after.slots.get(meeting_id)
        if old is None and new is None:
            continue
        differs = (
            old is None
            or new is None
            or (old.unit_id, old.turn) != (new.unit_id, new.turn)
            or (meeting_id in was and was[meeting_id].starts_at != row.starts_at)
        )
        if differs and old is not None:
            row.revision += 1
            row.notice_at = env.now
            row.updated_at = env.now
            changed.append(meeting_id)
    after.recompute()
    await _withdraw(env, after, changed)
    if not notify:
        return changed
    texts = env.texts(after)
    for slot in before.slots.values():
        if not _told(env, slot):
            continue
        now_slot = after.slot_of_turn(slot.meeting.committee, slot.turn)
        if now_slot is not None and now_slot.meeting.id == slot.meeting.id:
            if now_slot.meeting.starts_at != slot.meeting.starts_at:
                chats = await env.unit_chats(now_slot.unit_id)
                key = (
                    f"rota:m{now_slot.meeting.id}:r{now_slot.meeting.revision}:u{now_slot.unit_id}"
                )
                old_time = slot.meeting.starts_at
                await env.push(
                    f"{key}:moved",
                    chats,
                    partial(texts.moved, now_slot, old_time),
                )
            continue
        cancelled = after.rows[slot.meeting.id].status == "cancelled"
        chats = await env.unit_chats(slot.unit_id)
        key = (
            f"rota:{slot.meeting.committee}:t{slot.turn}:m{slot.meeting.id}r{slot.meeting.revision}"
        )
        await env.push(
            f"{key}:turn_moved",
            chats,
            partial(
                texts.turn_moved,
                slot.unit_id,
                slot.meeting.committee,
                slot.period,
                slot.meeting.starts_at,
                now_slot,
                cancelled,
            ),
        )
    return changed


def _describe(snapshot: Snapshot, meeting_id: int, tz: tzinfo) -> dict[str, Any]:
    row = snapshot.rows[meeting_id]
    slot = snapshot.slots.get(meeting_id)
    unit = snapshot.units.get(slot.unit_id) if slot else None
    return {
        "committee": row.committee,
        "starts_at": row.starts_at.astimezone(tz).isoformat(timespec="minutes"),
        "status": row.status,
        "revision": row.revision,
        "period": slot.period if slot else None,
        "unit": unit.code if unit else None,
        "outcome": row.outcome,
    }


def _check_committee(committee: str) -> None:
    if committee not in COMMITTEES:
        raise RotaProblem(
            N_(
                "Unknown committee {committee}: use standing (区委常委会) or executive "
                "(政府常务会)."
            ),
            committee=committee,
        )


async def add_meetings(
    env: Env, committee: str, times: Sequence[datetime], *, sample: bool = False
) -> tuple[list[RotaMeeting], list[datetime]]:
    """Schedule meetings (one, or a series); return those added and the times skipped because
    the committee already meets then."""
    _check_committee(committee)
    if not times:
        raise RotaProblem(N_("No meeting dates: the rule gives none in that period."))
    for moment in times:
        if moment.tzinfo is None:
            raise ValueError("meeting times must be timezone-aware")
        if moment <= env.now and not sample:
            raise RotaProblem(
                N_("{when} has already passed: a meeting is scheduled ahead."), when=moment
            )
    before = await load(env.session)
    taken = {
        row.starts_at
        for row in before.rows.values()
        if row.committee == committee and row.status == "scheduled"
    }
    added: list[RotaMeeting] = []
    skipped: list[datetime] = []
    for moment in sorted(times):
        if moment in taken:
            skipped.append(moment)
            continue
        row = RotaMeeting(
            committee=committee,
            starts_at=moment,
            notice_at=env.now,
            sample=sample,
            created_at=env.now,
            updated_at=env.now,
        )
        env.session.add(row)
        added.append(row)
        taken.add(moment)
    await env.session.flush()
    after = await load(env.session)
    await _reconcile(env, before, after)
    for row in added:
        assert row.id is not None
        record(
            env.session,
            env.actor,
            "rota.meeting.add",
            f"meeting:{row.id}",
            before=None,
            after=_describe(after, row.id, env.tz),
        )
    return added, skipped


async def _future_meeting(env: Env, snapshot: Snapshot, meeting_id: int) -> RotaMeeting:
    row = snapshot.rows.get(meeting_id)
    if row is None:
        raise RotaProblem(N_("There is no meeting #{id}."), id=meeting_id)
    if row.status == "cancelled":
        raise RotaProblem(N_("Meeting #{id} is cancelled."), id=meeting_id)
    if row.starts_at <= env.now:
        raise RotaProblem(
            N_("Meeting #{id} ({when}) has already taken place."), id=meeting_id, when=row.starts_at
        )
    return row


async def move_meeting(env: Env, meeting_id: int, new_time: datetime) -> RotaMeeting:
    """Give a meeting a new time; its reminders follow and the old ones are withdrawn."""
    before = await load(env.session)
    row = await _future_meeting(env, before, meeting_id)
    if new_time <= env.now:
        raise RotaProblem(
            N_("{when} has already passed: a meeting is scheduled ahead."), when=new_time
        )
    if new_time == row.starts_at:
        raise RotaProblem(N_("Meeting #{id} is already at {when}."), id=meeting_id, when=new_time)
    clash = [
        other.id
        for other in before.rows.values()
        if other.committee == row.committee
        and other.status == "scheduled"
        and other.starts_at == new_time
        and other.id != meeting_id
    ]
    if clash:
        raise RotaProblem(
            N_("Meeting #{other} is already at {when}."), other=clash[0], when=new_time
        )
    old = _describe(before, meeting_id, env.tz)
    row.starts_at = new_time
    await env.session.flush()
    after = await load(env.session)
    await _reconcile(env, before, after)
    record(
        env.session,
        env.actor,
        "rota.meeting.move",
        f"meeting:{meeting_id}",
        before=old,
        after=_describe(after, meeting_id, env.tz),
    )
    return row


async def cancel_meeting(env: Env, meeting_id: int) -> RotaMeeting:
    """Cancel a meeting: its unit passes to the next meeting, and everyone after moves one on."""
    before = await load(env.session)
    row = await _future_meeting(env, before, meeting_id)
    old = _describe(before, meeting_id, env.tz)
    row.status = "cancelled"
    row.updated_at = env.now
    await env.session.flush()
    after = await load(env.session)
    await _reconcile(env, before, after)
    record(
        env.session,
        env.actor,
        "rota.meeting.cancel",
        f"meeting:{meeting_id}",
        before=old,
        after=_describe(after, meeting_id, env.tz),
    )
    return row


async def mark(env: Env, meeting_id: int, outcome: str) -> tuple[RotaMeeting, Slot]:
    """Record whether the lecture was given (``delivered`` or ``missed``)."""
    if outcome not in ("delivered", "missed"):
        raise RotaProblem(N_("Mark a lecture delivered or missed."))
    snapshot = await load(env.session)
    row = snapshot.rows.get(meeting_id)
    if row is None:
        raise RotaProblem(N_("There is no meeting #{id}."), id=meeting_id)
    slot = snapshot.slots.get(meeting_id)
    if row.status == "cancelled" or slot is None:
        raise RotaProblem(N_("Meeting #{id} is cancelled."), id=meeting_id)
    if env.now < row.starts_at - MARK_FROM:
        raise RotaProblem(
            N_("Meeting #{id} has not taken place yet ({when})."), id=meeting_id, when=row.starts_at
        )
    old = _describe(snapshot, meeting_id, env.tz)
    row.outcome = outcome
    row.outcome_unit_id = snapshot.credited_unit(slot)
    row.outcome_at = env.now
    row.updated_at = env.now
    await env.session.flush()
    snapshot.recompute()
    record(
        env.session,
        env.actor,
        "rota.meeting.mark",
        f"meeting:{meeting_id}",
        before=old,
        after=_describe(snapshot, meeting_id, env.tz),
    )
    return row, snapshot.slots[meeting_id]


# ---------------------------------------------------------------------------------- replies


async def _own_slot(env: Env, snapshot: Snapshot, meeting_id: int, unit_id: int) -> Slot:
    await _future_meeting(env, snapshot, meeting_id)
    slot = snapshot.slots[meeting_id]
    if slot.unit_id != unit_id:
        raise RotaProblem(
            N_("The lecture before meeting #{id} is not your unit's turn (any more)."),
            id=meeting_id,
        )
    return slot


async def confirm(
    env: Env, meeting_id: int, revision: int | None, unit_id: int
) -> tuple[Slot, bool]:
    """A unit confirms its lecture; ``revision`` is the one its button was drawn for (``None``:
    the current one). Returns the slot and whether it was confirmed already."""
    snapshot = await load(env.session)
    slot = await _own_slot(env, snapshot, meeting_id, unit_id)
    if revision is not None and revision != slot.meeting.revision:
        raise RotaProblem(
            N_(
                "That reminder is out of date: the meeting is now at {when}. Send /duty to see "
                "your turns."
            ),
            when=slot.meeting.starts_at,
        )
    row = await turn_row(env.session, snapshot, slot)
    already = (
        row.confirmed_meeting_id == meeting_id
        and row.confirmed_revision == slot.meeting.revision
        and row.confirmed_at is not None
    )
    if already:
        return slot, True
    before = {"meeting": row.confirmed_meeting_id, "revision": row.confirmed_revision}
    row.confirmed_meeting_id = meeting_id
    row.confirmed_revision = slot.meeting.revision
    row.confirmed_at = env.now
    row.confirmed_by = env.actor
    record(
        env.session,
        env.actor,
        "rota.confirm",
        f"meeting:{meeting_id}",
        before=before,
        after={
            "meeting": meeting_id,
            "revision": slot.meeting.revision,
            "unit": snapshot.units[unit_id].code,
        },
    )
    return slot, False


@dataclass(frozen=True, slots=True)
class File:
    """A file a unit attached to its topic (kept by the chat platform's file id)."""

    file_id: str
    name: str = ""
    mime: str = ""


async def set_topic(
    env: Env,
    meeting_id: int,
    unit_id: int,
    title: str,
    outline: str,
    file: File | None = None,
) -> Slot:
    """A unit sends (or replaces) the topic of its lecture; the coordinator is told."""
    title = " ".join(title.split())
    outline = outline.strip()
    if not title:
        raise RotaProblem(N_("Please give the lecture a title."))
    if len(title) > TITLE_MAX:
        raise RotaProblem(
            N_("Please keep the title under {max} characters (yours has {n})."),
            max=TITLE_MAX,
            n=len(title),
        )
    if len(outline) > OUTLINE_MAX:
        raise RotaProblem(
            N_("Please keep the outline under {max} characters (yours has {n})."),
            max=OUTLINE_MAX,
            n=len(outline),
        )
    snapshot = await load(env.session)
    slot = await _own_slot(env, snapshot, meeting_id, unit_id)
    row = await turn_row(env.session, snapshot, slot)
    before = {"title": row.topic_title, "file": row.topic_file_name}
    row.topic_title = title
    row.topic_outline = outline
    if file is not None:
        row.topic_file_id = file.file_id
        row.topic_file_name = file.name or None
        row.topic_file_mime = file.mime or None
    row.topic_at = env.now
    row.topic_by = env.actor
    record(
        env.session,
        env.actor,
        "rota.topic",
        f"meeting:{meeting_id}",
        before=before,
        after={"title": title, "file": row.topic_file_name, "unit": snapshot.units[unit_id].code},
    )
    texts = env.texts(snapshot)
    key = f"rota:{slot.meeting.committee}:t{slot.turn}:topic:{int(env.now.timestamp())}"
    file_name = row.topic_file_name
    await env.push(
        key,
        await env.coordinator_chats(),
        lambda to: texts.topic_received(slot, title, outline, file_name, to),
    )
    return slot


async def swap_candidates(
    env: Env, snapshot: Snapshot, meeting_id: int, unit_id: int, limit: int = 6
) -> list[Slot]:
    """The coming lectures of other units in the same rota a unit may ask to swap with."""
    slot = await _own_slot(env, snapshot, meeting_id, unit_id)
    return [
        s
        for s in snapshot.upcoming(env.now, slot.meeting.committee)
        if s.unit_id != unit_id and not s.meeting.sample
    ][:limit]


async def request_swap(
    env: Env, meeting_a: int, meeting_b: int, unit_id: int, reason: str = ""
) -> RotaSwap:
    """A unit asks to exchange its lecture with another unit's, optionally saying why; both
    that unit and the coordinator are asked (either may agree)."""
    reason = " ".join(reason.split())
    if len(reason) > REASON_MAX:
        raise RotaProblem(
            N_("Please keep the reason under {max} characters (yours has {n})."),
            max=REASON_MAX,
            n=len(reason),
        )
    snapshot = await load(env.session)
    a = await _own_slot(env, snapshot, meeting_a, unit_id)
    await _future_meeting(env, snapshot, meeting_b)
    b = snapshot.slots[meeting_b]
    if b.meeting.committee != a.meeting.committee or b.unit_id == unit_id:
        raise RotaProblem(N_("Choose a lecture of another unit in the same rota."))
    pending = (
        (
            await env.session.execute(
                select(RotaSwap).where(
                    col(RotaSwap.status) == "requested",
                    col(RotaSwap.committee) == a.meeting.committee,
                    col(RotaSwap.turn_a).in_([a.turn, b.turn])
                    | col(RotaSwap.turn_b).in_([a.turn, b.turn]),
                )
            )
        )
        .scalars()
        .first()
    )
    if pending is not None:
        raise RotaProblem(
            N_("There is already a swap request #{id} for one of these lectures."), id=pending.id
        )
    swap = RotaSwap(
        committee=a.meeting.committee,
        turn_a=a.turn,
        turn_b=b.turn,
        meeting_a_id=meeting_a,
        meeting_b_id=meeting_b,
        unit_a_id=a.unit_id,
        unit_b_id=b.unit_id,
        requested_by=env.actor,
        requested_at=env.now,
        reason=reason or None,
    )
    env.session.add(swap)
    await env.session.flush()
    assert swap.id is not None
    record(
        env.session,
        env.actor,
        "rota.swap.request",
        f"swap:{swap.id}",
        before=None,
        after={
            "meeting_a": meeting_a,
            "unit_a": snapshot.units[a.unit_id].code,
            "meeting_b": meeting_b,
            "unit_b": snapshot.units[b.unit_id].code,
            "reason": reason,
        },
    )
    texts = env.texts(snapshot)
    swap_id = swap.id
    await env.push(
        f"rota:swap{swap_id}:request",
        await env.unit_chats(b.unit_id),
        lambda to: texts.swap_request(swap_id, a, b, to, coordinator=False, reason=swap.reason),
    )
    await env.push(
        f"rota:swap{swap_id}:request",
        await env.coordinator_chats(),
        lambda to: texts.swap_request(swap_id, a, b, to, coordinator=True, reason=swap.reason),
    )
    return swap


async def decide_swap(
    env: Env,
    swap_id: int,
    agree: bool,
    *,
    unit_id: int | None = None,
    coordinator: bool = False,
) -> tuple[RotaSwap, Slot | None, Slot | None]:
    """The other unit (``unit_id``) or the coordinator agrees to a swap or refuses it.

    Returns the swap and, when it took effect, the two lectures after it (the asking unit's
    first)."""
    swap = await env.session.get(RotaSwap, swap_id)
    if swap is None:
        raise RotaProblem(N_("There is no swap request #{id}."), id=swap_id)
    if not coordinator and unit_id != swap.unit_b_id:
        raise RotaProblem(N_("Only the other unit or the coordinator can answer this request."))
    if swap.status != "requested":
        raise RotaProblem(N_("Swap request #{id} has already been answered."), id=swap_id)
    before = await load(env.session)
    a = before.slot_of_turn(swap.committee, swap.turn_a)
    b = before.slot_of_turn(swap.committee, swap.turn_b)
    stale = (
        a is None
        or b is None
        or a.meeting.id != swap.meeting_a_id
        or b.meeting.id != swap.meeting_b_id
        or a.meeting.starts_at <= env.now
        or b.meeting.starts_at <= env.now
    )
    action = (
        ("approve" if agree else "reject") if coordinator else ("accept" if agree else "decline")
    )
    swap.decided_by = env.actor
    swap.decided_at = env.now
    if stale:
        swap.status = "expired"
        record(
            env.session,
            env.actor,
            "rota.swap.expire",
            f"swap:{swap_id}",
            before={"status": "requested"},
            after={"status": "expired"},
        )
        raise RotaProblem(
            N_("The calendar has changed since swap request #{id} was made; it no longer applies."),
            id=swap_id,
        )
    assert a is not None and b is not None
    texts = env.texts(before)
    if not agree:
        swap.status = "declined"
        record(
            env.session,
            env.actor,
            f"rota.swap.{action}",
            f"swap:{swap_id}",
            before={"status": "requested"},
            after={"status": "declined"},
        )
        await env.push(
            f"rota:swap{swap_id}:declined",
            await env.unit_chats(swap.unit_a_id),
            lambda to: texts.swap_declined(a, swap.unit_b_id, coordinator, to),
        )
        return swap, None, None
    swap.status = "accepted"
    await env.session.flush()
    after = await load(env.session)
    await _reconcile(env, before, after, notify=False)
    new_a = after.slot_of_turn(swap.committee, swap.turn_a)
    new_b = after.slot_of_turn(swap.committee, swap.turn_b)
    assert new_a is not None and new_b is not None
    record(
        env.session,
        env.actor,
        f"rota.swap.{action}",
        f"swap:{swap_id}",
        before={
            "status": "requested",
            f"meeting:{a.meeting.id}": before.units[a.unit_id].code,
            f"meeting:{b.meeting.id}": before.units[b.unit_id].code,
        },
        after={
            "status": "accepted",
            f"meeting:{new_a.meeting.id}": after.units[new_a.unit_id].code,
            f"meeting:{new_b.meeting.id}": after.units[new_b.unit_id].code,
        },
    )
    done = env.texts(after)
    chats = [
        *await env.unit_chats(swap.unit_a_id),
        *await env.unit_chats(swap.unit_b_id),
        *await env.coordinator_chats(),
    ]
    await env.push(f"rota:swap{swap_id}:done", chats, lambda to: done.swap_done(new_a, new_b, to))
    return swap, new_a, new_b
