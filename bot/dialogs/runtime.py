"""The channel-agnostic dialog runtime.

:meth:`DialogRuntime.handle` takes one :class:`~bot.channels.base.Inbound`, and in ONE
database transaction

1. records the event id (a redelivered event is recognised and answered with nothing),
2. loads the person's chat identity and conversation (created on first contact),
3. runs one step: a global command (``/help``, ``/lang``, ``/cancel``, ``/start``, ``/survey``,
   ``/bind`` and whatever features register), a button press or text for the current flow,
4. stores the new conversation state (guarded by its version) with any domain records the
   step wrote,

then returns the :class:`~bot.channels.base.Reply` values for the adapter to render. Nothing is
cached between events, so any number of processes can share one database.

Conversations left alone for :attr:`DialogRuntime.resume_after` are offered a choice on return
(continue where they left off, or start again); after :attr:`DialogRuntime.expire_after` they
are closed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.base import Button, Inbound, Link, Reply, ReplyKind
from bot.dialogs import payloads
from bot.dialogs.store import ConcurrentStep, Person, claim_event, load_person, save_state
from bot.i18n import N_, Translator, negotiate
from bot.settings import SHIPPED_LOCALES
from storage.db import transaction
from storage.types import utcnow

__all__ = [
    "BOT_COMMANDS",
    "CommandHandler",
    "DialogRuntime",
    "Flow",
    "Step",
    "apology",
]

log = logging.getLogger(__name__)

BOT_COMMANDS: tuple[tuple[str, str], ...] = (
    ("survey", N_("Take a satisfaction survey")),
    ("bind", N_("Link this account with an invite code")),
    ("register", N_("Register legal liaisons (township staff)")),
    ("duty", N_("Lecture duty (responsible units)")),
    ("lang", N_("Change the language")),
    ("cancel", N_("Stop the current conversation")),
    ("help", N_("What I can do")),
)
"""Commands shown in the chat menu, with msgids of their descriptions."""

BAD_BUTTON = N_("Sorry, I cannot use that button. Send /help to see what I can do.")
STALE_BUTTON = N_("That button belongs to an earlier message. Please use the latest one.")

LANGUAGE_NAMES: Mapping[str, str] = {"zh_CN": "中文", "en": "English"}

_MAX_RETRIES = 3
_BUTTON_KEY = "_b"
_PAUSED_KEY = "_paused"


@functools.lru_cache(maxsize=16)
def translator(locale: str) -> Translator:
    """A shared :class:`Translator` per locale (it holds no per-person state)."""
    return Translator(locale)


def apology(locale: str | None) -> str:
    """The localized apology sent when a step fails unexpectedly."""
    return Translator(locale)._(
        "Sorry, something went wrong on our side. Please try again in a moment."
    )


class Flow(Protocol):
    """A multi-step conversation (survey, binding, registration…)."""

    name: str

    def title(self, step: Step) -> str:
        """What the conversation is about, for "you have an unfinished …" (localized)."""
        ...

    async def on_text(self, step: Step, text: str) -> None:
        """Handle text typed while this flow is current."""
        ...

    async def on_button(self, step: Step, action: str, arg: str) -> None:
        """Handle a verified, current button of this flow."""
        ...

    async def prompt(self, step: Step) -> None:
        """Show again where the conversation stands (after a resume or a language change)."""
        ...

    async def restart(self, step: Step) -> None:
        """Start the flow again from its beginning, keeping what it is about."""
        ...


CommandHandler = Callable[["Step", str], Awaitable[None]]
"""``async handler(step, args)`` for a command word."""


@dataclass
class Step:
    """Everything one step of a dialog works with, and what it produces.

    Flows change :attr:`flow` / :attr:`state` through :meth:`begin`, :meth:`update` and
    :meth:`end` (which mark the step dirty, so the state is stored and its version bumped) and
    answer through :meth:`say`. Domain records go through :attr:`session`, in the same
    transaction.
    """

    runtime: DialogRuntime
    session: AsyncSession
    inbound: Inbound
    person: Person
    t: Translator
    now: datetime
    flow: str | None
    state: dict[str, Any]
    dirty: bool = False
    replies: list[Reply] = field(default_factory=list)
    _buttons: list[str] = field(default_factory=list)

    @property
    def locale(self) -> str:
        """The locale answers are written in."""
        return self.t.locale

    @property
    def owner(self) -> str:
        """``"<channel>:<external id>"``: whom this step's buttons belong to."""
        return f"{self.inbound.channel}:{self.inbound.external_id}"

    def _(self, message: str, **params: object) -> str:
        """Translate ``message`` into the person's language."""
        return self.t._(message, **params)

    def button(self, label: str, action: str, arg: str = "") -> Button:
        """A signed button valid until the conversation's next change."""
        self.dirty = True
        payload = payloads.sign(
            self.runtime.secret, self.owner, self.person.version + 1, action, arg
        )
        return Button(label, payload)

    def say(
        self,
        text: str,
        buttons: Sequence[Sequence[Button]] = (),
        links: Sequence[Link] = (),
        kind: ReplyKind = "send",
    ) -> None:
        """Queue a reply; buttons shown last are what a typed number refers to."""
        rows = tuple(tuple(row) for row in buttons)
        reply = Reply(text, rows, tuple(links), kind)
        if rows:
            self._buttons = [b.payload for b in reply.flat_buttons]
        self.replies.append(reply)

    def begin(self, flow: str, state: dict[str, Any]) -> None:
        """Make ``flow`` the current conversation with a fresh ``state``."""
        self.flow, self.state, self.dirty = flow, dict(state), True

    def update(self, **values: Any) -> None:
        """Change keys of the current flow's state."""
        self.state.update(values)
        self.dirty = True

    def end(self) -> None:
        """Close the current conversation."""
        self.flow, self.state, self.dirty = None, {}, True


