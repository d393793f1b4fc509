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

from sqlalchemy import JSON, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from storage.models import ChatIdentity
from storage.models_dialogs import Conversation, ProcessedEvent
from storage.types import UTCDateTime

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


# The statements of a step are built once, here, for both dialects; each step only binds its
# parameters (building and coercing SQLAlchemy constructs on every step cost more than running
# them). They are Core statements on the tables and run on the session's connection, in the
# session's transaction, without the ORM layer (nothing here needs identity-mapped objects).
_IDENTITY = ChatIdentity.__table__
_CONVERSATION = Conversation.__table__
_EVENT = ProcessedEvent.__table__


def _inserts(insert: Any) -> dict[str, Any]:
    return {
        "claim": insert(_EVENT)
        .values(
            channel=bindparam("p_channel"),
            event_id=bindparam("p_event_id"),
            processed_at=bindparam("p_now", type_=UTCDateTime),
        )
        .on_conflict_do_nothing(index_elements=["channel", "event_id"]),
        "identity": insert(_IDENTITY)
        .values(
            channel=bindparam("p_channel"),
            external_id=bindparam("p_external_id"),
            locale=bindparam("p_locale"),
            role="resident",
            created_at=bindparam("p_now", type_=UTCDateTime),
        )
        .on_conflict_do_nothing(index_elements=["channel", "external_id"]),
        "conversation": insert(_CONVERSATION)
        .values(
            identity_id=bindparam("p_identity_id"),
            flow=bindparam("p_flow"),
            state=bindparam("p_state", type_=JSON),
            version=bindparam("p_new_version"),
            updated_at=bindparam("p_now", type_=UTCDateTime),
        )
        .on_conflict_do_nothing(index_elements=["identity_id"]),
    }


_INSERTS: dict[str, dict[str, Any]] = {
    "postgresql": _inserts(pg_insert),
    "sqlite": _inserts(sqlite_insert),
}

_SELECT_PERSON = (
    select(
        _IDENTITY.c.id,
        _IDENTITY.c.locale,
        _IDENTITY.c.role,
        _IDENTITY.c.township_id,
        _IDENTITY.c.unit_id,
        _CONVERSATION.c.flow,
        _CONVERSATION.c.state,
        _CONVERSATION.c.version,
        _CONVERSATION.c.updated_at,
        _CONVERSATION.c.identity_id,
    )
    .select_from(_IDENTITY.outerjoin(_CONVERSATION, _CONVERSATION.c.identity_id == _IDENTITY.c.id))
    .where(
        _IDENTITY.c.channel == bindparam("p_channel"),
        _IDENTITY.c.external_id == bindparam("p_external_id"),
    )
)

_UPDATE_STATE = (
    update(_CONVERSATION)
    .where(
        _CONVERSATION.c.identity_id == bindparam("p_identity_id"),
        _CONVERSATION.c.version == bindparam("p_old_version"),
    )
    .values(
        flow=bindparam("p_flow"),
        state=bindparam("p_state", type_=JSON),
        version=bindparam("p_new_version"),
        updated_at=bindparam("p_now", type_=UTCDateTime),
    )
)


async def _connection(session: AsyncSession) -> tuple[AsyncConnection, dict[str, Any]]:
    """The session's connection (in its transaction) and the inserts of its dialect."""
    conn = await session.connection()
    return conn, _INSERTS.get(conn.dialect.name, _INSERTS["sqlite"])


async def claim_event(session: AsyncSession, channel: str, event_id: str, now: datetime) -> bool:
    """Record that ``event_id`` is being handled; ``False`` if it already was."""
    conn, inserts = await _connection(session)
    result = await conn.execute(
        inserts["claim"], {"p_channel": channel, "p_event_id": event_id, "p_now": now}
    )
    return bool(result.rowcount)


async def _select_person(conn: AsyncConnection, channel: str, external_id: str) -> Person | None:
    result = await conn.execute(
        _SELECT_PERSON, {"p_channel": channel, "p_external_id": external_id}
    )
    row = result.first()
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
    conn, inserts = await _connection(session)
    person = await _select_person(conn, channel, external_id)
    if person is not None:
        return person
    await conn.execute(
        inserts["identity"],
        {"p_channel": channel, "p_external_id": external_id, "p_locale": locale, "p_now": now},
    )
    person = await _select_person(conn, channel, external_id)
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
    conn, inserts = await _connection(session)
    new_version = person.version + 1
    params = {
        "p_identity_id": person.identity_id,
        "p_old_version": person.version,
        "p_flow": flow,
        "p_state": state,
        "p_new_version": new_version,
        "p_now": now,
    }
    stmt = _UPDATE_STATE if person.has_conversation else inserts["conversation"]
    result = await conn.execute(stmt, params)
    if not result.rowcount:
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
