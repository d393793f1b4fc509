"""The pure calendar and reminder plan: examples and properties (hypothesis)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.rota.calendar import Meeting, assign, nth_weekday, series_dates
from bot.rota.plan import COORDINATOR_KINDS, UNIT_KINDS, Offsets, TurnReply, plan, reminder_times
from tests.helpers import examples

TZ = ZoneInfo("Asia/Shanghai")
ROTAS = {"standing": list(range(101, 121)), "executive": list(range(201, 221))}
START = datetime(2027, 3, 1, tzinfo=TZ)


def meeting(mid: int, when: datetime, committee: str = "standing", **kw: object) -> Meeting:
    return Meeting(mid, committee, when.astimezone(UTC), **kw)  # type: ignore[arg-type]


def test_turns_follow_the_rota_and_wrap_from_20_to_1() -> None:
    meetings = [meeting(i, START + timedelta(days=7 * i)) for i in range(1, 23)]
    slots = assign(meetings, ROTAS)
    periods = [slots[m.id].period for m in meetings]
    assert periods == [*range(1, 21), 1, 2]
    assert slots[21].unit_id == ROTAS["standing"][0] and slots[21].cycle == 2


def test_a_cancelled_meeting_passes_its_unit_to_the_next() -> None:
    meetings = [meeting(i, START + timedelta(days=7 * i)) for i in range(1, 5)]
    before = assign(meetings, ROTAS)
    meetings[1] = Meeting(2, "standing", meetings[1].starts_at, cancelled=True)
    after = assign(meetings, ROTAS)
    assert 2 not in after
    assert after[3].unit_id == before[2].unit_id
    assert after[4].unit_id == before[3].unit_id


def test_a_swap_exchanges_the_meetings_of_two_turns_and_survives_a_cancellation() -> None:
    meetings = [meeting(i, START + timedelta(days=7 * i)) for i in range(1, 6)]
    swapped = assign(meetings, ROTAS, [("standing", 1, 3)])
    assert (swapped[2].unit_id, swapped[4].unit_id) == (ROTAS["standing"][3], ROTAS["standing"][1])
    assert swapped[2].turn == 3 and swapped[4].turn == 1
    meetings[0] = Meeting(1, "standing", meetings[0].starts_at, cancelled=True)
    shifted = assign(meetings, ROTAS, [("standing", 1, 3)])
    # everyone moves one meeting earlier; the two units keep their swapped order
    order = [shifted[i].unit_id for i in (2, 3, 4, 5)]
    assert order == [ROTAS["standing"][i] for i in (0, 3, 2, 1)]


def test_series_second_and_fourth_thursday() -> None:
    dates = series_dates(date(2027, 3, 1), 3, 3, [2, 4], time(8, 30), TZ)
    assert [d.date().isoformat() for d in dates] == [
        "2027-03-11",
        "2027-03-25",
        "2027-04-08",
        "2027-04-22",
        "2027-05-13",
        "2027-05-27",
    ]
    assert all(d.time() == time(8, 30) and d.tzinfo is TZ for d in dates)
    assert nth_weekday(2027, 2, 0, 5) is None  # no fifth Monday in February 2027
    assert nth_weekday(2027, 3, 1, -1) == date(2027, 3, 30)


def test_the_default_times_of_the_seed_plan() -> None:
    slot = assign([meeting(1, datetime(2027, 3, 11, 8, 30, tzinfo=TZ))], ROTAS)[1]
    times = {k: v.astimezone(TZ).strftime("%m-%d %H:%M") for k, v in reminder_times(
        slot, Offsets(), TZ
    ).items()}  # fmt: skip
    assert times == {
        "heads_up": "03-04 08:30",
        "confirm_escalation": "03-06 08:30",
        "topic_request": "03-08 08:30",
        "topic_overdue": "03-09 08:30",
        "topic_escalation": "03-09 08:30",
        "last_reminder": "03-10 08:30",
        "day_of": "03-11 07:30",
    }


def _run(
    meetings: list[Meeting],
    replies: dict[tuple[str, int], TurnReply],
    start: datetime,
    end: datetime,
    step: timedelta,
) -> list[tuple[str, datetime]]:
    """Plan at every step and keep what is new (as the outbox's dedupe keys do)."""
    slots = assign(meetings, ROTAS)
    seen: dict[str, datetime] = {}
    now = start
    while now <= end:
        for item in plan(slots, replies, meetings, now, Offsets(), TZ):
            seen.setdefault(item.key, now)
        now += step
    return sorted(seen.items(), key=lambda kv: kv[1])


def test_a_silent_unit_gets_every_reminder_once_and_the_coordinator_both_escalations() -> None:
    m = meeting(1, datetime(2027, 3, 11, 8, 30, tzinfo=TZ), notice_at=START.astimezone(UTC))
    keys = _run([m], {}, START, datetime(2027, 3, 12, tzinfo=TZ), timedelta(minutes=30))
    kinds = [k.split(":")[-1] for k, _ in keys if not k.startswith("rota:month")]
    assert kinds == [
        "heads_up",
        "confirm_escalation",
        "topic_request",
        "topic_overdue",
        "topic_escalation",
        "last_reminder",
        "day_of",
    ]


def test_a_unit_that_answers_is_not_chased() -> None:
    m = meeting(1, datetime(2027, 3, 11, 8, 30, tzinfo=TZ), notice_at=START.astimezone(UTC))
    reply = TurnReply(
        ROTAS["standing"][0],
        confirmed_meeting_id=1,
        confirmed_revision=1,
        confirmed_at=START.astimezone(UTC),
        topic_title="以案释法",
        topic_at=START.astimezone(UTC),
    )
    keys = _run(
        [m], {("standing", 0): reply}, START, datetime(2027, 3, 12, tzinfo=TZ), timedelta(hours=1)
    )
    kinds = [k.split(":")[-1] for k, _ in keys if not k.startswith("rota:month")]
    assert kinds == ["heads_up", "last_reminder", "day_of"]


def test_a_meeting_added_at_short_notice_gets_no_burst_and_no_instant_escalation() -> None:
    added = datetime(2027, 3, 9, 20, 0, tzinfo=TZ)
    m = meeting(1, datetime(2027, 3, 11, 8, 30, tzinfo=TZ), notice_at=added.astimezone(UTC))
    keys = _run([m], {}, added, datetime(2027, 3, 12, tzinfo=TZ), timedelta(minutes=15))
    first = {k.split(":")[-1] for k, when in keys if when == added and "month" not in k}
    assert first == {"heads_up", "topic_overdue"}  # the topic request is stale already
    escalations = [when for k, when in keys if k.endswith("_escalation")]
    assert escalations and min(escalations) >= added + Offsets().escalation_grace


moments = st.datetimes(min_value=datetime(2027, 1, 1), max_value=datetime(2027, 12, 31)).map(
    lambda d: d.replace(second=0, microsecond=0, tzinfo=TZ)
)


@st.composite
def calendars(draw: st.DrawFn) -> list[Meeting]:
    n = draw(st.integers(0, 30))
    out = []
    for mid in range(1, n + 1):
        starts = draw(moments)
        notice = starts - timedelta(hours=draw(st.integers(0, 24 * 40)))
        out.append(
            Meeting(
                mid,
                draw(st.sampled_from(["standing", "executive"])),
                starts.astimezone(UTC),
                cancelled=draw(st.booleans()),
                revision=draw(st.integers(1, 4)),
                notice_at=notice.astimezone(UTC),
                sample=draw(st.booleans()),
            )
        )
    return out


@settings(max_examples=examples(150), deadline=None)
@given(calendars(), st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), max_size=4))
def test_assignment_is_a_one_to_one_walk_through_the_rota(
    meetings: list[Meeting], pairs: list[tuple[int, int]]
) -> None:
    swaps = [("standing", a, b) for a, b in pairs]
    slots = assign(meetings, ROTAS, swaps)
    held = [m for m in meetings if not m.cancelled]
    assert set(slots) == {m.id for m in held}
    for committee in ("standing", "executive"):
        mine = [s for s in slots.values() if s.meeting.committee == committee]
        turns = [s.turn for s in mine]
        assert len(set(turns)) == len(turns)  # never two meetings on one turn
        for s in mine:
            assert 1 <= s.period <= 20 and s.unit_id == ROTAS[committee][s.period - 1]
    if not pairs:
        for committee in ("standing", "executive"):
            ordered = sorted(
                (s for s in slots.values() if s.meeting.committee == committee),
                key=lambda s: (s.meeting.starts_at, s.meeting.id),
            )
            assert [s.turn for s in ordered] == list(range(len(ordered)))
    # a swap applied twice is no swap
    twice = assign(meetings, ROTAS, [*swaps, *swaps[::-1]])
    assert {k: v.turn for k, v in twice.items()} == {
        k: v.turn for k, v in assign(meetings, ROTAS).items()
    }


