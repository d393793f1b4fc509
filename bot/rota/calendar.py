"""The lecture calendar as plain data: which unit lectures at which meeting (pure functions).

Each committee (``standing`` 区委常委会, ``executive`` 政府常务会) has a rota of 20 units. Its
meetings, in order of time, take the rota's turns one after the other: the meeting in slot
``s`` (0-based, cancelled meetings left out) takes turn ``s``, and turn ``t`` is period
``t % 20 + 1`` — after period 20 comes period 1 again. A cancelled meeting takes no turn, so its
unit passes to the next meeting and everybody after moves one meeting later.

An accepted swap exchanges the meetings of two turns (:func:`assign`); the turns keep their
units, so a unit's topic follows its turn to the other meeting.

Nothing here reads the database or the clock: callers pass the meetings, the rotas, the swaps
and ``now``.
"""

from __future__ import annotations

import calendar as _calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, tzinfo

__all__ = [
    "COMMITTEES",
    "MIN_PER_MONTH",
    "ROTA_LENGTH",
    "WEEKDAYS",
    "Meeting",
    "Slot",
    "add_months",
    "assign",
    "local_midnight",
    "month_counts",
    "month_key",
    "month_start",
    "nth_weekday",
    "series_dates",
]

COMMITTEES = ("standing", "executive")
"""``standing``: 区委常委会; ``executive``: 政府常务会."""
ROTA_LENGTH = 20
MIN_PER_MONTH = 2
"""每月至少安排2次 (at least two lectures a month)."""
WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


@dataclass(frozen=True, slots=True)
class Meeting:
    """A meeting as the calendar sees it (times timezone-aware)."""

    id: int
    committee: str
    starts_at: datetime
    cancelled: bool = False
    revision: int = 1
    notice_at: datetime | None = None
    outcome: str | None = None
    outcome_unit_id: int | None = None
    sample: bool = False


@dataclass(frozen=True, slots=True)
class Slot:
    """A held meeting with the turn it takes and the unit on duty."""

    meeting: Meeting
    turn: int
    unit_id: int

    @property
    def period(self) -> int:
        """The period (期次) of the rota, 1..20."""
        return self.turn % ROTA_LENGTH + 1

    @property
    def cycle(self) -> int:
        """How many times the rota has come round, 1 for the first pass."""
        return self.turn // ROTA_LENGTH + 1


def _order(meeting: Meeting) -> tuple[datetime, int]:
    return meeting.starts_at, meeting.id


def assign(
    meetings: Iterable[Meeting],
    rotas: Mapping[str, Sequence[int]],
    swaps: Iterable[tuple[str, int, int]] = (),
) -> dict[int, Slot]:
    """The slot of every held (not cancelled) meeting, by meeting id.

    Args:
        meetings: Meetings of any committees, cancelled ones included (they get no slot).
        rotas: Per committee, the unit ids of periods 1..20 in order.
        swaps: Accepted swaps ``(committee, turn_a, turn_b)`` in the order they were
            accepted: the meetings of the two turns are exchanged.
    """
    by_committee: dict[str, list[Meeting]] = {}
    for meeting in meetings:
        if not meeting.cancelled:
            by_committee.setdefault(meeting.committee, []).append(meeting)
    swap_list = list(swaps)
    slots: dict[int, Slot] = {}
    for committee, held in by_committee.items():
        rota = rotas.get(committee)
        if not rota:
            continue
        held.sort(key=_order)
        pairs = [(a, b) for c, a, b in swap_list if c == committee]
        size = max([len(held), *(max(a, b) + 1 for a, b in pairs)])
        turn_at = list(range(size))  # slot -> turn
        slot_of = list(range(size))  # turn -> slot
        for a, b in pairs:
            sa, sb = slot_of[a], slot_of[b]
            turn_at[sa], turn_at[sb] = b, a
            slot_of[a], slot_of[b] = sb, sa
        for index, meeting in enumerate(held):
            turn = turn_at[index]
            slots[meeting.id] = Slot(meeting, turn, rota[turn % len(rota)])
    return slots


def nth_weekday(year: int, month: int, weekday: int, n: int) -> date | None:
    """The ``n``-th ``weekday`` (0 = Monday) of a month; ``n = -1`` for the last one.

    ``None`` when the month has no such day (a fifth Thursday).
    """
    days = [
        d
        for d in _calendar.Calendar().itermonthdates(year, month)
        if d.month == month and d.weekday() == weekday
    ]
    if n == -1:
        return days[-1]
    if 1 <= n <= len(days):
        return days[n - 1]
    return None


def series_dates(
    first_day: date,
    months: int,
    weekday: int,
    weeks: Sequence[int],
    at: time,
    tz: tzinfo,
) -> list[datetime]:
    """Meeting times of a series rule, e.g. every 2nd and 4th Thursday 08:30 for 3 months.

    The months counted start with ``first_day``'s month; days before ``first_day`` are left
    out. Times are local (``tz``).
    """
    out: list[datetime] = []
    year, month = first_day.year, first_day.month
    for _ in range(months):
        found = {nth_weekday(year, month, weekday, n) for n in weeks}
        for day in sorted(d for d in found if d is not None and d >= first_day):
            out.append(datetime.combine(day, at, tzinfo=tz))
        month += 1
        if month > 12:
            year, month = year + 1, 1
    return out


def month_key(moment: datetime, tz: tzinfo) -> str:
    """``YYYY-MM`` of a moment in the local zone."""
    return moment.astimezone(tz).strftime("%Y-%m")


def month_counts(meetings: Iterable[Meeting], tz: tzinfo) -> dict[tuple[str, str], int]:
    """Held meetings per ``(committee, YYYY-MM)`` (local months)."""
    counts: dict[tuple[str, str], int] = {}
    for meeting in meetings:
        if meeting.cancelled:
            continue
        key = (meeting.committee, month_key(meeting.starts_at, tz))
        counts[key] = counts.get(key, 0) + 1
    return counts


def add_months(year: int, month: int, n: int) -> tuple[int, int]:
    """``(year, month)`` moved by ``n`` months."""
    index = year * 12 + (month - 1) + n
    return index // 12, index % 12 + 1


def month_start(year: int, month: int, tz: tzinfo) -> datetime:
    """Local midnight of the first day of a month."""
    return datetime.combine(date(year, month, 1), time(0, 0), tzinfo=tz)


def local_midnight(moment: datetime, tz: tzinfo) -> datetime:
    """Local midnight of the day of ``moment``."""
    return datetime.combine(moment.astimezone(tz).date(), time(0, 0), tzinfo=tz)
