"""The reminder plan: what is due to whom, as a pure function of the calendar, the replies so
far and the clock.

For every coming lecture (a held, non-sample meeting with its unit, see
:mod:`bot.rota.calendar`) the unit on duty is told, by default:

=====================  ==========================  ======================================
kind                   when (before the meeting)   only if
=====================  ==========================  ======================================
``heads_up``           7 days (with Confirm)       —
``topic_request``      3 days                      no topic yet
``topic_overdue``      2 days: the content         no topic yet
                       deadline (两天前沟通内容)
``last_reminder``      1 day (with the topic)      —
``day_of``             07:30 on the day: be there  —
                       ten minutes early (会前十分钟)
=====================  ==========================  ======================================

and the coordinator is told ``confirm_escalation`` 5 days before when the unit has not
confirmed, ``topic_escalation`` at the content deadline when there is no topic, and
``month_short`` when a month (this one, or the next once it is two weeks away) has fewer than
two lectures scheduled in a committee.

A message becomes due at its time, or when the meeting's current time and unit became known
(``notice_at``) if that is later; an escalation waits ``escalation_grace`` after that, so a
unit told late is not reported at once. A unit message is stale once the next unit message's
time has come (the heads-up, the first notice, stays valid until the meeting), so a tick after
an outage, or a meeting added at short notice, sends what still matters and not a burst of
outdated reminders. Nothing is sent by the planner: the caller queues the plan through the
outbox with one dedupe key per (meeting, revision, unit, kind, recipient), so planning the same
moment twice queues nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from itertools import pairwise

from bot.rota.calendar import (
    COMMITTEES,
    MIN_PER_MONTH,
    Meeting,
    Slot,
    add_months,
    month_counts,
    month_start,
)

__all__ = [
    "COORDINATOR_KINDS",
    "UNIT_KINDS",
    "Offsets",
    "Planned",
    "TurnReply",
    "content_deadline",
    "escalation_times",
    "plan",
    "reminder_times",
    "short_months",
]

UNIT_KINDS = ("heads_up", "topic_request", "topic_overdue", "last_reminder", "day_of")
"""Messages to the unit on duty, in the order they fall due."""
COORDINATOR_KINDS = ("confirm_escalation", "topic_escalation", "month_short")
"""Messages to the coordinator."""


@dataclass(frozen=True, slots=True)
class Offsets:
    """When each message falls due (defaults of the seed plan; configurable)."""

    heads_up: timedelta = timedelta(days=7)
    confirm_escalation: timedelta = timedelta(days=5)
    topic_request: timedelta = timedelta(days=3)
    topic_deadline: timedelta = timedelta(days=2)
    last_reminder: timedelta = timedelta(days=1)
    morning: time = time(7, 30)
    escalation_grace: timedelta = timedelta(days=1)
    month_check: timedelta = timedelta(days=14)

    def problems(self) -> list[str]:
        """What is inconsistent (empty when the offsets can be used)."""
        out: list[str] = []
        order = [
            ("heads_up", self.heads_up),
            ("topic_request", self.topic_request),
            ("topic_deadline", self.topic_deadline),
            ("last_reminder", self.last_reminder),
        ]
        for (name_a, a), (name_b, b) in pairwise(order):
            if a < b:
                out.append(f"{name_a} must be at least {name_b}")
        if self.last_reminder <= timedelta(0):
            out.append("last_reminder must be more than zero")
        if not self.heads_up >= self.confirm_escalation > timedelta(0):
            out.append("confirm_escalation must be between zero and heads_up")
        if self.escalation_grace < timedelta(0) or self.month_check < timedelta(0):
            out.append("escalation_grace and month_check cannot be negative")
        return out


@dataclass(frozen=True, slots=True)
class TurnReply:
    """What a unit has said about one of its turns."""

    unit_id: int
    confirmed_meeting_id: int | None = None
    confirmed_revision: int | None = None
    confirmed_at: datetime | None = None
    topic_title: str | None = None
    topic_at: datetime | None = None

    def confirmed_for(self, meeting: Meeting) -> bool:
        """Whether the confirmation is for this meeting at its current time."""
        return (
            self.confirmed_at is not None
            and self.confirmed_meeting_id == meeting.id
            and self.confirmed_revision == meeting.revision
        )

    @property
    def has_topic(self) -> bool:
        """Whether a topic was sent."""
        return bool(self.topic_title)


@dataclass(frozen=True, slots=True)
class Planned:
    """One message the plan says is due now.

    ``slot`` is set for messages about a lecture; ``month`` and ``count`` for ``month_short``.
    """

    kind: str
    audience: str
    due: datetime
    committee: str
    slot: Slot | None = None
    confirmed: bool = False
    topic_title: str | None = None
    month: str | None = None
    count: int | None = None

    @property
    def key(self) -> str:
        """The dedupe key without the recipient (who gets it is appended by the caller)."""
        if self.slot is not None:
            m = self.slot.meeting
            return f"rota:m{m.id}:r{m.revision}:u{self.slot.unit_id}:{self.kind}"
        return f"rota:month:{self.committee}:{self.month}:{self.count}:{self.kind}"


def content_deadline(slot: Slot, offsets: Offsets) -> datetime:
    """When the content must be agreed: the meeting's time, two days before by default."""
    return slot.meeting.starts_at - offsets.topic_deadline


def _morning(slot: Slot, offsets: Offsets, tz: tzinfo) -> datetime:
    start = slot.meeting.starts_at
    local_day = start.astimezone(tz).date()
    morning = datetime.combine(local_day, offsets.morning, tzinfo=tz)
    return min(morning, start - timedelta(hours=1))


