"""How a :class:`~core.messages.Reply` looks on WeCom (pure functions).

- A reply with buttons becomes a **template card** (``button_interaction``) when it fits one:
  at most 6 buttons with short labels, at most 3 links, and text short enough for the card.
  Each button's key is the reply's button payload (at most 64 bytes), so a press comes back
  through the callback as a ``template_card_event`` carrying it.
- Otherwise (and for plain replies) it becomes **text**: the text, the buttons as numbered
  options (``1. 满意``) and the links as ``label: URL`` lines
  (:func:`core.messages.render_numbered`), split into messages of at most 2048 bytes, WeCom's
  limit. People answer numbered options by
  typing the number or the option's words (:mod:`bot.channels.wecom.choices`).
- A **group robot** gets markdown: the text with links as ``[label](URL)``; robots cannot take
  button presses, so buttons are left out (the bound accounts get them). At most 4096 bytes.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from core.messages import Reply, render_numbered, split_text

__all__ = [
    "MAX_CARD_BUTTONS",
    "TEXT_LIMIT",
    "card_of",
    "display_width",
    "robot_markdown",
    "text_chunks",
    "text_of",
]

TEXT_LIMIT = 2048
"""Bytes of a text message's content."""
MARKDOWN_LIMIT = 4096
"""Bytes of a robot's markdown content."""
MAX_CARD_BUTTONS = 6
MAX_CARD_LINKS = 3
_TITLE_WIDTH = 52
"""26 characters (CJK) for ``main_title.title``."""
_SUBTITLE_WIDTH = 224
"""112 characters (CJK) for ``sub_title_text``."""
_LABEL_WIDTH = 20
"""10 characters (CJK) for a button's text."""


def display_width(text: str) -> int:
    """Width in half-width columns: CJK and other wide characters count two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def card_of(reply: Reply, task_id: str) -> dict[str, Any] | None:
    """The ``template_card`` of a reply with buttons, or ``None`` when it does not fit one."""
    buttons = reply.flat_buttons
    if not buttons or len(buttons) > MAX_CARD_BUTTONS or len(reply.links) > MAX_CARD_LINKS:
        return None
    if any(display_width(b.label) > _LABEL_WIDTH or not b.label.strip() for b in buttons):
        return None
    text = reply.text.strip()
    card: dict[str, Any] = {"card_type": "button_interaction", "task_id": task_id}
    if text and display_width(text) <= _TITLE_WIDTH and "\n" not in text:
        card["main_title"] = {"title": text}
    elif text and display_width(text) <= _SUBTITLE_WIDTH:
        card["sub_title_text"] = text
    else:
        return None
    card["button_list"] = [{"text": b.label, "key": b.payload} for b in buttons]
    if reply.links:
        card["jump_list"] = [
            {"type": 1, "title": link.label, "url": link.url} for link in reply.links
        ]
    return card


def text_of(reply: Reply) -> str:
    """The reply as one text: buttons as numbered options, links as lines."""
    return render_numbered(reply)


def _utf8_length(text: str) -> int:
    return len(text.encode("utf-8"))


def text_chunks(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """``text`` in pieces of at most ``limit`` UTF-8 bytes, cut at line ends where possible."""
    return split_text(text, limit, _utf8_length)


def robot_markdown(reply: Reply, limit: int = MARKDOWN_LIMIT) -> str:
    """The markdown a group robot posts for ``reply`` (buttons left out)."""
    lines = [reply.text] if reply.text else []
    lines.extend(f"[{link.label}]({link.url})" for link in reply.links)
    content = "\n".join(lines)
    if len(content.encode("utf-8")) <= limit:
        return content
    return split_text(content, limit - len("…".encode()), _utf8_length)[0] + "…"
