"""Database access of the dialog runtime: identities, conversation rows, processed events.

Each inbound event is handled in one short transaction: :func:`claim_event` (an insert that
does nothing on a duplicate, so a redelivery is recognised without an exception),
:func:`load_person` (the chat identity joined with its conversation) and :func:`save_state`
(an optimistic update guarded by the version that was read, so two processes handling the same
person at once cannot both win).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ChatIdentity
from storage.models_dialogs import Conversation, ProcessedEvent

__all__ = [
    "ConcurrentStep",
    "Person",
    "claim_event",
    "load_person",
    "prune",
    "save_state",
]


class ConcurrentStep(Exception):
    """Another process advanced this conversation while the step ran; retry the event."""


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


def _insert(session: AsyncSession, table: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return pg_insert(table)
    return sqlite_insert(table)


async def claim_event(session: AsyncSession, channel: str, event_id: str, now: datetime) -> bool:
    """Record that ``event_id`` is being handled; ``False`` if it already was."""
    stmt = (
        _insert(session, ProcessedEvent)
        .values(channel=channel, event_id=event_id, processed_at=now)
        .on_conflict_do_nothing(index_elements=["channel", "event_id"])
    )
    result = await session.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]


_PERSON_COLUMNS = (
    ChatIdentity.id,
    ChatIdentity.locale,
    ChatIdentity.role,
    ChatIdentity.township_id,
    ChatIdentity.unit_id,
    Conversation.flow,
    Conversation.state,
    Conversation.version,
    Conversation.updated_at,
    Conversation.identity_id,
)


async def _select_person(session: AsyncSession, channel: str, external_id: str) -> Person | None:
    stmt = (
        select(*_PERSON_COLUMNS)
        .select_from(ChatIdentity)
        .outerjoin(Conversation, Conversation.identity_id == ChatIdentity.id)
        .where(ChatIdentity.channel == channel, ChatIdentity.external_id == external_id)
    )
    row = (await session.execute(stmt)).first()
    if row is None:
        return None
    return Person(
        identity_id=row[0],
        channel=channel,
        external_id=external_id,
        locale=row[1],
        role=row[2],
        township_id=row[3],
        unit_id=row[4],
        flow=row[5],
        state=dict(row[6] or {}),
        version=row[7] or 0,
        updated_at=row[8],
        has_conversation=row[9] is not None,
    )


async def load_person(
    session: AsyncSession, channel: str, external_id: str, locale: str, now: datetime
) -> Person:
    """The identity and conversation of a person, creating the identity on first contact
    (with ``locale`` as its language)."""
    person = await _select_person(session, channel, external_id)
    if person is not None:
        return person
    await session.execute(
        _insert(session, ChatIdentity)
        .values(
            channel=channel,
            external_id=external_id,
            locale=locale,
            role="resident",
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["channel", "external_id"])
    )
    person = await _select_person(session, channel, external_id)
    if person is None:  # pragma: no cover - the insert above guarantees a row
        raise RuntimeError("chat identity vanished")
    return person


async def save_state(
    session: AsyncSession,
    person: Person,
    flow: str | None,
    state: dict[str, Any],
    now: datetime,
) -> int:
    """Store the conversation after a step; return the new version.

    Raises :class:`ConcurrentStep` when another transaction changed the row since it was read.
    """
    new_version = person.version + 1
    if not person.has_conversation:
        result = await session.execute(
            _insert(session, Conversation)
            .values(
                identity_id=person.identity_id,
                flow=flow,
                state=state,
                version=new_version,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["identity_id"])
        )
    else:
        result = await session.execute(
            update(Conversation)
            .where(
                Conversation.identity_id == person.identity_id,
                Conversation.version == person.version,
            )
            .values(flow=flow, state=state, version=new_version, updated_at=now)
        )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise ConcurrentStep(person.identity_id)
    return new_version


async def prune(
    session: AsyncSession,
    now: datetime,
    *,
    events_older_than: timedelta = timedelta(days=3),
    conversations_idle_for: timedelta = timedelta(days=30),
) -> tuple[int, int]:
    """Forget old processed-event ids (Telegram redelivers for at most a day) and conversation
    rows idle for a long time; return ``(events, conversations)`` deleted."""
    events = await session.execute(
        delete(ProcessedEvent).where(ProcessedEvent.processed_at < now - events_older_than)
    )
    conversations = await session.execute(
        delete(Conversation).where(Conversation.updated_at < now - conversations_idle_for)
    )
    return events.rowcount, conversations.rowcount  # type: ignore[attr-defined]
