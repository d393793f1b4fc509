"""Reading and writing the rota tables (the storage edge of the rota feature).

:func:`load` reads the whole calendar — meetings, both rotas, accepted swaps, the units'
replies — into a :class:`Snapshot` with every meeting's slot worked out by the pure
:func:`bot.rota.calendar.assign`. A district holds a few dozen meetings a year, so reading
them all is cheap and keeps every decision a pure function of one consistent picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.rota.calendar import COMMITTEES, Meeting, Slot, assign
from bot.rota.plan import TurnReply
from core.errors import PufaError
from core.ids import parse_id
from storage.models import RotaEntry, Unit
from storage.models_outbox import OutboxMessage
from storage.models_rota import RotaMeeting, RotaSwap, RotaTurn

__all__ = [
    "Catalog",
    "Snapshot",
    "find_meeting",
    "find_unit",
    "load",
    "load_catalog",
    "parse_meeting_ref",
    "pending_keys",
    "to_meeting",
    "turn_row",
]


def to_meeting(row: RotaMeeting) -> Meeting:
    """The calendar's view of a meeting row."""
    assert row.id is not None
    return Meeting(
        id=row.id,
        committee=row.committee,
        starts_at=row.starts_at,
        cancelled=row.status == "cancelled",
        revision=row.revision,
        notice_at=row.notice_at,
        outcome=row.outcome,
        outcome_unit_id=row.outcome_unit_id,
        sample=row.sample,
    )


def to_reply(row: RotaTurn) -> TurnReply:
    """The plan's view of a turn row."""
    return TurnReply(
        unit_id=row.unit_id,
        confirmed_meeting_id=row.confirmed_meeting_id,
        confirmed_revision=row.confirmed_revision,
        confirmed_at=row.confirmed_at,
        topic_title=row.topic_title,
        topic_at=row.topic_at,
    )


@dataclass
class Snapshot:
    """The calendar as read in one transaction."""

    rows: dict[int, RotaMeeting]
    meetings: list[Meeting]
    rotas: dict[str, list[int]]
    units: dict[int, Unit]
    swaps: list[tuple[str, int, int]]
    turns: dict[tuple[str, int], RotaTurn]
    slots: dict[int, Slot] = field(default_factory=dict)

    @property
    def replies(self) -> dict[tuple[str, int], TurnReply]:
        """Replies by ``(committee, turn)``."""
        return {key: to_reply(row) for key, row in self.turns.items()}

    def meeting(self, meeting_id: int) -> Meeting | None:
        """A meeting by id."""
        row = self.rows.get(meeting_id)
        return to_meeting(row) if row is not None else None

    def reply(self, slot: Slot) -> TurnReply | None:
        """The unit's reply for a slot's turn (``None`` when it has said nothing)."""
        row = self.turns.get((slot.meeting.committee, slot.turn))
        if row is None or row.unit_id != slot.unit_id:
            return None
        return to_reply(row)

    def turn_row(self, slot: Slot) -> RotaTurn | None:
        """The stored turn row of a slot, if any."""
        row = self.turns.get((slot.meeting.committee, slot.turn))
        return row if row is not None and row.unit_id == slot.unit_id else None

    def slot_of_turn(self, committee: str, turn: int) -> Slot | None:
        """The meeting a turn lands on now (``None`` when no meeting is scheduled for it)."""
        for slot in self.slots.values():
            if slot.meeting.committee == committee and slot.turn == turn:
                return slot
        return None

    def upcoming(self, now: datetime, committee: str | None = None) -> list[Slot]:
        """Held meetings not yet started, soonest first."""
        found = [
            s
            for s in self.slots.values()
            if s.meeting.starts_at > now and (committee is None or s.meeting.committee == committee)
        ]
        return sorted(found, key=lambda s: (s.meeting.starts_at, s.meeting.id))

    def recompute(self) -> None:
        """Work the slots out again after rows were changed in place."""
        self.meetings = [to_meeting(row) for row in self.rows.values()]
        self.slots = assign(self.meetings, self.rotas, self.swaps)

    def credited_unit(self, slot: Slot) -> int:
        """The unit a lecture counts for: the one recorded when it was marked, else on duty."""
        return slot.meeting.outcome_unit_id or slot.unit_id


