"""``/duty`` in chat: a unit's turns, confirming, the topic, swaps; the coordinator's overview.

- A unit's bound account (private chat, or the unit's group) sees its coming lectures with
  their status and buttons to confirm, send the topic (title on the first line, a short outline
  below, optionally a file) or ask to swap with another unit's lecture.
- The coordinator sees the coming meetings with each unit's status, the lectures waiting to be
  marked delivered or missed, and swap requests to approve.

Every rota button — in these answers and in the reminders the rota pushes — carries the one
global action :data:`~bot.rota.texts.ACTION`; the handler checks who pressed it (a bound
account of the unit concerned, or the coordinator) before it changes anything. Typing the
topic is the ``duty`` flow; its state is ``{"m": meeting id, "f": attached file or absent}``.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import col

from bot.rota.calendar import Slot
from bot.rota.config import load_offsets
from bot.rota.plan import content_deadline, short_months
from bot.rota.service import (
    Env,
    File,
    RotaProblem,
    confirm,
    decide_swap,
    mark,
    request_swap,
    set_topic,
    swap_candidates,
)
from bot.rota.store import Snapshot, load
from bot.rota.texts import ACTION, STATUS_NAMES, Texts, committee_name, month_name
from core.dialog import BAD_BUTTON, DialogRegistry, Step
from core.i18n import N_
from core.messages import Button
from storage.models_outbox import PushTarget
from storage.models_rota import RotaSwap

__all__ = ["DutyFlow", "install"]

FLOW = "duty"
SHOWN_TURNS = 3
SHOWN_MEETINGS = 8
NOT_BOUND = N_(
    "/duty is for the units of the 普法学法微课堂 rota and the coordinator. Ask the "
    "coordinator for an invite code, then send /bind CODE."
)
ONLY_UNIT = N_("Only an account bound to the unit on duty can do this.")
ONLY_COORDINATOR = N_("Only the rota coordinator can do this.")


def _env(step: Step) -> Env:
    return Env.of(step.session, step.runtime.settings, load_offsets(), step.now, step.owner)


def _in_group(step: Step) -> bool:
    return step.inbound.chat_id != step.inbound.external_id


def _problem(step: Step, problem: RotaProblem) -> None:
    step.say(problem.render(step.t, step.runtime.settings.tz))


class DutyFlow:
    """Waits for the topic of a lecture (title, outline, optional file)."""

    name = FLOW

    def title(self, step: Step) -> str:
        """What the conversation is about."""
        return step._("sending the topic of your lecture")

    async def on_text(self, step: Step, text: str) -> None:
        """Take the first line as the title and the rest as the outline; keep a file."""
        attachment = step.inbound.attachment
        if attachment is not None:
            step.update(
                f={"id": attachment.file_id, "n": attachment.file_name, "t": attachment.mime_type}
            )
        lines = text.strip().splitlines()
        title = lines[0].strip() if lines else ""
        outline = "\n".join(lines[1:]).strip()
        if not title:
            if attachment is not None:
                step.say(
                    step._(
                        "Got the file {name}. Now send the title on the first line and a "
                        "short outline below it.",
                        name=attachment.file_name or "",
                    )
                )
                return
            await self.prompt(step)
            return
        kept = step.state.get("f")
        file = File(kept["id"], kept.get("n", ""), kept.get("t", "")) if kept else None
        person = step.person
        if person.role != "unit" or person.unit_id is None:
            step.end()
            step.say(step._(ONLY_UNIT))
            return
        try:
            slot = await set_topic(
                _env(step), int(step.state.get("m", 0)), person.unit_id, title, outline, file
            )
        except RotaProblem as problem:
            if problem.msgid.startswith("Please keep"):
                _problem(step, problem)
                return
            step.end()
            _problem(step, problem)
            return
        step.end()
        snapshot = await load(step.session)
        texts = _texts(step, snapshot)
        reply = step._(
            "Thank you. The topic of your lecture ({lecture}) is saved: {title}",
            lecture=texts.lecture(step.t, slot),
            title=" ".join(title.split()),
        )
        if file is not None:
            reply += "\n" + step._("File: {name}", name=file.name or file.file_id)
        reply += "\n" + step._("The coordinator has been told.")
        step.say(reply)

    async def on_button(self, step: Step, action: str, arg: str) -> None:
        """This flow has no buttons of its own."""
        await self.prompt(step)

    async def prompt(self, step: Step) -> None:
        """Ask for the topic."""
        step.say(
            step._(
                "Please send the title of your lecture on the first line and a short outline "
                "below it. You may also attach the file of the talk. Send /cancel to stop."
            )
        )

    async def restart(self, step: Step) -> None:
        """Ask for the topic again (a file sent earlier is forgotten)."""
        step.update(f=None)
        await self.prompt(step)


def _texts(step: Step, snapshot: Snapshot) -> Texts:
    settings = step.runtime.settings
    return Texts(snapshot.units, settings.tz, load_offsets(), step.runtime.secret)


def _status(step: Step, snapshot: Snapshot, texts: Texts, slot: Slot) -> str:
    reply = snapshot.reply(slot)
    parts = []
    if reply is not None and reply.confirmed_for(slot.meeting):
        parts.append(step._("confirmed"))
    else:
        parts.append(step._("not confirmed yet"))
    if reply is not None and reply.topic_title:
        parts.append(step._("topic: {title}", title=reply.topic_title))
    else:
        parts.append(
            step._(
                "no topic yet (due {deadline})",
                deadline=texts.when(step.t, content_deadline(slot, texts.offsets)),
            )
        )
    if slot.meeting.sample:
        parts.append(step._("sample"))
    return step._("; ").join(parts)


async def _unit_overview(step: Step, unit_id: int, *, readonly: bool = False) -> None:
    snapshot = await load(step.session)
    texts = _texts(step, snapshot)
    unit = snapshot.units.get(unit_id)
    lines = [step._("普法学法微课堂 — {unit}", unit=texts.unit(step.t, unit_id))]
    mine = [s for s in snapshot.upcoming(step.now) if s.unit_id == unit_id]
    rows: list[list[Button]] = []
    if not mine:
        lines.append(step._("Your unit has no lecture scheduled yet."))
    else:
        lines.append(step._("Your unit's coming lectures:"))
        for number, slot in enumerate(mine[:SHOWN_TURNS], start=1):
            lines.append(f"{number}. {texts.lecture(step.t, slot)}")
            lines.append("   " + _status(step, snapshot, texts, slot))
            reply = snapshot.reply(slot)
            m = slot.meeting
            row = []
            if reply is None or not reply.confirmed_for(m):
                label = step._("Confirm")
                row.append(step.button(f"{number}. {label}", ACTION, f"c-{m.id}-{m.revision}"))
            label = step._("Send the topic")
            row.append(step.button(f"{number}. {label}", ACTION, f"t-{m.id}"))
            label = step._("Swap")
            row.append(step.button(f"{number}. {label}", ACTION, f"s-{m.id}"))
            rows.append(row)
    waiting = await _pending_swaps(step, unit_b=unit_id)
    for swap in waiting:
        a = snapshot.slot_of_turn(swap.committee, swap.turn_a)
        b = snapshot.slot_of_turn(swap.committee, swap.turn_b)
        if a is None or b is None:
            continue
        lines.append(
            step._(
                "Swap request #{id}: {unit_a} asks to lecture on {when_b} instead of {when_a}, "
                "and your unit on {when_a}.",
                id=swap.id,
                unit_a=texts.unit(step.t, a.unit_id),
                when_a=texts.when(step.t, a.meeting.starts_at),
                when_b=texts.when(step.t, b.meeting.starts_at),
            )
        )
        rows.append(
            [
                step.button(step._("Accept #{id}", id=swap.id), ACTION, f"a-{swap.id}"),
                step.button(step._("Decline #{id}", id=swap.id), ACTION, f"x-{swap.id}"),
            ]
        )
    done = sorted(
        (
            s
            for s in snapshot.slots.values()
            if s.meeting.starts_at <= step.now and snapshot.credited_unit(s) == unit_id
        ),
        key=lambda s: s.meeting.starts_at,
    )[-SHOWN_TURNS:]
    if done:
        lines.append(step._("Your unit's last lectures:"))
        for slot in reversed(done):
            outcome = slot.meeting.outcome
            state = step._(STATUS_NAMES[outcome]) if outcome else step._("not marked yet")
            lines.append(f"• {texts.lecture(step.t, slot)} — {state}")
    if unit is not None and not mine and not waiting:
        lines.append(step._("You will be reminded a week before each lecture."))
    if readonly:
        lines.append(
            step._(
                "To confirm or send the topic, bind your own account: ask the coordinator for "
                "an invite code, then send /bind CODE."
            )
        )
        rows = []
    step.say("\n".join(lines), rows)


async def _pending_swaps(step: Step, unit_b: int | None = None) -> list[RotaSwap]:
    query = select(RotaSwap).where(col(RotaSwap.status) == "requested")
    if unit_b is not None:
        query = query.where(col(RotaSwap.unit_b_id) == unit_b)
    return list((await step.session.execute(query.order_by(col(RotaSwap.id)))).scalars())


async def _coordinator_overview(step: Step) -> None:
    snapshot = await load(step.session)
    texts = _texts(step, snapshot)
    t = step.t
    lines = [step._("普法学法微课堂 — coming meetings")]
    coming = snapshot.upcoming(step.now)[:SHOWN_MEETINGS]
    if not coming:
        lines.append(step._("No meeting is scheduled. Add them with pufa rota meetings add."))
    for slot in coming:
        lines.append(f"#{slot.meeting.id} {texts.lecture(t, slot)} {texts.unit(t, slot.unit_id)}")
        lines.append("   " + _status(step, snapshot, texts, slot))
    for committee, month, count in short_months(
        snapshot.meetings, step.now, texts.offsets, texts.tz
    ):
        lines.append(
            step._(
                "⚠ {committee}: only {count} lecture(s) scheduled in {month} (at least two).",
                committee=committee_name(t, committee),
                count=count,
                month=month_name(t, month),
            )
        )
    rows: list[list[Button]] = []
    unmarked = sorted(
        (
            s
            for s in snapshot.slots.values()
            if s.meeting.starts_at <= step.now and s.meeting.outcome is None
        ),
        key=lambda s: s.meeting.starts_at,
    )[-5:]
    if unmarked:
        lines.append(step._("Lectures to mark:"))
        for slot in unmarked:
            mid = slot.meeting.id
            lines.append(f"#{mid} {texts.lecture(t, slot)} {texts.unit(t, slot.unit_id)}")
            rows.append(
                [
                    step.button(step._("#{id} delivered", id=mid), ACTION, f"d-{mid}"),
                    step.button(step._("#{id} missed", id=mid), ACTION, f"u-{mid}"),
                ]
            )
    for swap in await _pending_swaps(step):
        a = snapshot.slot_of_turn(swap.committee, swap.turn_a)
        b = snapshot.slot_of_turn(swap.committee, swap.turn_b)
        if a is None or b is None:
            continue
        lines.append(
            step._(
                "Swap request #{id}: {unit_a} ({when_a}) with {unit_b} ({when_b}).",
                id=swap.id,
                unit_a=texts.unit(t, a.unit_id),
                unit_b=texts.unit(t, b.unit_id),
                when_a=texts.when(t, a.meeting.starts_at),
                when_b=texts.when(t, b.meeting.starts_at),
            )
        )
        rows.append(
            [
                step.button(step._("Approve #{id}", id=swap.id), ACTION, f"p-{swap.id}"),
                step.button(step._("Reject #{id}", id=swap.id), ACTION, f"j-{swap.id}"),
            ]
        )
    step.say("\n".join(lines), rows)


async def _group_unit(step: Step) -> int | None:
    """The unit whose group this chat is (a group bound with ``/bind``), if any."""
    if not _in_group(step):
        return None
    found = await step.session.execute(
        select(col(PushTarget.unit_id)).where(
            col(PushTarget.channel) == step.inbound.channel,
            col(PushTarget.address) == step.inbound.chat_id,
            col(PushTarget.role) == "unit",
            col(PushTarget.active),
        )
    )
    return found.scalars().first()


async def _cmd_duty(step: Step, args: str) -> None:
    person = step.person
    if person.role == "unit" and person.unit_id is not None:
        await _unit_overview(step, person.unit_id)
    elif person.role == "coordinator":
        await _coordinator_overview(step)
    elif (unit_id := await _group_unit(step)) is not None:
        # a member of the unit's group who has no account of their own: read only
        await _unit_overview(step, unit_id, readonly=True)
    else:
        step.say(step._(NOT_BOUND))


def _ints(parts: list[str], n: int) -> list[int] | None:
    if len(parts) != n or not all(p.isdigit() for p in parts):
        return None
    return [int(p) for p in parts]


async def _act(step: Step, arg: str) -> None:
    """Every rota button: ``<op>-<numbers>`` (see :mod:`bot.rota.texts`)."""
    op, _, rest = arg.partition("-")
    parts = rest.split("-") if rest else []
    person = step.person
    is_unit = person.role == "unit" and person.unit_id is not None
    is_coordinator = person.role == "coordinator"
    try:
        if op in ("c", "t", "s", "w", "a", "x"):
            if not is_unit:
                step.say(step._(ONLY_UNIT))
                return
            assert person.unit_id is not None
            await _unit_action(step, op, parts, person.unit_id)
        elif op in ("p", "j", "d", "u"):
            if not is_coordinator:
                step.say(step._(ONLY_COORDINATOR))
                return
            await _coordinator_action(step, op, parts)
        else:
            step.say(step._(BAD_BUTTON))
    except RotaProblem as problem:
        _problem(step, problem)


async def _unit_action(step: Step, op: str, parts: list[str], unit_id: int) -> None:
    env = _env(step)
    if op == "c" and (ids := _ints(parts, 2)) is not None:
        slot, already = await confirm(env, ids[0], ids[1], unit_id)
        snapshot = await load(step.session)
        lecture = _texts(step, snapshot).lecture(step.t, slot)
        if already:
            step.say(step._("Already confirmed: {lecture}.", lecture=lecture))
        else:
            step.say(step._("Thank you, confirmed: {lecture}.", lecture=lecture))
        return
    if op == "t" and (ids := _ints(parts, 1)) is not None:
        snapshot = await load(step.session)
        mine = snapshot.slots.get(ids[0])
        if mine is None or mine.unit_id != unit_id or mine.meeting.starts_at <= step.now:
            step.say(step._("That lecture is not your unit's coming turn. Send /duty."))
            return
        if _in_group(step):
            step.say(
                step._("Please send the topic in a private chat with me: open it and send /duty.")
            )
            return
        step.begin(FLOW, {"m": ids[0]})
        step.say(_texts(step, snapshot).lecture(step.t, mine))
        await DutyFlow().prompt(step)
        return
    if op == "s" and (ids := _ints(parts, 1)) is not None:
        snapshot = await load(step.session)
        candidates = await swap_candidates(env, snapshot, ids[0], unit_id)
        if not candidates:
            step.say(step._("There is no other unit's lecture scheduled to swap with yet."))
            return
        texts = _texts(step, snapshot)
        step.say(
            step._("Which lecture would you like to swap with? The other unit is asked first."),
            [
                [
                    step.button(
                        f"{texts.lecture(step.t, c)} {texts.unit(step.t, c.unit_id)}",
                        ACTION,
                        f"w-{ids[0]}-{c.meeting.id}",
                    )
                ]
                for c in candidates
            ],
        )
        return
    if op == "w" and (ids := _ints(parts, 2)) is not None:
        swap = await request_swap(env, ids[0], ids[1], unit_id)
        snapshot = await load(step.session)
        step.say(
            step._(
                "Asked: {unit} and the coordinator have been sent your request #{id}. You will "
                "be told when it is agreed.",
                unit=_texts(step, snapshot).unit(step.t, swap.unit_b_id),
                id=swap.id,
            )
        )
        return
    if op in ("a", "x") and (ids := _ints(parts, 1)) is not None:
        swap, _, _ = await decide_swap(env, ids[0], op == "a", unit_id=unit_id)
        if op == "a":
            step.say(step._("Swap #{id} agreed. Everyone concerned has been told.", id=swap.id))
        else:
            step.say(step._("Swap #{id} declined; the asking unit has been told.", id=swap.id))
        return
    step.say(step._(BAD_BUTTON))


async def _coordinator_action(step: Step, op: str, parts: list[str]) -> None:
    env = _env(step)
    ids = _ints(parts, 1)
    if ids is None:
        step.say(step._(BAD_BUTTON))
        return
    if op in ("p", "j"):
        swap, _, _ = await decide_swap(env, ids[0], op == "p", coordinator=True)
        if op == "p":
            step.say(step._("Swap #{id} approved. Everyone concerned has been told.", id=swap.id))
        else:
            step.say(step._("Swap #{id} rejected; the asking unit has been told.", id=swap.id))
        return
    outcome = "delivered" if op == "d" else "missed"
    row, slot = await mark(env, ids[0], outcome)
    snapshot = await load(step.session)
    texts = _texts(step, snapshot)
    step.say(
        step._(
            "Meeting #{id}: the lecture of {unit} is marked {outcome}.",
            id=row.id,
            unit=texts.unit(step.t, slot.unit_id),
            outcome=step._(STATUS_NAMES[outcome]),
        )
    )


def install(registry: DialogRegistry, catalog: object = None) -> None:
    """Register ``/duty``, the topic flow and the rota's button action."""
    registry.add_flow(DutyFlow())
    registry.add_command("duty", _cmd_duty, N_("Lecture rota: your turns, confirm, topic"))
    registry.add_action(ACTION, _act)
