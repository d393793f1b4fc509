"""What the rota says: every reminder, escalation and notice, rendered in the reader's language.

Texts are written for one recipient at a time (:class:`~bot.outbox.queue.Recipient`): its
locale picks the language, and its chat gets buttons signed for it
(:func:`~bot.outbox.queue.push_button`). A WeCom group robot cannot send a button press back,
so its copy has no buttons and says how to answer instead.

All of the rota's buttons use one global action letter, :data:`ACTION`, with the operation in
the argument (``c-<meeting>-<revision>`` confirm, ``t-<meeting>`` topic, ``s-<meeting>`` swap,
``a``/``x``/``p``/``j-<swap>`` accept/decline/approve/reject, ``d``/``u-<meeting>`` delivered/
missed), so they work whatever conversation the presser is in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from babel.dates import format_date

from bot.outbox.queue import Recipient, push_button
from bot.rota.calendar import Slot
from bot.rota.plan import Offsets, Planned, content_deadline
from core.i18n import N_, Translator, translator
from core.messages import Button, Reply
from storage.models import Unit

__all__ = [
    "ACTION",
    "COMMITTEE_NAMES",
    "ROBOT_CHANNEL",
    "Texts",
    "committee_name",
    "unit_name",
]

ACTION = "k"
"""The rota's global button action (the operation is in the argument)."""
ROBOT_CHANNEL = "wecom_robot"

COMMITTEE_NAMES = {
    "standing": N_("District Party Standing Committee"),
    "executive": N_("District Government Executive Meeting"),
}
OFFICES = {
    "standing": N_("the District Party Committee Office and the law-based governance office"),
    "executive": N_("the District Government Office and the law-based governance office"),
}
HEADER = N_("[普法学法微课堂 law lecture]")
STATUS_NAMES = {
    "delivered": N_("delivered"),
    "missed": N_("missed"),
}


def committee_name(t: Translator, committee: str) -> str:
    """区委常委会 / 政府常务会 in the reader's language."""
    return t._(COMMITTEE_NAMES.get(committee, committee))


def unit_name(t: Translator, unit: Unit | None) -> str:
    """The unit's name (its English name in English when there is one)."""
    if unit is None:
        return "?"
    if t.locale != "zh_CN" and unit.name_en:
        return unit.name_en
    return unit.name


def month_name(t: Translator, month: str) -> str:
    """``2027-04`` as 2027年4月 / April 2027."""
    year, number = (int(x) for x in month.split("-"))
    if t.locale == "zh_CN":
        return f"{year}年{number}月"
    return format_date(date(year, number, 1), "MMMM y", locale=t.babel_locale)


