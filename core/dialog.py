"""What a feature's dialog sees of the dialog runtime.

A feature registers its conversations on a :class:`DialogRegistry` (flows, command words,
deep-link prefixes, global button actions). For every inbound event the runtime
(:mod:`bot.dialogs.runtime`) builds one :class:`Step` — the person, their conversation state,
the database session of the event's transaction, the clock and a translator — and calls the
handler. Handlers answer with :meth:`Step.say` and change the conversation with
:meth:`Step.begin` / :meth:`Step.update` / :meth:`Step.end`; domain records go through
:attr:`Step.session`, so they commit (or roll back) with the conversation state.

Features depend on this module, never on the runtime or a channel: the runtime is given the
features' dialogs by the composition root.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from core import payloads
from core.i18n import N_, Translator
from core.messages import Button, Inbound, Link, Reply, ReplyKind
from core.metrics import Metrics
from core.settings import Settings

__all__ = [
    "BAD_BUTTON",
    "STALE_BUTTON",
    "ActionHandler",
    "CommandHandler",
    "DialogHost",
    "DialogRegistry",
    "Flow",
    "Person",
    "Step",
]

BAD_BUTTON = N_("Sorry, I cannot use that button. Send /help to see what I can do.")
STALE_BUTTON = N_("That button belongs to an earlier message. Please use the latest one.")


@dataclass
class Person:
    """A chat identity with its conversation, as read at the start of a step."""

    identity_id: int
    channel: str
    external_id: str
    locale: str | None
    role: str
    township_id: int | None
    unit_id: int | None
    flow: str | None = None
    state: dict[str, Any] = field(default_factory=dict)
    version: int = 0
    updated_at: datetime | None = None
    has_conversation: bool = False


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
"""``async handler(step, args)`` for a command word or a deep-link payload."""
ActionHandler = Callable[["Step", str], Awaitable[None]]
"""``async handler(step, arg)`` for a global button action (valid whatever the flow)."""


class DialogHost(Protocol):
    """What a step may read of the runtime that runs it."""

    @property
    def secret(self) -> bytes:
        """Key for button signatures and respondent pseudonyms."""
        ...

    @property
    def settings(self) -> Settings:
        """The process configuration (time zone, public URL…)."""
        ...

    @property
    def flows(self) -> Mapping[str, Flow]:
        """Registered flows by name."""
        ...

    @property
    def metrics(self) -> Metrics | None:
        """The process's metrics (``None`` where nothing collects them, e.g. ``pufa chat``)."""
        ...

    def has_command(self, name: str) -> bool:
        """Whether a command word is registered (features mention only what exists)."""
        ...


class DialogRegistry(Protocol):
    """Where a feature registers its dialogs (implemented by the runtime)."""

    def add_flow(self, flow: Flow) -> None:
        """Register a flow under its ``name``."""
        ...

    def add_command(
        self, name: str, handler: CommandHandler, description: str | None = None
    ) -> None:
        """Register a command word; with a ``description`` (a msgid) it is in the menu."""
        ...

    def add_start_payload(self, prefix: str, handler: CommandHandler) -> None:
        """Handle deep links ``/start <prefix>_<rest>``; the handler gets ``rest``."""
        ...

    def add_action(self, action: str, handler: ActionHandler) -> None:
        """Handle buttons with this action letter whatever the current flow."""
        ...


@dataclass
class Step:
    """Everything one step of a dialog works with, and what it produces.

    Flows change :attr:`flow` / :attr:`state` through :meth:`begin`, :meth:`update` and
    :meth:`end` (which mark the step dirty, so the state is stored and its version bumped) and
    answer through :meth:`say`. Domain records go through :attr:`session`, in the same
    transaction.
    """

    runtime: DialogHost
    session: AsyncSession
    inbound: Inbound
    person: Person
    t: Translator
    now: datetime
    flow: str | None
    state: dict[str, Any]
    dirty: bool = False
    replies: list[Reply] = field(default_factory=list)
    buttons_shown: list[str] = field(default_factory=list)
    committed: list[Callable[[], None]] = field(default_factory=list)

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
        *,
        numbered: bool = True,
        lead: str = "",
    ) -> None:
        """Queue a reply; buttons shown last are what a typed number refers to.

        With ``numbered=False`` a typed number chooses none of these buttons (nor any shown
        before): for buttons beside a free-text answer, where ``1`` is an answer. ``lead`` is
        text shown before ``text`` (see :attr:`Reply.lead`).
        """
        rows = tuple(tuple(row) for row in buttons)
        reply = Reply(text, rows, tuple(links), kind, numbered, lead)
        if rows:
            self.buttons_shown = [b.payload for b in reply.flat_buttons] if numbered else []
        self.replies.append(reply)

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the step's transaction has committed (not if it rolls back):
        for counting what was stored, e.g. a survey response."""
        self.committed.append(callback)

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