@dataclass(frozen=True)
class Catalog:
    """The parts of the calendar that only ``pufa seed`` changes: units and both rotas."""

    units: dict[int, Unit]
    rotas: dict[str, list[int]]


async def load_catalog(session: AsyncSession) -> Catalog:
    """Read the units and both rotas."""
    rotas: dict[str, list[int]] = {c: [] for c in COMMITTEES}
    entries = await session.execute(
        select(RotaEntry).order_by(col(RotaEntry.committee), col(RotaEntry.position))
    )
    for entry in entries.scalars():
        rotas.setdefault(entry.committee, []).append(entry.unit_id)
    units = {u.id: u for u in (await session.execute(select(Unit))).scalars() if u.id is not None}
    return Catalog(units, rotas)


async def load(session: AsyncSession, catalog: Catalog | None = None) -> Snapshot:
    """Read the calendar (see the module docstring); ``catalog`` saves reading the units and
    rotas again when the caller already has them."""
    rows = {
        row.id: row
        for row in (await session.execute(select(RotaMeeting))).scalars()
        if row.id is not None
    }
    if catalog is None:
        catalog = await load_catalog(session)
    swap_rows = await session.execute(
        select(RotaSwap)
        .where(col(RotaSwap.status) == "accepted")
        .order_by(col(RotaSwap.decided_at), col(RotaSwap.id))
    )
    swaps = [(s.committee, s.turn_a, s.turn_b) for s in swap_rows.scalars()]
    turns = {(t.committee, t.turn): t for t in (await session.execute(select(RotaTurn))).scalars()}
    meetings = [to_meeting(row) for row in rows.values()]
    rotas = {c: list(ids) for c, ids in catalog.rotas.items()}
    snapshot = Snapshot(rows, meetings, rotas, dict(catalog.units), swaps, turns)
    snapshot.slots = assign(meetings, rotas, swaps)
    return snapshot


async def turn_row(session: AsyncSession, snapshot: Snapshot, slot: Slot) -> RotaTurn:
    """The turn row of a slot, created when the unit first says something about it."""
    row = snapshot.turn_row(slot)
    if row is None:
        row = RotaTurn(committee=slot.meeting.committee, turn=slot.turn, unit_id=slot.unit_id)
        session.add(row)
        snapshot.turns[(slot.meeting.committee, slot.turn)] = row
    return row


def parse_meeting_ref(text: str) -> int:
    """A meeting id as printed by ``pufa rota meetings list`` (``12`` or ``#12``)."""
    value = parse_id(text.strip().lstrip("#"))
    if value is None:
        raise PufaError(f"not a meeting number: {text!r} (see pufa rota meetings list)")
    return value


async def find_meeting(session: AsyncSession, ref: str | int) -> RotaMeeting:
    """The meeting with this id; :class:`PufaError` if there is none."""
    meeting_id = ref if isinstance(ref, int) else parse_meeting_ref(ref)
    row = await session.get(RotaMeeting, meeting_id)
    if row is None:
        raise PufaError(f"no meeting #{meeting_id} (see pufa rota meetings list)")
    return row


async def find_unit(session: AsyncSession, name_or_code: str) -> Unit:
    """A unit by its name (司法局) or code (sfj)."""
    unit = (
        await session.execute(
            select(Unit).where(or_(col(Unit.name) == name_or_code, col(Unit.code) == name_or_code))
        )
    ).scalar_one_or_none()
    if unit is None:
        raise PufaError(f"no unit named {name_or_code!r} (use its name, e.g. 司法局, or code)")
    return unit


async def pending_keys(session: AsyncSession, prefixes: Sequence[str]) -> list[str]:
    """Dedupe keys of messages still waiting in the outbox that start with a prefix."""
    if not prefixes:
        return []
    condition = or_(
        *(col(OutboxMessage.dedupe_key).startswith(p, autoescape=True) for p in prefixes)
    )
    rows = await session.execute(
        select(col(OutboxMessage.dedupe_key)).where(
            condition, col(OutboxMessage.status) == "pending"
        )
    )
    return list(rows.scalars())