@dataclass
class Texts:
    """Renders the rota's messages (units by id, the district's zone, the offsets, the key that
    signs pushed buttons)."""

    units: Mapping[int, Unit]
    tz: tzinfo
    offsets: Offsets
    secret: bytes

    # ------------------------------------------------------------------ pieces

    def when(self, t: Translator, moment: datetime) -> str:
        """A local date and time: 2027年3月11日 星期四 08:30."""
        return t.datetime(moment.astimezone(self.tz))

    def unit(self, t: Translator, unit_id: int | None) -> str:
        """A unit's name."""
        return unit_name(t, self.units.get(unit_id) if unit_id is not None else None)

    def lecture(self, t: Translator, slot: Slot) -> str:
        """``区委常委会 第3期 2027年3月11日 星期四 08:30`` — one line about a lecture."""
        return t._(
            "{committee} no. {period}, {when}",
            committee=committee_name(t, slot.meeting.committee),
            period=slot.period,
            when=self.when(t, slot.meeting.starts_at),
        )

    def buttons(
        self, to: Recipient, t: Translator, *specs: tuple[str, str]
    ) -> tuple[tuple[Button, ...], ...]:
        """Rows of pushed buttons ``(label msgid, argument)``; none for a group robot."""
        if to.channel == ROBOT_CHANNEL:
            return ()
        return tuple(
            (push_button(self.secret, to, t._(label), ACTION, arg),) for label, arg in specs
        )

    def _reply(self, to: Recipient, t: Translator, body: str, *specs: tuple[str, str]) -> Reply:
        text = f"{t._(HEADER)}\n{body}"
        if specs and to.channel == ROBOT_CHANNEL:
            text += "\n" + t._("To answer, send /duty to the 普法 assistant in your chat.")
        return Reply(text, self.buttons(to, t, *specs))

    def _topic_line(self, t: Translator, title: str | None) -> str:
        if title:
            return t._("Topic: {title}", title=title)
        return t._("No topic has been sent yet.")

    # ------------------------------------------------------------------ the plan

    def planned(self, item: Planned, to: Recipient) -> Reply:
        """The message for one planned item and one recipient."""
        t = translator(to.locale)
        if item.kind == "month_short":
            body = t._(
                "{committee}: only {count} lecture(s) scheduled in {month}; at least two a month "
                "are required. Please schedule more meetings.",
                committee=committee_name(t, item.committee),
                count=item.count,
                month=month_name(t, item.month or ""),
            )
            return self._reply(to, t, body)
        slot = item.slot
        assert slot is not None
        meeting = slot.meeting
        params = {
            "unit": self.unit(t, slot.unit_id),
            "committee": committee_name(t, meeting.committee),
            "period": slot.period,
            "when": self.when(t, meeting.starts_at),
            "deadline": self.when(t, content_deadline(slot, self.offsets)),
            "office": t._(OFFICES.get(meeting.committee, "")),
        }
        confirm = (N_("Confirm the lecture"), f"c-{meeting.id}-{meeting.revision}")
        topic = (N_("Send the topic"), f"t-{meeting.id}")
        swap = (N_("Ask to swap"), f"s-{meeting.id}")
        if item.kind == "heads_up":
            body = t._(
                "{unit}: in the {committee} rota your unit gives lecture no. {period}, before "
                "the meeting on {when} (3–5 minutes: a case or a law explained). Please agree "
                "the content with {office} by {deadline}, two days before the meeting.",
                **params,
            )
            if item.confirmed:
                return self._reply(to, t, body + "\n" + t._("Your unit has confirmed."), topic)
            body += "\n" + t._("Please confirm with the button below.")
            return self._reply(to, t, body, confirm, topic, swap)
        if item.kind == "topic_request":
            body = t._(
                "{unit}: please send the topic and a short outline of your lecture before the "
                "{committee} meeting on {when} by {deadline}.",
                **params,
            )
            return self._reply(to, t, body, topic)
        if item.kind == "topic_overdue":
            body = t._(
                "{unit}: the deadline for agreeing the content ({deadline}) has come and there "
                "is no topic yet for your lecture before the {committee} meeting on {when}. "
                "Please send it as soon as possible.",
                **params,
            )
            return self._reply(to, t, body, topic)
        if item.kind == "last_reminder":
            body = t._(
                "{unit}: reminder — your unit gives lecture no. {period} before the "
                "{committee} meeting on {when}.",
                **params,
            )
            body += "\n" + self._topic_line(t, item.topic_title)
            if not item.confirmed:
                return self._reply(to, t, body, confirm, topic)
            return self._reply(to, t, body)
        if item.kind == "day_of":
            body = t._(
                "{unit}: the {committee} meets today, {when}. Please have your speaker there "
                "ten minutes before the meeting (会前十分钟).",
                **params,
            )
            return self._reply(to, t, body + "\n" + self._topic_line(t, item.topic_title))
        if item.kind == "confirm_escalation":
            body = t._(
                "{unit} has not confirmed lecture no. {period} before the {committee} meeting "
                "on {when}. Please contact the unit.",
                **params,
            )
            return self._reply(to, t, body)
        if item.kind == "topic_escalation":
            body = t._(
                "{unit} sent no topic by the content deadline ({deadline}) for its lecture "
                "before the {committee} meeting on {when}.",
                **params,
            )
            return self._reply(to, t, body)
        raise ValueError(f"unknown kind {item.kind!r}")

    def unreachable(self, slot: Slot, to: Recipient) -> Reply:
        """To the coordinator: the unit on duty has no chat account to remind."""
        t = translator(to.locale)
        unit = self.units.get(slot.unit_id)
        body = t._(
            "{unit} has no chat account bound, so it cannot receive the reminders for its "
            "lecture before the {committee} meeting on {when}. Create a bind code with "
            "pufa invite unit {code}.",
            unit=unit_name(t, unit),
            committee=committee_name(t, slot.meeting.committee),
            when=self.when(t, slot.meeting.starts_at),
            code=unit.code if unit else "",
        )
        return self._reply(to, t, body)

    # ------------------------------------------------------------------ changes

    def moved(self, slot: Slot, old: datetime, to: Recipient) -> Reply:
        """To the unit on duty: the meeting has a new time."""
        t = translator(to.locale)
        meeting = slot.meeting
        body = t._(
            "{unit}: the {committee} meeting has moved from {old} to {new}. Your lecture "
            "(no. {period}) moves with it; please confirm the new time.",
            unit=self.unit(t, slot.unit_id),
            committee=committee_name(t, meeting.committee),
            old=self.when(t, old),
            new=self.when(t, meeting.starts_at),
            period=slot.period,
        )
        confirm = (N_("Confirm the lecture"), f"c-{meeting.id}-{meeting.revision}")
        return self._reply(to, t, body, confirm)

    def turn_moved(
        self,
        unit_id: int,
        committee: str,
        period: int,
        old: datetime,
        new: Slot | None,
        cancelled: bool,
        to: Recipient,
    ) -> Reply:
        """To a unit that had been told of its lecture: it now falls on another meeting."""
        t = translator(to.locale)
        params = {
            "unit": self.unit(t, unit_id),
            "committee": committee_name(t, committee),
            "period": period,
            "old": self.when(t, old),
        }
        confirm: tuple[tuple[str, str], ...] = ()
        if new is not None:
            params["new"] = self.when(t, new.meeting.starts_at)
            confirm = ((N_("Confirm the lecture"), f"c-{new.meeting.id}-{new.meeting.revision}"),)
        if cancelled and new is not None:
            body = t._(
                "{unit}: the {committee} meeting on {old} is cancelled. Your lecture no. "
                "{period} passes to the next meeting, {new}.",
                **params,
            )
        elif cancelled:
            body = t._(
                "{unit}: the {committee} meeting on {old} is cancelled. Your lecture no. "
                "{period} has no meeting yet; you will be told when it is scheduled.",
                **params,
            )
        elif new is not None:
            body = t._(
                "{unit}: your lecture no. {period} is now before the {committee} meeting on "
                "{new} (it was {old}).",
                **params,
            )
        else:
            body = t._(
                "{unit}: your lecture no. {period} ({committee}, planned for {old}) has no "
                "meeting yet; you will be told when it is scheduled.",
                **params,
            )
        return self._reply(to, t, body, *confirm)

    def swap_request(
        self,
        swap_id: int,
        a: Slot,
        b: Slot,
        to: Recipient,
        coordinator: bool,
        reason: str | None = None,
    ) -> Reply:
        """To the other unit (accept/decline) or the coordinator (approve/reject), with the
        asking unit's reason when it gave one."""
        t = translator(to.locale)
        because = "\n" + t._("Reason given: {reason}", reason=reason) if reason else ""
        params = {
            "unit_a": self.unit(t, a.unit_id),
            "unit_b": self.unit(t, b.unit_id),
            "committee": committee_name(t, a.meeting.committee),
            "when_a": self.when(t, a.meeting.starts_at),
            "when_b": self.when(t, b.meeting.starts_at),
        }
        if coordinator:
            body = t._(
                "{unit_a} asks to swap lectures of the {committee} rota with {unit_b}: "
                "{unit_a} would lecture on {when_b} and {unit_b} on {when_a}. It takes effect "
                "when {unit_b} accepts or you approve.",
                **params,
            )
            body += because
            return self._reply(
                to,
                t,
                body,
                (N_("Approve the swap"), f"p-{swap_id}"),
                (N_("Reject"), f"j-{swap_id}"),
            )
        body = t._(
            "{unit_a} asks to swap lectures of the {committee} rota with your unit: {unit_a} "
            "would lecture on {when_b} and your unit ({unit_b}) on {when_a}.",
            **params,
        )
        body += because
        return self._reply(
            to, t, body, (N_("Accept the swap"), f"a-{swap_id}"), (N_("Decline"), f"x-{swap_id}")
        )

    def swap_done(self, a: Slot, b: Slot, to: Recipient) -> Reply:
        """To both units and the coordinator: the swap is in force (``a``, ``b`` after it)."""
        t = translator(to.locale)
        body = t._(
            "Swap agreed: in the {committee} rota {unit_a} now lectures on {when_a} and "
            "{unit_b} on {when_b}.",
            committee=committee_name(t, a.meeting.committee),
            unit_a=self.unit(t, a.unit_id),
            unit_b=self.unit(t, b.unit_id),
            when_a=self.when(t, a.meeting.starts_at),
            when_b=self.when(t, b.meeting.starts_at),
        )
        return self._reply(to, t, body)

    def swap_declined(self, a: Slot, unit_b: int, by_coordinator: bool, to: Recipient) -> Reply:
        """To the asking unit: the swap was not agreed."""
        t = translator(to.locale)
        params = {
            "unit_a": self.unit(t, a.unit_id),
            "unit_b": self.unit(t, unit_b),
            "when_a": self.when(t, a.meeting.starts_at),
        }
        if by_coordinator:
            body = t._(
                "{unit_a}: the coordinator did not approve the swap with {unit_b}; your "
                "lecture stays on {when_a}.",
                **params,
            )
        else:
            body = t._(
                "{unit_a}: {unit_b} declined the swap; your lecture stays on {when_a}.", **params
            )
        return self._reply(to, t, body)

    def topic_received(
        self, slot: Slot, title: str, outline: str, file_name: str | None, to: Recipient
    ) -> Reply:
        """To the coordinator: a unit sent its topic."""
        t = translator(to.locale)
        body = t._(
            "{unit} sent the topic of its lecture before the {committee} meeting on {when}: "
            "{title}",
            unit=self.unit(t, slot.unit_id),
            committee=committee_name(t, slot.meeting.committee),
            when=self.when(t, slot.meeting.starts_at),
            title=title,
        )
        if outline:
            body += "\n" + t._("Outline: {outline}", outline=outline)
        if file_name:
            body += "\n" + t._("File: {name}", name=file_name)
        return self._reply(to, t, body)
