"""Database access of the dialog runtime: identities, conversation rows, processed events.

Each inbound event is handled in one short transaction: :func:`claim_event` (an insert that
does nothing on a duplicate, so a redelivery is recognised without an exception),
:func:`load_person` (the chat identity joined with its conversation) and :func:`save_state`
(an optimistic update guarded by the version that was read, so two processes handling the same
person at once cannot both win). :func:`claim_and_load` is the first two together (on SQLite one
statement).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import JSON, bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel import col

from core.dialog import Person
from storage.models import ChatIdentity
from storage.models_dialogs import Conversation, ProcessedEvent
from storage.types import UTCDateTime, table_of

__all__ = [
    "ConcurrentStep",
    "Person",
    "claim_and_load",
    "claim_event",
    "load_person",
    "prune",
    "save_state",
]


class ConcurrentStep(Exception):
    """Another process advanced this conversation while the step ran; retry the event."""


# The statements of a step are built once, here, for both dialects; each step only binds its
# parameters (building and coercing SQLAlchemy constructs on every step cost more than running
# them). They are Core statements on the tables and run on the session's connection, in the
# session's transaction, without the ORM layer (nothing here needs identity-mapped objects).
_IDENTITY = table_of(ChatIdentity)
_NEW_ROLE = "resident"  # a chat identity's role when it is first seen
_CONVERSATION = table_of(Conversation)
_EVENT = table_of(ProcessedEvent)


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
            role=_NEW_ROLE,
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

# The row of _SELECT_PERSON as one JSON array (SQLite), for the claim's RETURNING clause.
_PERSON_AS_JSON = _SELECT_PERSON.with_only_columns(
    func.json_array(*_SELECT_PERSON.selected_columns)
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


class _SQLiteSteps:
    """The step statements compiled for SQLite, run straight on the aiosqlite connection.

    Through SQLAlchemy's aiosqlite adapter every statement costs three or four hand-offs to the
    driver's thread (open a cursor, execute, fetch, close); here each is one. The SQL text and
    the value conversions (UTC timestamps, JSON) are SQLAlchemy's own, compiled once, and the
    statements run on the session's DBAPI connection, so they are part of its transaction.
    """

    def __init__(self, dialect: Any) -> None:
        inserts = _INSERTS["sqlite"]
        self.claim = self._compile(inserts["claim"], dialect)
        self.identity = self._compile(inserts["identity"], dialect)
        self.insert_state = self._compile(inserts["conversation"], dialect)
        self.update_state = self._compile(_UPDATE_STATE, dialect)
        self.select_person = self._compile(_SELECT_PERSON, dialect)
        # The claim whose RETURNING clause reads the person (one JSON array, or NULL when the
        # identity is new): no row back means the event was handled before.
        person = self._compile(_PERSON_AS_JSON, dialect)
        self.claim_person = (
            f"{self.claim[0]} RETURNING ({person[0]})",
            self.claim[1] + person[1],
            {**self.claim[2], **person[2]},
        )
        ts = UTCDateTime().dialect_impl(dialect)
        js = JSON().dialect_impl(dialect)
        self.ts_in = ts.bind_processor(dialect) or (lambda v: v)
        self.ts_out = ts.result_processor(dialect, None) or (lambda v: v)
        self.json_in = js.bind_processor(dialect) or (lambda v: v)
        self.json_out = js.result_processor(dialect, None) or (lambda v: v)

    @staticmethod
    def _compile(stmt: Any, dialect: Any) -> tuple[str, tuple[str, ...], dict[str, Any]]:
        compiled = stmt.compile(dialect=dialect)
        return compiled.string, tuple(compiled.positiontup or ()), dict(compiled.params)

    @staticmethod
    def args(sql: tuple[str, tuple[str, ...], dict[str, Any]], values: dict[str, Any]) -> list[Any]:
        """The positional parameters of ``sql`` (literals of the statement where not given)."""
        defaults = sql[2]
        return [values[name] if name in values else defaults[name] for name in sql[1]]


_sqlite_steps: _SQLiteSteps | None = None
_DRIVER_KEY = "pufa.dialogs.driver"
"""Where a session keeps its transaction's driver connection (see :func:`_sqlite`)."""


async def _sqlite(session: AsyncSession) -> tuple[Any, _SQLiteSteps] | None:
    """The session's aiosqlite connection and the compiled statements, or ``None`` when the
    database is not SQLite on aiosqlite (then the Core statements run through SQLAlchemy).

    Found once per transaction of the session (each lookup through SQLAlchemy is a greenlet
    round trip, and a step makes four or five of them), and kept with that transaction, so a
    later transaction of the same session, perhaps on another connection, looks it up again.
    """
    global _sqlite_steps
    current = session.sync_session.get_transaction()
    cached = session.info.get(_DRIVER_KEY)
    if cached is not None and current is not None and cached[0] is current:
        return cached[1]
    conn = await session.connection()
    found: tuple[Any, _SQLiteSteps] | None = None
    if conn.dialect.driver == "aiosqlite":
        if _sqlite_steps is None:
            _sqlite_steps = _SQLiteSteps(conn.dialect)
        raw = await conn.get_raw_connection()
        found = (raw.driver_connection, _sqlite_steps)
    session.info[_DRIVER_KEY] = (session.sync_session.get_transaction(), found)
    return found