def reminder_times(slot: Slot, offsets: Offsets, tz: tzinfo) -> dict[str, datetime]:
    """The nominal time of every message about ``slot``, by kind."""
    start = slot.meeting.starts_at
    return {
        "heads_up": start - offsets.heads_up,
        "confirm_escalation": start - offsets.confirm_escalation,
        "topic_request": start - offsets.topic_request,
        "topic_overdue": start - offsets.topic_deadline,
        "topic_escalation": start - offsets.topic_deadline,
        "last_reminder": start - offsets.last_reminder,
        "day_of": _morning(slot, offsets, tz),
    }


def escalation_times(slot: Slot, offsets: Offsets, tz: tzinfo) -> tuple[datetime, datetime]:
    """When the coordinator is told of a missing confirmation, and of a missing topic: the
    usual times, or ``escalation_grace`` after the unit learnt of the lecture if that is later.
    A reply before these counts as on time in the report."""
    times = reminder_times(slot, offsets, tz)
    notice = slot.meeting.notice_at
    if notice is None:
        return times["confirm_escalation"], times["topic_escalation"]
    late = notice + offsets.escalation_grace
    return max(times["confirm_escalation"], late), max(times["topic_escalation"], late)


def _slot_messages(
    slot: Slot, reply: TurnReply | None, now: datetime, offsets: Offsets, tz: tzinfo
) -> list[Planned]:
    meeting = slot.meeting
    start = meeting.starts_at
    if now >= start:
        return []
    times = reminder_times(slot, offsets, tz)
    notice = meeting.notice_at or datetime.min.replace(tzinfo=start.tzinfo)
    if reply is not None and reply.unit_id != slot.unit_id:
        reply = None
    confirmed = reply is not None and reply.confirmed_for(meeting)
    has_topic = reply is not None and reply.has_topic
    title = reply.topic_title if reply is not None else None
    wanted = {
        "heads_up": True,
        "topic_request": not has_topic,
        "topic_overdue": not has_topic,
        "last_reminder": True,
        "day_of": True,
    }
    out: list[Planned] = []
    for index, kind in enumerate(UNIT_KINDS):
        due = max(times[kind], notice)
        if kind == "heads_up" or index + 1 == len(UNIT_KINDS):
            end = start
        else:
            end = min(times[UNIT_KINDS[index + 1]], start)
        if wanted[kind] and due <= now < end:
            out.append(Planned(kind, "unit", due, meeting.committee, slot, confirmed, title))
    confirm_by, topic_by = escalation_times(slot, offsets, tz)
    escalations = {
        "confirm_escalation": (not confirmed, confirm_by),
        "topic_escalation": (not has_topic, topic_by),
    }
    for kind, (needed, due) in escalations.items():
        if needed and due <= now < start:
            out.append(Planned(kind, "coordinator", due, meeting.committee, slot, confirmed, title))
    return out


def short_months(
    meetings: Iterable[Meeting], now: datetime, offsets: Offsets, tz: tzinfo
) -> list[tuple[str, str, int]]:
    """``(committee, YYYY-MM, count)`` for this month, and the next once it is
    ``offsets.month_check`` away, where fewer than two lectures are scheduled (sample meetings
    do not count)."""
    counts = month_counts((m for m in meetings if not m.sample), tz)
    local = now.astimezone(tz)
    months = [(local.year, local.month)]
    following = add_months(local.year, local.month, 1)
    if now >= month_start(*following, tz) - offsets.month_check:
        months.append(following)
    out: list[tuple[str, str, int]] = []
    for year, month in months:
        key = f"{year:04d}-{month:02d}"
        for committee in COMMITTEES:
            count = counts.get((committee, key), 0)
            if count < MIN_PER_MONTH:
                out.append((committee, key, count))
    return out


def _month_messages(
    meetings: Iterable[Meeting], now: datetime, offsets: Offsets, tz: tzinfo
) -> list[Planned]:
    out: list[Planned] = []
    for committee, key, count in short_months(meetings, now, offsets, tz):
        year, month = (int(x) for x in key.split("-"))
        due = max(month_start(year, month, tz) - offsets.month_check, now.replace(microsecond=0))
        out.append(Planned("month_short", "coordinator", due, committee, month=key, count=count))
    return out


def plan(
    slots: Mapping[int, Slot],
    replies: Mapping[tuple[str, int], TurnReply],
    meetings: Iterable[Meeting],
    now: datetime,
    offsets: Offsets,
    tz: tzinfo,
) -> list[Planned]:
    """Every message due at ``now``, oldest first.

    Args:
        slots: The held meetings with their turns and units (:func:`bot.rota.calendar.assign`).
        replies: What units said, by ``(committee, turn)``.
        meetings: Every meeting (for the month check).
        now: The moment planned for (timezone-aware).
        offsets: When each message falls due.
        tz: The district's time zone (mornings and months are local).
    """
    out: list[Planned] = []
    for slot in slots.values():
        if slot.meeting.sample:
            continue
        reply = replies.get((slot.meeting.committee, slot.turn))
        out.extend(_slot_messages(slot, reply, now, offsets, tz))
    out.extend(_month_messages(meetings, now, offsets, tz))
    order = {kind: i for i, kind in enumerate(UNIT_KINDS + COORDINATOR_KINDS)}
    out.sort(
        key=lambda p: (
            p.due,
            p.slot.meeting.starts_at if p.slot else p.due,
            order[p.kind],
            p.committee,
        )
    )
    return out
