"""Answering numbered options with the number or the option's words.

WeCom text has no buttons: options go out as ``1. 满意`` lines (or as a template card, whose
presses come back as payloads anyway). The dialog runtime already maps a typed number to the
button it stands for, but it keeps only payloads, not labels. So, in the step's transaction,
the channel remembers the labels and payloads of the last options it showed each member
(:class:`~storage.models_wecom.WeComChoice`), and before the next step it turns a typed
"满意", "1." or "１" into that option's payload — but only while those options are still the
conversation's current ones (the payload's version equals the conversation's version).
Otherwise the text goes to the dialog unchanged, so free text is never mistaken for an old
option.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core import payloads
from core.messages import Reply
from storage.models import ChatIdentity
from storage.models_dialogs import Conversation
from storage.models_wecom import WeComChoice
from storage.types import table_of

__all__ = ["match_choice", "normalize", "remember", "resolve"]

_NUMBER = re.compile(r"(\d{1,3})[.。、)）]?")
_TRAILING = ".。!！,，、 "
_MARKS = "✅✓☑ "


def normalize(text: str) -> str:
    """Text compared with labels: NFKC (full-width to half-width), trimmed, case-folded."""
    folded = unicodedata.normalize("NFKC", text).strip().casefold()
    return folded.rstrip(_TRAILING)


def match_choice(text: str, labels: Sequence[str]) -> int | None:
    """The index of the option ``text`` picks: its number (from 1) or its words; else ``None``."""
    typed = normalize(text)
    if not typed:
        return None
    number = _NUMBER.fullmatch(typed)
    if number is not None:
        index = int(number.group(1)) - 1
        return index if 0 <= index < len(labels) else None
    found = [i for i, label in enumerate(labels) if normalize(label.lstrip(_MARKS)) == typed]
    return found[0] if len(found) == 1 else None


async def remember(session: AsyncSession, user_id: str, reply: Reply, now: datetime) -> None:
    """Keep the options of ``reply`` as the ones last shown to ``user_id``."""
    choices = [[b.label, b.payload] for b in reply.flat_buttons]
    values = {"user_id": user_id, "choices": choices, "updated_at": now}
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(table_of(WeComChoice)).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["user_id"], set_={"choices": choices, "updated_at": now}
    )
    await session.execute(stmt)


async def resolve(
    session: AsyncSession, secret: bytes, channel: str, user_id: str, text: str
) -> str | None:
    """The payload of the current option ``text`` picks, or ``None``."""
    stored = await session.get(WeComChoice, user_id)
    if stored is None or not stored.choices:
        return None
    labels = [str(choice[0]) for choice in stored.choices]
    index = match_choice(text, labels)
    if index is None:
        return None
    payload = str(stored.choices[index][1])
    try:
        pressed = payloads.verify(secret, f"{channel}:{user_id}", payload)
    except payloads.PayloadError:
        return None
    version = (
        await session.execute(
            select(col(Conversation.version))
            .join(ChatIdentity, col(ChatIdentity.id) == col(Conversation.identity_id))
            .where(col(ChatIdentity.channel) == channel, col(ChatIdentity.external_id) == user_id)
        )
    ).scalar_one_or_none()
    return payload if version == pressed.version else None
