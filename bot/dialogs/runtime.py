"""The channel-agnostic dialog runtime.

:meth:`DialogRuntime.handle` takes one :class:`~core.messages.Inbound`, and in ONE
database transaction

1. records the event id (a redelivered event is recognised and answered with nothing),
2. loads the person's chat identity and conversation (created on first contact),
3. runs one step: a global command (``/help``, ``/lang``, ``/cancel``, ``/start`` and whatever
   the features register: ``/survey``, ``/bind``…), a button press or text for the current
   flow,
4. stores the new conversation state (guarded by its version) with any domain records the
   step wrote,

then returns the :class:`~core.messages.Reply` values for the adapter to render, once that
transaction is committed. Nothing is cached between events, so any number of processes can share
one database. On SQLite a process's steps take turns, and the steps queued together share their
transaction's commit (:mod:`bot.dialogs.group`): a step that fails rolls back its group, and the
others run again, alone.

Features register their flows, commands, deep links and button actions through the
:class:`~core.dialog.DialogRegistry` interface; they see a step as a :class:`~core.dialog.Step`
and never import this module. Buttons of pushed messages (:func:`core.payloads.sign_push`) are
accepted from anyone in the chat they were sent to, for global actions only.

Conversations left alone for :attr:`DialogRuntime.resume_after` are offered a choice on return
(continue where they left off, or start again); after :attr:`DialogRuntime.expire_after` they
are closed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from bot.dialogs.group import GroupAborted, StepGroups
from bot.dialogs.store import ConcurrentStep, claim_and_load, load_person, save_state
from core import payloads
from core.clock import Clock, utcnow
from core.dialog import (
    BAD_BUTTON,
    STALE_BUTTON,
    ActionHandler,
    CommandHandler,
    Flow,
    Step,
)
from core.i18n import N_, negotiate, translator
from core.ids import parse_digits
from core.messages import Inbound, Reply
from core.metrics import Metrics
from core.settings import SHIPPED_LOCALES, Settings
from core.text import text_is_storable
from storage.db import transaction
from storage.models import ChatIdentity

__all__ = ["UNSTORABLE", "AfterStep", "DialogRuntime", "apology"]

log = logging.getLogger(__name__)

BUILTIN_MENU: tuple[tuple[str, str], ...] = (
    ("lang", N_("Change the language")),
    ("cancel", N_("Stop the current conversation")),
    ("help", N_("What I can do")),
)
"""Commands every chat has, shown after the features' commands in the menu."""

AfterStep = Callable[[AsyncSession, list[Reply]], Awaitable[None]]
"""Work a channel adds to a step's transaction (queueing the replies in the outbox)."""

LANGUAGE_NAMES: Mapping[str, str] = {"zh_CN": "中文", "en": "English"}

UNSTORABLE = N_(
    "Your message has characters I cannot keep (such as NUL or other control characters)."
    " Please send it again without them."
)
"""The answer to a message whose text or file name no database keeps (nothing is changed)."""

_MAX_RETRIES = 3
_BUTTON_KEY = "_b"
_PAUSED_KEY = "_paused"


def _storable(inbound: Inbound) -> bool:
    """Whether the text and the file name of ``inbound`` can be stored as they are."""
    names = inbound.attachment.file_name if inbound.attachment is not None else ""
    return text_is_storable(inbound.text or "") and text_is_storable(names)


def apology(locale: str | None) -> str:
    """The localized apology sent when a step fails unexpectedly."""
    return translator(locale)._(
        "Sorry, something went wrong on our side. Please try again in a moment."
    )