class DialogRuntime:
    """Runs dialog steps for every channel.

    Args:
        sessions: Session factory of the database.
        secret: Key for button signatures (and, in flows, respondent pseudonyms).
        flows: Flow objects by name (the survey and binding flows are added by
            :func:`bot.dialogs.build_runtime`).
        default_locale: Locale for people whose client language is not shipped.
        clock: Returns the current UTC time (tests pass a fake).
        resume_after: Idle time after which a returning person is asked to continue or restart.
        expire_after: Idle time after which an unfinished conversation is closed.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        secret: bytes,
        *,
        default_locale: str = "zh_CN",
        clock: Callable[[], datetime] = utcnow,
        resume_after: timedelta = timedelta(hours=1),
        expire_after: timedelta = timedelta(days=7),
    ) -> None:
        self.sessions = sessions
        self.secret = secret
        self.default_locale = default_locale
        self.clock = clock
        self.resume_after = resume_after
        self.expire_after = expire_after
        self.flows: dict[str, Flow] = {}
        bind = sessions.kw.get("bind")
        # SQLite has one writer at a time and makes waiting writers sleep-poll; queueing this
        # process's steps on a lock instead keeps the wait short and fair. PostgreSQL locks rows.
        self._sqlite_lock: asyncio.Lock | None = (
            asyncio.Lock() if bind is not None and bind.dialect.name == "sqlite" else None
        )
        self.commands: dict[str, CommandHandler] = {
            "help": _cmd_help,
            "lang": _cmd_lang,
            "cancel": _cmd_cancel,
            "start": _cmd_start,
            "register": _cmd_not_yet,
            "duty": _cmd_not_yet,
        }
        self.start_payloads: dict[str, CommandHandler] = {}
        self.global_actions: dict[str, Callable[[Step, str], Awaitable[None]]] = {
            "r": _act_resume,
            "n": _act_restart,
            "l": _act_language,
        }

    # ------------------------------------------------------------------ registration

    def add_flow(self, flow: Flow) -> None:
        """Register a flow under its ``name``."""
        self.flows[flow.name] = flow

    def add_command(self, name: str, handler: CommandHandler) -> None:
        """Register (or replace) the handler of a command word."""
        self.commands[name] = handler

    def add_start_payload(self, prefix: str, handler: CommandHandler) -> None:
        """Handle deep links ``/start <prefix>_<rest>``; the handler gets ``rest``."""
        self.start_payloads[prefix] = handler

    def add_action(self, action: str, handler: Callable[[Step, str], Awaitable[None]]) -> None:
        """Handle buttons with this action letter whatever the current flow."""
        self.global_actions[action] = handler

    # ------------------------------------------------------------------ handling

    async def handle(self, inbound: Inbound) -> list[Reply]:
        """Run one step for ``inbound`` and return the replies ([] for a redelivered event)."""
        for attempt in range(_MAX_RETRIES):
            try:
                if self._sqlite_lock is None:
                    return await self._handle_once(inbound)
                async with self._sqlite_lock:
                    return await self._handle_once(inbound)
            except ConcurrentStep:
                if attempt == _MAX_RETRIES - 1:
                    raise
                log.info("conversation changed concurrently; retrying the event")
        raise AssertionError("unreachable")

    async def _handle_once(self, inbound: Inbound) -> list[Reply]:
        now = self.clock()
        async with transaction(self.sessions) as session:
            if inbound.event_id is not None and not await claim_event(
                session, inbound.channel, inbound.event_id, now
            ):
                log.info(
                    "duplicate event ignored",
                    extra={"channel": inbound.channel, "event_id": inbound.event_id},
                )
                return []
            locale = negotiate(inbound.language, self.default_locale)
            person = await load_person(session, inbound.channel, inbound.external_id, locale, now)
            step = Step(
                runtime=self,
                session=session,
                inbound=inbound,
                person=person,
                t=translator(person.locale or locale),
                now=now,
                flow=person.flow,
                state=dict(person.state),
            )
            await self._step(step)
            if step.dirty:
                if step._buttons:
                    step.state[_BUTTON_KEY] = step._buttons
                else:
                    step.state.pop(_BUTTON_KEY, None)
                await save_state(session, person, step.flow, step.state, now)
            return step.replies

    async def _step(self, step: Step) -> None:
        inbound = step.inbound
        text = (inbound.text or "").strip()
        payload = inbound.payload
        if payload is None and text.isdigit():
            choices = step.state.get(_BUTTON_KEY) or []
            number = int(text)
            if 1 <= number <= len(choices):
                payload = choices[number - 1]
        command = None if payload is not None else self._parse_command(text, inbound)
        if command is not None and command[0] in ("help", "lang", "cancel"):
            await self.commands[command[0]](step, command[1])
            return
        if self._idle_check(step, command, payload):
            return
        if command is not None:
            name, args = command
            handler = self.commands.get(name)
            if handler is None:
                step.say(step._("Unknown command. Send /help to see what I can do."))
            else:
                await handler(step, args)
            return
        if payload is not None:
            await self._button(step, payload)
            return
        flow = self.flows.get(step.flow) if step.flow else None
        if flow is not None and text:
            await flow.on_text(step, text)
            return
        step.say(step._("Send /survey to take a survey, or /help to see what I can do."))

    def _parse_command(self, text: str, inbound: Inbound) -> tuple[str, str] | None:
        if not text:
            return None
        head, _, args = text.partition(" ")
        if head.startswith("/"):
            name = head[1:].split("@", 1)[0].lower()
            return (name, args.strip()) if name else None
        if inbound.bare_commands and head.lower() in self.commands:
            return head.lower(), args.strip()
        return None

    def _idle_check(self, step: Step, command: tuple[str, str] | None, payload: str | None) -> bool:
        """Close or pause an abandoned conversation; ``True`` when the step is answered."""
        if step.flow is None or step.person.updated_at is None:
            return False
        idle = step.now - step.person.updated_at
        flow = self.flows.get(step.flow)
        if flow is None or idle > self.expire_after:
            step.end()
            step.say(step._("Your unfinished conversation had expired, so it was closed."))
            return False
        if command is not None:
            return False
        if payload is not None and _is_global(self, step, payload):
            return False
        if idle > self.resume_after or step.state.get(_PAUSED_KEY):
            step.update(**{_PAUSED_KEY: True})
            step.say(
                step._(
                    "Welcome back! You have not finished: {title}. "
                    "Continue where you left off, or start again?",
                    title=flow.title(step),
                ),
                [
                    [step.button(step._("Continue"), "r")],
                    [step.button(step._("Start again"), "n")],
                ],
            )
            return True
        return False

    async def _button(self, step: Step, payload: str) -> None:
        try:
            pressed = payloads.verify(self.secret, step.owner, payload)
        except payloads.PayloadError:
            log.info("rejected a button payload that is not ours")
            step.say(step._(BAD_BUTTON))
            return
        if pressed.version != step.person.version:
            step.say(step._(STALE_BUTTON))
            return
        action = self.global_actions.get(pressed.action)
        if action is not None:
            await action(step, pressed.arg)
            return
        flow = self.flows.get(step.flow) if step.flow else None
        if flow is None:
            step.say(step._(STALE_BUTTON))
            return
        await flow.on_button(step, pressed.action, pressed.arg)


def _is_global(runtime: DialogRuntime, step: Step, payload: str) -> bool:
    try:
        pressed = payloads.verify(runtime.secret, step.owner, payload)
    except payloads.PayloadError:
        return False
    return pressed.action in runtime.global_actions and pressed.version == step.person.version


# ---------------------------------------------------------------------- global commands


async def _cmd_help(step: Step, args: str) -> None:
    lines = [step._("I am the 普法 assistant of the district. You can send:")]
    for name, description in BOT_COMMANDS:
        lines.append(f"/{name} — {step._(description)}")
    if step.flow is not None:
        lines.append("")
        lines.append(step._("Your current conversation stays open; send /cancel to stop it."))
    step.say("\n".join(lines))


async def _cmd_lang(step: Step, args: str) -> None:
    wanted = args.strip()
    if wanted:
        locale = negotiate(wanted, default="")
        if locale:
            await _act_language(step, locale)
            return
    step.say(
        step._("Choose your language:"),
        [[step.button(LANGUAGE_NAMES[loc], "l", loc)] for loc in SHIPPED_LOCALES],
    )


async def _act_language(step: Step, locale: str) -> None:
    if locale not in SHIPPED_LOCALES:
        step.say(step._(BAD_BUTTON))
        return
    from sqlalchemy import update

    from storage.models import ChatIdentity

    await step.session.execute(
        update(ChatIdentity).where(ChatIdentity.id == step.person.identity_id).values(locale=locale)
    )
    step.person.locale = locale
    step.t = translator(locale)
    step.dirty = True
    step.say(step._("I will write to you in English from now on."))
    flow = step.runtime.flows.get(step.flow) if step.flow else None
    if flow is not None:
        step.state.pop(_PAUSED_KEY, None)
        await flow.prompt(step)


async def _cmd_cancel(step: Step, args: str) -> None:
    if step.flow is None:
        step.say(step._("There is nothing to cancel."))
        return
    step.end()
    step.say(step._("Stopped. Send /survey or /help whenever you like."))


async def _cmd_start(step: Step, args: str) -> None:
    payload = args.strip()
    if payload:
        prefix, _, rest = payload.partition("_")
        handler = step.runtime.start_payloads.get(prefix)
        if handler is not None:
            await handler(step, rest)
            return
        step.say(step._("Sorry, that link is not valid. Send /help to see what I can do."))
        return
    step.say(
        step._(
            "Hello! I am the 普法 assistant of the district. Send /survey to take a "
            "satisfaction survey, or /help to see what I can do."
        )
    )


async def _cmd_not_yet(step: Step, args: str) -> None:
    step.say(step._("This is not available yet."))


async def _unpause(step: Step) -> Flow | None:
    """The current flow with its pause cleared, or ``None`` (and a reply) when there is none."""
    flow = step.runtime.flows.get(step.flow) if step.flow else None
    if flow is None:
        step.say(step._("There is nothing to continue."))
        return None
    step.state.pop(_PAUSED_KEY, None)
    step.dirty = True
    return flow


async def _act_resume(step: Step, arg: str) -> None:
    flow = await _unpause(step)
    if flow is not None:
        await flow.prompt(step)


async def _act_restart(step: Step, arg: str) -> None:
    flow = await _unpause(step)
    if flow is not None:
        await flow.restart(step)