async def claim_event(session: AsyncSession, channel: str, event_id: str, now: datetime) -> bool:
    """Record that ``event_id`` is being handled; ``False`` if it already was."""
    fast = await _sqlite(session)
    if fast is not None:
        driver, sql = fast
        values = {"p_channel": channel, "p_event_id": event_id, "p_now": sql.ts_in(now)}
        cursor = await driver.execute(sql.claim[0], sql.args(sql.claim, values))
        return bool(cursor.rowcount)
    conn, inserts = await _connection(session)
    result = await conn.execute(
        inserts["claim"], {"p_channel": channel, "p_event_id": event_id, "p_now": now}
    )
    return bool(result.rowcount)


async def _select_person(session: AsyncSession, channel: str, external_id: str) -> Person | None:
    fast = await _sqlite(session)
    if fast is not None:
        driver, sql = fast
        values = {"p_channel": channel, "p_external_id": external_id}
        rows = await driver.execute_fetchall(
            sql.select_person[0], sql.args(sql.select_person, values)
        )
        if not rows:
            return None
        return _sqlite_person(sql, channel, external_id, next(iter(rows)))
    conn = await session.connection()
    result = await conn.execute(
        _SELECT_PERSON, {"p_channel": channel, "p_external_id": external_id}
    )
    first = result.first()
    return None if first is None else _person(channel, external_id, first)


def _sqlite_person(sql: _SQLiteSteps, channel: str, external_id: str, row: Any) -> Person:
    """A person from a row of ``_SELECT_PERSON`` as SQLite stores it (JSON text, timestamps)."""
    values = list(row)
    values[6] = sql.json_out(values[6])
    values[8] = sql.ts_out(values[8])
    return _person(channel, external_id, values)


def _person(channel: str, external_id: str, row: Any) -> Person:
    """A person from a row of ``_SELECT_PERSON`` (values converted)."""
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


async def claim_and_load(
    session: AsyncSession,
    channel: str,
    event_id: str,
    external_id: str,
    locale: str,
    now: datetime,
) -> Person | None:
    """:func:`claim_event` and then :func:`load_person`: the person, or ``None`` when
    ``event_id`` was handled before (then nothing is read or created).

    On SQLite it is one statement, the claim's ``INSERT`` returning the person's row: a step
    waits once less for the driver's thread and the event loop, and on SQLite the steps take
    turns, so each wait is every waiting step's."""
    fast = await _sqlite(session)
    if fast is None:
        if not await claim_event(session, channel, event_id, now):
            return None
        return await load_person(session, channel, external_id, locale, now)
    driver, sql = fast
    values = {
        "p_channel": channel,
        "p_event_id": event_id,
        "p_now": sql.ts_in(now),
        "p_external_id": external_id,
    }
    rows = list(
        await driver.execute_fetchall(sql.claim_person[0], sql.args(sql.claim_person, values))
    )
    if not rows:
        return None
    (found,) = rows[0]
    if found is not None:
        return _sqlite_person(sql, channel, external_id, orjson.loads(found))
    return await _new_person(session, channel, external_id, locale, now)


async def load_person(
    session: AsyncSession, channel: str, external_id: str, locale: str, now: datetime
) -> Person:
    """The identity and conversation of a person, creating the identity on first contact
    (with ``locale`` as its language)."""
    person = await _select_person(session, channel, external_id)
    if person is not None:
        return person
    return await _new_person(session, channel, external_id, locale, now)


async def _new_person(
    session: AsyncSession, channel: str, external_id: str, locale: str, now: datetime
) -> Person:
    """Create the identity of a person not found (unless another transaction just did)."""
    values = {"p_channel": channel, "p_external_id": external_id, "p_locale": locale}
    fast = await _sqlite(session)
    if fast is not None:
        driver, sql = fast
        values["p_now"] = sql.ts_in(now)
        cursor = await driver.execute(sql.identity[0], sql.args(sql.identity, values))
        if cursor.rowcount == 1:
            # Created just now, so known without reading it back: no role but a resident's,
            # no township or unit, no conversation yet.
            return Person(
                identity_id=cursor.lastrowid,
                channel=channel,
                external_id=external_id,
                locale=locale,
                role=_NEW_ROLE,
                township_id=None,
                unit_id=None,
                flow=None,
                state={},
                version=0,
                updated_at=None,
                has_conversation=False,
            )
    else:
        conn, inserts = await _connection(session)
        await conn.execute(inserts["identity"], {**values, "p_now": now})
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
    params: dict[str, Any] = {
        "p_identity_id": person.identity_id,
        "p_old_version": person.version,
        "p_flow": flow,
        "p_state": state,
        "p_new_version": new_version,
        "p_now": now,
    }
    fast = await _sqlite(session)
    if fast is not None:
        driver, sql = fast
        params["p_state"] = sql.json_in(state)
        params["p_now"] = sql.ts_in(now)
        compiled = sql.update_state if person.has_conversation else sql.insert_state
        result: Any = await driver.execute(compiled[0], sql.args(compiled, params))
    else:
        conn, inserts = await _connection(session)
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
        delete(ProcessedEvent).where(col(ProcessedEvent.processed_at) < now - events_older_than)
    )
    conversations = await session.execute(
        delete(Conversation).where(col(Conversation.updated_at) < now - conversations_idle_for)
    )
    return events.rowcount, conversations.rowcount  # type: ignore[attr-defined]