class DialogRuntime:
    """Runs dialog steps for every channel.

    Args:
        sessions: Session factory of the database.
        settings: The configuration; its secret key signs buttons (and, in flows, keys
            respondent pseudonyms), its default locale answers people whose client language
            is not shipped.
        clock: Returns the current UTC time (tests pass a fake).
        resume_after: Idle time after which a returning person is asked to continue or restart.
        expire_after: Idle time after which an unfinished conversation is closed.
        metrics: The process's metrics, for flows that count what they store.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        clock: Clock = utcnow,
        resume_after: timedelta = timedelta(hours=1),
        expire_after: timedelta = timedelta(days=7),
        metrics: Metrics | None = None,
    ) -> None:
        self.sessions = sessions
        self._metrics = metrics
        self._settings = settings
        self._secret = settings.secret()
        self.default_locale = settings.default_locale
        self.clock = clock
        self.resume_after = resume_after
        self.expire_after = expire_after
        self._flows: dict[str, Flow] = {}
        bind = sessions.kw.get("bind")
        # On SQLite this process's steps take turns, the queued ones sharing a commit (see
        # bot.dialogs.group); PostgreSQL locks rows, so its steps run side by side.
        self._groups: StepGroups | None = (
            StepGroups(sessions) if bind is not None and bind.dialect.name == "sqlite" else None
        )
        self.commands: dict[str, CommandHandler] = {
            "help": self._cmd_help,
            "lang": self._cmd_lang,
            "cancel": self._cmd_cancel,
            "start": self._cmd_start,
        }
        self._menu: list[tuple[str, str]] = []
        self.start_payloads: dict[str, CommandHandler] = {}
        self.global_actions: dict[str, ActionHandler] = {
            "r": self._act_resume,
            "n": self._act_restart,
            "l": self._act_language,
        }

    # ------------------------------------------------------------------ what steps see

    @property
    def secret(self) -> bytes:
        """Key for button signatures and respondent pseudonyms."""
        return self._secret

    @property
    def settings(self) -> Settings:
        """The process configuration."""
        return self._settings

    @property
    def flows(self) -> Mapping[str, Flow]:
        """Registered flows by name."""
        return self._flows

    @property
    def metrics(self) -> Metrics | None:
        """The process's metrics, if collected."""
        return self._metrics

    def has_command(self, name: str) -> bool:
        """Whether a command word is registered."""
        return name in self.commands

    @property
    def menu(self) -> list[tuple[str, str]]:
        """``(command, description msgid)`` for the chat menu: the features' commands in the
        order they were registered, then ``/lang``, ``/cancel``, ``/help``."""
        return [*self._menu, *BUILTIN_MENU]

    # ------------------------------------------------------------------ registration

    def add_flow(self, flow: Flow) -> None:
        """Register a flow under its ``name``."""
        self._flows[flow.name] = flow

    def add_command(
        self, name: str, handler: CommandHandler, description: str | None = None
    ) -> None:
        """Register (or replace) the handler of a command word; with a ``description``
        (a msgid) it is listed in the menu and in ``/help``."""
        self.commands[name] = handler
        self._menu = [(n, d) for n, d in self._menu if n != name]
        if description is not None:
            self._menu.append((name, description))

    def add_start_payload(self, prefix: str, handler: CommandHandler) -> None:
        """Handle deep links ``/start <prefix>_<rest>``; the handler gets ``rest``."""
        self.start_payloads[prefix] = handler

    def add_action(self, action: str, handler: ActionHandler) -> None:
        """Handle buttons with this action letter whatever the current flow."""
        self.global_actions[action] = handler

    # ------------------------------------------------------------------ handling

    async def handle(self, inbound: Inbound, *, within: AfterStep | None = None) -> list[Reply]:
        """Run one step for ``inbound`` and return the replies ([] for a redelivered event).

        ``within(session, replies)``, if given, runs in the step's transaction after the
        step, so a channel that delivers through the outbox queues the replies atomically with
        the conversation state and the event's id.
        """
        conflicts = 0
        alone = False
        while True:
            try:
                if self._groups is None:
                    async with transaction(self.sessions) as session:
                        step = await self._run_step(session, inbound, within)
                else:
                    step = await self._groups.run(
                        lambda session: self._run_step(session, inbound, within), alone=alone
                    )
            except ConcurrentStep:
                conflicts += 1
                if conflicts == _MAX_RETRIES:
                    raise
                log.info("conversation changed concurrently; retrying the event")
                continue
            except GroupAborted:
                log.info("a step committed with this one failed; running the event again")
                alone = True
                continue
            if step is None:
                return []
            for callback in step.committed:
                callback()
            return step.replies

    async def _run_step(
        self, session: AsyncSession, inbound: Inbound, within: AfterStep | None
    ) -> Step | None:
        """One step in ``session``'s transaction (``None`` for a redelivered event)."""
        now = self.clock()
        locale = negotiate(inbound.language, self.default_locale)
        if inbound.event_id is None:
            person = await load_person(session, inbound.channel, inbound.external_id, locale, now)
        else:
            found = await claim_and_load(
                session, inbound.channel, inbound.event_id, inbound.external_id, locale, now
            )
            if found is None:
                log.info(
                    "duplicate event ignored",
                    extra={"channel": inbound.channel, "event_id": inbound.event_id},
                )
                return None
            person = found
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
            if step.buttons_shown:
                step.state[_BUTTON_KEY] = step.buttons_shown
            else:
                step.state.pop(_BUTTON_KEY, None)
            await save_state(session, person, step.flow, step.state, now)
        if within is not None:
            await within(session, step.replies)
        return step

    async def _step(self, step: Step) -> None:
        inbound = step.inbound
        if not _storable(inbound):
            # Nothing a flow could keep (PostgreSQL refuses NUL; a lone surrogate, which JSON
            # can escape and polling mode lets through, has no UTF-8): one answer for every
            # flow, and the conversation stays where it was.
            step.say(step._(UNSTORABLE))
            return
        text = (inbound.text or "").strip()
        payload = inbound.payload
        number = parse_digits(text, 4) if payload is None else None
        if number is not None:
            choices = step.state.get(_BUTTON_KEY) or []
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
        if flow is not None and (text or inbound.attachment is not None):
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
        if payload is not None and self._is_global(step, payload):
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

    def _verify(self, step: Step, payload: str) -> tuple[payloads.ButtonPayload, bool] | None:
        """The pressed payload and whether it is a pushed message's button, or ``None``."""
        try:
            return payloads.verify(self.secret, step.owner, payload), False
        except payloads.PayloadError:
            pass
        owner = payloads.push_owner(step.inbound.channel, step.inbound.chat_id)
        try:
            return payloads.verify(self.secret, owner, payload), True
        except payloads.PayloadError:
            return None

    def _is_global(self, step: Step, payload: str) -> bool:
        verified = self._verify(step, payload)
        if verified is None:
            return False
        pressed, pushed = verified
        return pressed.action in self.global_actions and (
            pushed or pressed.version == step.person.version
        )

    async def _button(self, step: Step, payload: str) -> None:
        verified = self._verify(step, payload)
        if verified is None:
            log.info("rejected a button payload that is not ours")
            step.say(step._(BAD_BUTTON))
            return
        pressed, pushed = verified
        action = self.global_actions.get(pressed.action)
        if pushed:
            if action is None:
                step.say(step._(BAD_BUTTON))
            else:
                await action(step, pressed.arg)
            return
        if pressed.version != step.person.version:
            step.say(step._(STALE_BUTTON))
            return
        if action is not None:
            await action(step, pressed.arg)
            return
        flow = self._flows.get(step.flow) if step.flow else None
        if flow is None:
            step.say(step._(STALE_BUTTON))
            return
        await flow.on_button(step, pressed.action, pressed.arg)

    # ------------------------------------------------------------------ built-in commands

    async def _cmd_help(self, step: Step, args: str) -> None:
        lines = [step._("I am the 普法 assistant of the district. You can send:")]
        for name, description in self.menu:
            lines.append(f"/{name} — {step._(description)}")
        if step.flow is not None:
            lines.append("")
            lines.append(step._("Your current conversation stays open; send /cancel to stop it."))
        step.say("\n".join(lines))

    async def _cmd_lang(self, step: Step, args: str) -> None:
        wanted = args.strip()
        if wanted:
            locale = negotiate(wanted, default="")
            if locale:
                await self._act_language(step, locale)
                return
        step.say(
            step._("Choose your language:"),
            [[step.button(LANGUAGE_NAMES[loc], "l", loc)] for loc in SHIPPED_LOCALES],
        )

    async def _act_language(self, step: Step, locale: str) -> None:
        if locale not in SHIPPED_LOCALES:
            step.say(step._(BAD_BUTTON))
            return
        await step.session.execute(
            update(ChatIdentity)
            .where(col(ChatIdentity.id) == step.person.identity_id)
            .values(locale=locale)
        )
        step.person.locale = locale
        step.t = translator(locale)
        step.dirty = True
        step.say(step._("I will write to you in English from now on."))
        flow = self._flows.get(step.flow) if step.flow else None
        if flow is not None:
            step.state.pop(_PAUSED_KEY, None)
            await flow.prompt(step)

    async def _cmd_cancel(self, step: Step, args: str) -> None:
        if step.flow is None:
            step.say(step._("There is nothing to cancel."))
            return
        step.end()
        step.say(step._("Stopped. Send /survey or /help whenever you like."))

    async def _cmd_start(self, step: Step, args: str) -> None:
        payload = args.strip()
        if payload:
            prefix, _, rest = payload.partition("_")
            handler = self.start_payloads.get(prefix)
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

    def _unpause(self, step: Step) -> Flow | None:
        """The current flow with its pause cleared, or ``None`` (and a reply) if there is none."""
        flow = self._flows.get(step.flow) if step.flow else None
        if flow is None:
            step.say(step._("There is nothing to continue."))
            return None
        step.state.pop(_PAUSED_KEY, None)
        step.dirty = True
        return flow

    async def _act_resume(self, step: Step, arg: str) -> None:
        flow = self._unpause(step)
        if flow is not None:
            await flow.prompt(step)

    async def _act_restart(self, step: Step, arg: str) -> None:
        flow = self._unpause(step)
        if flow is not None:
            await flow.restart(step)