@settings(max_examples=examples(150), deadline=None)
@given(calendars(), moments, st.booleans(), st.booleans())
def test_every_planned_message_is_due_before_its_meeting_and_never_about_samples(
    meetings: list[Meeting], now: datetime, confirmed: bool, topic: bool
) -> None:
    slots = assign(meetings, ROTAS)
    replies = {
        (s.meeting.committee, s.turn): TurnReply(
            s.unit_id,
            confirmed_meeting_id=s.meeting.id if confirmed else None,
            confirmed_revision=s.meeting.revision if confirmed else None,
            confirmed_at=now if confirmed else None,
            topic_title="题目" if topic else None,
            topic_at=now if topic else None,
        )
        for s in slots.values()
    }
    items = plan(slots, replies, meetings, now, Offsets(), TZ)
    keys = [i.key for i in items]
    assert len(keys) == len(set(keys))
    for item in items:
        assert item.kind in UNIT_KINDS + COORDINATOR_KINDS
        if item.slot is None:
            assert item.kind == "month_short" and (item.count or 0) < 2
            continue
        meeting = item.slot.meeting
        assert not meeting.sample and not meeting.cancelled
        assert item.due <= now < meeting.starts_at
        if item.kind == "confirm_escalation":
            assert not confirmed
        if item.kind in ("topic_request", "topic_overdue", "topic_escalation"):
            assert not topic


@settings(max_examples=examples(60), deadline=None)
@given(st.integers(0, 24 * 20), st.sampled_from([timedelta(minutes=15), timedelta(minutes=30)]))
def test_hourly_or_minutely_ticks_send_the_same_messages(shift: int, step: timedelta) -> None:
    """However often the scheduler runs, a unit told early enough gets the same messages."""
    starts = datetime(2027, 6, 10, 8, 30, tzinfo=TZ) + timedelta(hours=shift)
    m = meeting(1, starts, notice_at=(starts - timedelta(days=30)).astimezone(UTC))
    begin = starts - timedelta(days=8)
    coarse = _run([m], {}, begin, starts, timedelta(hours=1))
    fine = _run([m], {}, begin, starts, step)
    meeting_keys = lambda keys: [k for k, _ in keys if not k.startswith("rota:month")]  # noqa: E731
    assert meeting_keys(coarse) == meeting_keys(fine)
