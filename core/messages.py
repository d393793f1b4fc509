"""Chat message types shared by channels, the dialog runtime, feature dialogs and the outbox.

Channel-agnostic messages, the numbered-options fallback and a collecting channel. A channel
adapter (Telegram, WeCom, console) turns each inbound platform event into one
:class:`Inbound` and hands it to the dialog runtime, which answers with :class:`Reply` values.
The adapter renders them: inline keyboards where the platform has buttons, numbered options
(:func:`render_numbered`) where it does not. Adapters hold no business rules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

__all__ = [
    "Attachment",
    "Button",
    "ChannelCapabilities",
    "CollectingChannel",
    "Inbound",
    "Link",
    "OutputChannel",
    "Reply",
    "ReplyKind",
    "render_numbered",
    "separate_leads",
    "split_text",
]


@dataclass(frozen=True, slots=True)
class Button:
    """A button: the ``label`` people see and the opaque ``payload`` sent back when pressed.

    Payloads are at most 64 bytes (Telegram's limit for callback data).
    """

    label: str
    payload: str


@dataclass(frozen=True, slots=True)
class Link:
    """A link shown under a message (URL button on Telegram, a line of text elsewhere)."""

    label: str
    url: str


ReplyKind = Literal["send", "edit_source"]
"""``send`` a new message, or ``edit_source``: replace the message whose button was pressed
(its keyboard disappears). Channels that cannot edit send ``edit_source`` replies as text."""


@dataclass(frozen=True, slots=True)
class Reply:
    """One outbound message of a dialog step.

    Attributes:
        text: Plain text (no markup); the adapter escapes it as its platform needs.
        buttons: Rows of buttons (one button per row reads best on phones).
        links: Links shown with the message.
        kind: ``send`` or ``edit_source`` (see :data:`ReplyKind`).
        numbered: Whether a typed number chooses one of the buttons (on channels without
            buttons they are listed as ``1. label``). ``False`` for buttons beside a free-text
            answer, such as *Skip*, so that typing ``1`` is an answer and not a press; they are
            listed as ``[label]`` and chosen by typing the label.
        lead: Text that comes before ``text`` (a survey's title and intro above its first
            question), or "". A channel that edits messages shows both in one message, one
            send fewer, and keeps the lead when an ``edit_source`` reply replaces it; others
            send a lead as a message of its own (see :func:`separate_leads`).
    """

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    links: tuple[Link, ...] = ()
    kind: ReplyKind = "send"
    numbered: bool = True
    lead: str = ""

    @property
    def flat_buttons(self) -> list[Button]:
        """The buttons in reading order (row by row)."""
        return [button for row in self.buttons for button in row]

    @property
    def full_text(self) -> str:
        """The lead and the text as one message (a blank line between them)."""
        return f"{self.lead}\n\n{self.text}" if self.lead else self.text


def separate_leads(replies: Sequence[Reply]) -> list[Reply]:
    """``replies`` for a channel that sends its edits as new messages: each ``send`` reply's
    lead becomes a reply of its own before it, and an ``edit_source`` reply's lead is dropped
    (it is already in the chat, above the message the edit answers)."""
    separated: list[Reply] = []
    for reply in replies:
        if reply.lead and reply.kind == "send":
            separated.append(Reply(reply.lead))
        separated.append(replace(reply, lead="") if reply.lead else reply)
    return separated


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file someone sent (a document), kept by the platform's file id.

    Attributes:
        file_id: The platform's id of the file (Telegram ``file_id``), enough to fetch it again.
        file_name: The name it was sent with ("" when none).
        mime_type: Its MIME type as the platform reports it ("" when unknown).
    """

    file_id: str
    file_name: str = ""
    mime_type: str = ""


@dataclass(frozen=True, slots=True)
class Inbound:
    """One inbound event from a person on a channel.

    Attributes:
        channel: ``telegram``, ``wecom``, ``console``…
        external_id: The person's id on that channel (Telegram user id as a string).
        chat_id: Where to answer (the private chat or group), as a string.
        text: What the person typed (commands included: ``/bind CODE``), or ``None``.
        payload: The payload of a pressed button, or ``None``.
        language: The client's language tag (Telegram ``language_code`` such as ``zh-hans``).
        event_id: The platform's id of the event (``update_id``, ``MsgId``) for deduplication;
            ``None`` when the channel has none (console).
        source_message_id: For a button press, the platform id of the message that carried the
            button (so ``edit_source`` replies can replace it).
        bare_commands: Whether command words count without a leading slash (``help`` as well
            as ``/help``), as on WeCom and the console.
        attachment: A file sent with the message (its caption, if any, is ``text``), or ``None``.
    """

    channel: str
    external_id: str
    chat_id: str
    text: str | None = None
    payload: str | None = None
    language: str | None = None
    event_id: str | None = None
    source_message_id: str | None = None
    bare_commands: bool = False
    attachment: Attachment | None = None


@dataclass(frozen=True, slots=True)
class ChannelCapabilities:
    """What a channel can render; the runtime does not depend on it, renderers do."""

    buttons: bool = True
    edit: bool = True


def render_numbered(reply: Reply, *, start: int = 1) -> str:
    """Render a reply for a channel without buttons: text, then ``1. label`` lines, then links.

    People answer by typing the number; the runtime maps it to the button's payload because it
    keeps the payloads of the last buttons shown in the conversation state.
    """
    text = reply.full_text
    lines = [text] if text else []
    for number, button in enumerate(reply.flat_buttons, start=start):
        lines.append(f"{number}. {button.label}" if reply.numbered else f"[{button.label}]")
    for link in reply.links:
        lines.append(f"{link.label}: {link.url}")
    return "\n".join(lines)


class OutputChannel(Protocol):
    """Something that delivers replies to one chat."""

    async def deliver(self, chat_id: str, replies: Sequence[Reply]) -> None:
        """Render and send ``replies`` to ``chat_id``."""
        ...


@dataclass
class CollectingChannel:
    """An output channel that keeps every reply (for tests), with numbered rendering."""

    replies: list[tuple[str, Reply]] = field(default_factory=list)

    async def deliver(self, chat_id: str, replies: Sequence[Reply]) -> None:
        """Record ``replies`` for ``chat_id``."""
        self.replies.extend((chat_id, reply) for reply in replies)

    def texts(self, chat_id: str | None = None) -> list[str]:
        """Rendered texts (numbered options included), oldest first."""
        return [
            render_numbered(reply)
            for chat, reply in self.replies
            if chat_id is None or chat == chat_id
        ]

    def last(self) -> Reply:
        """The most recent reply (``IndexError`` if none)."""
        return self.replies[-1][1]


def split_text(text: str, limit: int, length: Callable[[str], int] = len) -> list[str]:
    """``text`` in pieces of at most ``limit`` (as ``length`` measures a string: characters,
    UTF-8 bytes, UTF-16 code units…), for platforms that cap a message's length.

    Pieces are cut at line ends where possible, a longer line between characters; lines keep
    their order and pieces holding only blanks are dropped. A text within ``limit`` comes
    back whole.
    """
    if length(text) <= limit:
        return [text]
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in text.split("\n"):
        for piece in _cut(line, limit, length) or [""]:
            width = length(piece)
            extra = width + (1 if current else 0)
            if current and size + extra > limit:
                chunks.append("\n".join(current))
                current, size, extra = [], 0, width
            current.append(piece)
            size += extra
    if current:
        chunks.append("\n".join(current))
    return [chunk for chunk in chunks if chunk.strip()] or [text[:1]]


def _cut(line: str, limit: int, length: Callable[[str], int]) -> list[str]:
    """``line`` cut between characters into pieces of at most ``limit``."""
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for ch in line:
        width = length(ch)
        if current and size + width > limit:
            parts.append("".join(current))
            current, size = [], 0
        current.append(ch)
        size += width
    if current:
        parts.append("".join(current))
    return parts
