"""The statements of a submission batch, run straight on the database driver.

:func:`surveys.submission.batch_plan` decides in Python which submissions of a batch are
stored; this module does its one read (:class:`Lookup`: survey states, earlier uses of its
idempotency keys, respondents and tokens) and its one write (:class:`Writes`: responses,
answers, the invitations' use). Lists of keys and rows go in as one JSON array (SQLite
``json_each``) or one array parameter per column (PostgreSQL ``unnest``), whatever the batch
size. Going through SQLAlchemy's statement compilation and per-row parameter processing cost
about half of the server's CPU per submission; this way the driver gets plain tuples.

On PostgreSQL a lookup is one statement and a write is one statement (data-modifying ``WITH``
clauses): a batch is four round trips with ``BEGIN`` and ``COMMIT``. On SQLite each is a few
statements, one ``sqlite3_step`` each.

The statements run on the caller's driver connection (``aiosqlite`` or ``asyncpg``, a
session's or a writer's own), so they are part of the caller's transaction and commit or roll
back with it. A driver error caused by a constraint comes back as SQLAlchemy's
:class:`~sqlalchemy.exc.IntegrityError`, a busy database or a deadlock as
:class:`~sqlalchemy.exc.OperationalError`, as the callers expect.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Protocol, TypeVar, cast

import orjson
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.types import UTCDateTime

__all__ = [
    "ANSWER_COLUMNS",
    "RESPONSE_COLUMNS",
    "SQLITE_STATEMENTS",
    "Found",
    "Lookup",
    "SQLiteStatements",
    "SubmissionSQL",
    "Writes",
    "lookup_statements",
    "postgres_statements",
    "submission_sql",
    "translated",
]

RESPONSE_COLUMNS = (
    "survey",
    "respondent",
    "channel",
    "township",
    "locale",
    "idempotency_key",
    "request_hash",
    "invitation_id",
    "sample",
    "created_at",
)
"""The columns of a ``survey_response`` row in :attr:`Writes.responses`."""

ANSWER_COLUMNS = (
    "response_id",
    "survey",
    "question",
    "value",
    "text",
    "township",
    "channel",
    "sample",
)
"""The columns of a ``survey_answer`` row as stored."""

_PG_RESPONSE_TYPES = ("text",) * 7 + ("bigint", "boolean", "timestamptz")
_R = TypeVar("_R")


@dataclass(slots=True, frozen=True)
class Lookup:
    """What a batch reads before it decides: survey states, earlier uses of its idempotency
    keys and respondents, its invitation tokens (each may be empty)."""

    codes: Sequence[str] = ()
    """Surveys whose state is wanted."""
    keys: Sequence[tuple[str, str]] = ()
    """``(survey, idempotency key)`` pairs."""
    respondents: Sequence[tuple[str, str]] = ()
    """``(survey, respondent)`` pairs."""
    hashes: Sequence[str] = ()
    """Invitation token hashes."""


@dataclass(slots=True)
class Found:
    """The stored rows a :class:`Lookup` found (plain tuples, timestamps aware)."""

    states: list[Any] = field(default_factory=list)
    """``(code, status, opens_at, closes_at)``."""
    replays: list[Any] = field(default_factory=list)
    """``(survey, idempotency_key, id, township, request_hash)``."""
    answered: list[Any] = field(default_factory=list)
    """``(survey, respondent, id)``."""
    tokens: list[Any] = field(default_factory=list)
    """``(id, token_hash, survey, township, used_at)`` (``used_at`` only tested for ``None``)."""


@dataclass(slots=True, frozen=True)
class Writes:
    """What a batch stores: responses and their answers; the invitations the responses carry
    are marked used at the response's ``created_at``."""

    responses: Sequence[tuple[Any, ...]]
    """Rows of :data:`RESPONSE_COLUMNS`."""
    answers: Sequence[tuple[int, str, str | None, str | None]]
    """``(index of the response in responses, question, value, text)``; survey, township,
    channel and the sample mark are the response's."""


class SubmissionSQL(Protocol):
    """The reads and the writes of one submission batch."""

    async def lookup(self, query: Lookup) -> Found:
        """The stored rows ``query`` asks for."""
        ...

    async def write(self, writes: Writes) -> list[int]:
        """Store ``writes`` in the caller's transaction; the ids of the responses, in order.

        Raises ``IntegrityError`` when a unique key is taken or one of the invitations was
        used meanwhile (the caller must roll back: part of the rows may be written)."""
        ...


_INVITATION = RESPONSE_COLUMNS.index("invitation_id")
_CREATED = RESPONSE_COLUMNS.index("created_at")


def _invitation_uses(responses: Sequence[tuple[Any, ...]]) -> list[tuple[int, datetime]]:
    """``(invitation id, created_at)`` of the responses that carry an invitation."""
    return [(row[_INVITATION], row[_CREATED]) for row in responses if row[_INVITATION] is not None]


def _used_meanwhile() -> IntegrityError:
    """Another writer used one of the batch's invitations between its lookup and its write."""
    return IntegrityError("invitation already used", None, Exception("token used"))


# The pairs of the JSON array parameter numbered {0}.
_PAIRS = "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?{0})"


def _json_insert(table: str, columns: Sequence[str]) -> str:
    """An ``INSERT`` of ``columns`` taking its rows as one JSON array of arrays."""
    values = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(columns)))
    return f"INSERT INTO {table} ({', '.join(columns)}) SELECT {values} FROM json_each(?)"


def _row_insert(table: str, columns: Sequence[str]) -> str:
    """An ``INSERT`` of ``columns`` taking one row of parameters (for ``executemany``)."""
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


_SQLITE = {
    # Every read of a batch in one statement and one row (one step, one wait for the GIL
    # afterwards): the rows come back as one JSON array.
    "lookup": "SELECT json_group_array(json_array(k, k1, k2, id, t1, t2, at1, at2)) FROM ("
    "SELECT 's' AS k, code AS k1, status AS k2, NULL AS id, NULL AS t1, NULL AS t2,"
    " opens_at AS at1, closes_at AS at2 FROM survey_state"
    " WHERE code IN (SELECT value FROM json_each(?1))"
    " UNION ALL SELECT 'r', survey, idempotency_key, id, township, request_hash, NULL, NULL"
    f" FROM survey_response WHERE (survey, idempotency_key) IN ({_PAIRS.format(2)})"
    " UNION ALL SELECT 'a', survey, respondent, id, NULL, NULL, NULL, NULL"
    f" FROM survey_response WHERE (survey, respondent) IN ({_PAIRS.format(3)})"
    " UNION ALL SELECT 't', survey, token_hash, id, township, NULL, used_at, NULL"
    " FROM survey_invitation WHERE token_hash IN (SELECT value FROM json_each(?4)))",
    # No RETURNING: it is one step (and one wait for the GIL) per row inserted.
    "insert_responses": _json_insert("survey_response", RESPONSE_COLUMNS),
    # The ids of the responses just inserted, found by their unique (survey, respondent).
    "response_ids": "SELECT json_group_array(json_array(id, survey, respondent))"
    f" FROM survey_response WHERE (survey, respondent) IN ({_PAIRS.format(1)})",
    "insert_answers": _json_insert("survey_answer", ANSWER_COLUMNS),
    # UPDATE … FROM (SQLite 3.33+): one pass over the uses, each invitation found by its key
    # (a correlated subquery per invitation read the whole array again for every row).
    "mark_used": "UPDATE survey_invitation SET used_at = u.at FROM (SELECT json_extract(value,"
    " '$[0]') AS id, json_extract(value, '$[1]') AS at FROM json_each(?1)) AS u"
    " WHERE survey_invitation.id = u.id AND survey_invitation.used_at IS NULL",
}

# The inserts as SQLiteStatements runs them: one row a step, with executemany.
_SQLITE_INSERTS = {
    "insert_responses": _row_insert("survey_response", RESPONSE_COLUMNS),
    "insert_answers": _row_insert("survey_answer", ANSWER_COLUMNS),
}


def _response_rows(rows: Sequence[tuple[Any, ...]], to_db: Any) -> list[tuple[Any, ...]]:
    """Response rows with ``created_at`` in its stored form (``to_db``)."""
    return [(*row[:_CREATED], to_db(row[_CREATED])) for row in rows]


def _insert_rows(name: str, args: tuple[Any, ...], to_db: Any) -> list[tuple[Any, ...]]:
    """The parameter rows of insert ``name`` for ``executemany``."""
    (rows,) = args
    return _response_rows(rows, to_db) if name == "insert_responses" else list(rows)


SQLITE_STATEMENTS: Mapping[str, str] = MappingProxyType(_SQLITE)
"""SQLite's batch statements by name (``lookup``, ``insert_responses``, ``response_ids``,
``insert_answers``, ``mark_used``); each takes its rows as JSON arrays (the writer process
inserts the rows with ``executemany`` instead)."""

# Everything a batch reads in one statement. Each key is looked up on its own (a LATERAL
# subquery, kept from being flattened into a join by OFFSET 0) with an equality on every column
# of a unique index. With "= ANY(array)", the plan made while a new survey's table had no
# statistics descended the index by survey alone and filtered every response of the survey for
# each batch.
_PG_LOOKUP = (
    "SELECT 's', code, status, NULL::bigint, NULL::text, NULL::text, opens_at, closes_at"
    " FROM survey_state WHERE code = ANY($1::text[])"
    " UNION ALL SELECT 'r', r.survey, r.idempotency_key, r.id, r.township, r.request_hash,"
    " NULL, NULL FROM unnest($2::text[], $3::text[]) AS k(s, v) CROSS JOIN LATERAL"
    " (SELECT * FROM survey_response WHERE survey = k.s AND idempotency_key = k.v OFFSET 0) AS r"
    " UNION ALL SELECT 'a', r.survey, r.respondent, r.id, NULL, NULL, NULL, NULL"
    " FROM unnest($4::text[], $5::text[]) AS k(s, v) CROSS JOIN LATERAL"
    " (SELECT survey, respondent, id FROM survey_response"
    " WHERE survey = k.s AND respondent = k.v OFFSET 0) AS r"
    " UNION ALL SELECT 't', i.survey, i.token_hash, i.id, i.township, NULL, i.used_at, NULL"
    " FROM unnest($6::text[]) AS k(v) CROSS JOIN LATERAL"
    " (SELECT * FROM survey_invitation WHERE token_hash = k.v OFFSET 0) AS i"
)

# Everything a batch writes in one statement: the responses, their answers (matched to the
# inserted responses by the unique (survey, respondent)) and the invitations' use. The number of
# invitations marked comes back with every row, for the "used meanwhile" check.
_PG_WRITE = (
    "WITH v AS (SELECT * FROM unnest("
    + ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(_PG_RESPONSE_TYPES))
    + f") WITH ORDINALITY AS v({', '.join(RESPONSE_COLUMNS)}, pos)),"
    f" r AS (INSERT INTO survey_response ({', '.join(RESPONSE_COLUMNS)})"
    f" SELECT {', '.join(RESPONSE_COLUMNS)} FROM v ORDER BY pos RETURNING id, survey, respondent),"
    f" a AS (INSERT INTO survey_answer ({', '.join(ANSWER_COLUMNS)})"
    " SELECT r.id, v.survey, x.question, x.value, x.text, v.township, v.channel, v.sample"
    " FROM unnest($11::bigint[], $12::text[], $13::text[], $14::text[])"
    " AS x(pos, question, value, text) JOIN v ON v.pos = x.pos"
    " JOIN r ON r.survey = v.survey AND r.respondent = v.respondent),"
    " u AS (UPDATE survey_invitation AS i SET used_at = v.created_at FROM v"
    " WHERE i.id = v.invitation_id AND i.used_at IS NULL RETURNING i.id)"
    " SELECT r.id, r.survey, r.respondent, (SELECT count(*) FROM u) FROM r"
)


def lookup_statements(dialect: str, query: Lookup) -> list[tuple[str, Any]]:
    """The statements and parameters reading ``query``'s duplicates (earlier uses of its
    idempotency keys and respondents) on ``dialect`` (``sqlite`` or ``postgresql``), as sent
    by a batch, for checking their query plans."""
    if dialect == "sqlite":
        # No timestamps in a lookup: nothing to convert.
        return [_sqlite_statement("lookup", (query,), None)[:2]]
    return [(_PG_LOOKUP, _pg_lookup_params(query))]


def translated(exc: Exception, statement: str) -> Exception:
    """The SQLAlchemy exception callers handle for driver error ``exc`` (``IntegrityError``
    for a constraint, ``OperationalError`` for a busy database or a deadlock), or ``exc``."""
    if isinstance(exc, sqlite3.IntegrityError) or str(getattr(exc, "sqlstate", "")).startswith(
        "23"
    ):
        return IntegrityError(statement, None, exc)
    if isinstance(exc, sqlite3.OperationalError) or str(getattr(exc, "sqlstate", "")).startswith(
        "40"
    ):
        # A busy SQLite file, or a PostgreSQL deadlock or serialization failure between
        # batches stored side by side: worth the caller's retry.
        return OperationalError(statement, None, exc)
    return exc


# SQLite: a lookup is one statement and a write four, each one ``sqlite3_step`` whatever the
# batch size: rows travel in as one JSON array, unpacked by ``json_each``, and come back as one
# (``json_group_array``), as the driver gives up the GIL for every step, that is for every row
# fetched, and a thread that must win the GIL back from a busy event loop waits each time. The
# sequences are generators of ``(statement, args)`` so that the aiosqlite and the sqlite3
# connection run the same ones.

_Steps = Generator[tuple[str, tuple[Any, ...]], Any, _R]


def _json(value: Any) -> str:
    """``value`` as a JSON text parameter (orjson: the batch's rows are most of the writer's
    own work; SQLite's JSON functions read text, not a blob)."""
    return orjson.dumps(value).decode()


def _sqlite_statement(name: str, args: tuple[Any, ...], to_db: Any) -> tuple[str, Any, bool]:
    """``(sql, params, count)`` of SQLite statement ``name`` (``count``: the result is the
    number of rows changed, else the rows returned); ``to_db`` converts a timestamp to its
    stored form."""
    sql = _SQLITE[name]
    (rows,) = args
    if name == "lookup":
        return (
            sql,
            tuple(
                _json(list(part)) for part in (rows.codes, rows.keys, rows.respondents, rows.hashes)
            ),
            False,
        )
    if name == "insert_responses":
        return sql, (_json(_response_rows(rows, to_db)),), True
    if name == "response_ids":
        who = [(row[0], row[1]) for row in rows]
        return sql, (_json(who),), False
    if name == "insert_answers":
        return sql, (_json(rows),), True
    if name == "mark_used":
        return sql, (_json([(ident, to_db(now)) for ident, now in rows]),), True
    raise ValueError(f"unknown statement {name}")


def _found(rows: Iterable[Sequence[Any]], from_db: Any = None) -> Found:
    """A lookup's rows, each tagged with what it is (``s``, ``r``, ``a``, ``t``: the columns of
    ``_PG_LOOKUP`` and SQLite's ``lookup``), sorted into :class:`Found`; ``from_db`` converts
    the survey states' stored timestamps (SQLite)."""
    found = Found()
    for kind, k1, k2, ident, t1, t2, at1, at2 in rows:
        if kind == "s":
            if from_db is not None:
                at1, at2 = _or_none(from_db, at1), _or_none(from_db, at2)
            found.states.append((k1, k2, at1, at2))
        elif kind == "r":
            found.replays.append((k1, k2, ident, t1, t2))
        elif kind == "a":
            found.answered.append((k1, k2, ident))
        else:
            found.tokens.append((ident, k2, k1, t1, at1))
    return found


def _one_json_row(rows: Sequence[Sequence[Any]]) -> Any:
    """The JSON document a one-row statement (``json_group_array``) returned, decoded."""
    return orjson.loads(rows[0][0])


def _sqlite_lookup(query: Lookup, from_db: Any) -> _Steps[Found]:
    return _found(_one_json_row((yield ("lookup", (query,)))), from_db)


def _sqlite_write(writes: Writes) -> _Steps[list[int]]:
    responses = writes.responses
    yield ("insert_responses", (responses,))
    returned = _one_json_row((yield ("response_ids", (responses,))))
    # Rows come back matched by (survey, respondent), unique among the responses.
    by_who = {(survey, who): rid for rid, survey, who in returned}
    ids = [by_who[(row[0], row[1])] for row in responses]
    if writes.answers:
        rows = []
        for index, question, value, text in writes.answers:
            survey, _, channel, township, *_, sample, _ = responses[index]
            rows.append((ids[index], survey, question, value, text, township, channel, sample))
        yield ("insert_answers", (rows,))
    used = _invitation_uses(responses)
    if used and (yield ("mark_used", (used,))) < len(used):
        raise _used_meanwhile()
    return ids


def _or_none(convert: Any, value: Any) -> Any:
    return None if value is None else convert(value)


@functools.lru_cache(maxsize=8)
def _sqlite_times(dialect: Any) -> tuple[Any, Any]:
    """``(to_db, from_db)``: a timestamp to and from its stored form on SQLite (SQLAlchemy's own
    conversions, built once per dialect; ``to_db`` memoized, as a response and its token's
    use carry the same timestamp)."""
    impl = UTCDateTime().dialect_impl(dialect)
    to_db = impl.bind_processor(dialect) or (lambda v: v)
    from_db = impl.result_processor(dialect, None) or (lambda v: v)
    return functools.lru_cache(maxsize=1024)(to_db), from_db


class _SQLite:
    """:class:`SubmissionSQL` on an ``aiosqlite`` connection (one hand-off per statement)."""

    def __init__(self, driver: Any, dialect: Any) -> None:
        self._db = driver
        self._time, self._from_db = _sqlite_times(dialect)

    async def _drive(self, steps: _Steps[_R]) -> _R:
        try:
            name, args = next(steps)
            while True:
                sql, params, count = _sqlite_statement(name, args, self._time)
                try:
                    if count:
                        result: Any = int((await self._db.execute(sql, params)).rowcount)
                    else:
                        result = list(await self._db.execute_fetchall(sql, params))
                except sqlite3.Error as exc:
                    raise translated(exc, sql) from exc
                name, args = steps.send(result)
        except StopIteration as done:
            return cast(_R, done.value)

    async def lookup(self, query: Lookup) -> Found:
        return await self._drive(_sqlite_lookup(query, self._from_db))

    async def write(self, writes: Writes) -> list[int]:
        return await self._drive(_sqlite_write(writes))


class SQLiteStatements:
    """The batch statements on a plain ``sqlite3`` connection, called in its own thread
    (the synchronous twin of :class:`SubmissionSQL`, for :func:`surveys.submission.run_batch_sync`).

    The responses and answers are inserted with ``executemany`` rather than through
    ``json_each``: alone in the writer process nothing waits for the interpreter lock
    between rows, and reading each column back out of JSON cost more than binding it
    (under the SQLite submission load, 260 against 96 µs a batch for the responses and 735
    against 589 for the answers).
    """

    def __init__(self, conn: sqlite3.Connection, dialect: Any) -> None:
        self._conn = conn
        self._time, self._from_db = _sqlite_times(dialect)

    def _drive(self, steps: _Steps[_R]) -> _R:
        try:
            name, args = next(steps)
            while True:
                insert = _SQLITE_INSERTS.get(name)
                result: Any
                try:
                    if insert is not None:
                        sql = insert
                        cursor = self._conn.executemany(sql, _insert_rows(name, args, self._time))
                        result = cursor.rowcount
                    else:
                        sql, params, count = _sqlite_statement(name, args, self._time)
                        cursor = self._conn.execute(sql, params)
                        result = cursor.rowcount if count else cursor.fetchall()
                except sqlite3.Error as exc:
                    raise translated(exc, sql) from exc
                name, args = steps.send(result)
        except StopIteration as done:
            return cast(_R, done.value)

    def lookup(self, query: Lookup) -> Found:
        """:meth:`SubmissionSQL.lookup`, in the calling thread."""
        return self._drive(_sqlite_lookup(query, self._from_db))

    def write(self, writes: Writes) -> list[int]:
        """:meth:`SubmissionSQL.write`, in the calling thread."""
        return self._drive(_sqlite_write(writes))


def _pg_lookup_params(query: Lookup) -> tuple[list[str], ...]:
    key_surveys = [survey for survey, _ in query.keys]
    keys = [key for _, key in query.keys]
    who_surveys = [survey for survey, _ in query.respondents]
    who = [respondent for _, respondent in query.respondents]
    return list(query.codes), key_surveys, keys, who_surveys, who, list(query.hashes)


class _Postgres:
    """:class:`SubmissionSQL` on an ``asyncpg`` connection: one statement, one round trip, for a
    lookup and for a write.

    With ``autocommit`` a write may run outside a transaction: its one statement commits on
    its own, atomically. It then leaves the invitations' single use to the unique index
    ``uq_response_invitation`` alone (a response carrying an invitation another writer used
    meanwhile fails the statement) instead of also checking, after the fact, that every
    invitation was still unused."""

    def __init__(self, driver: Any, autocommit: bool = False) -> None:
        self._pg = driver
        self._autocommit = autocommit

    async def _fetch(self, sql: str, *params: Any) -> list[Any]:
        try:
            return list(await self._pg.fetch(sql, *params))
        except Exception as exc:
            raise translated(exc, sql) from exc

    async def lookup(self, query: Lookup) -> Found:
        return _found(await self._fetch(_PG_LOOKUP, *_pg_lookup_params(query)))

    async def write(self, writes: Writes) -> list[int]:
        in_transaction = self._pg.is_in_transaction()
        if not (in_transaction or self._autocommit):
            # In a session, SQLAlchemy starts the transaction with its first statement; a
            # write sent before it would commit on its own, past the caller's checks.
            raise RuntimeError("submission writes need a transaction started")
        responses = writes.responses
        columns = [list(c) for c in zip(*responses, strict=True)]
        answers = [list(c) for c in zip(*writes.answers, strict=True)] or [[], [], [], []]
        answers[0] = [index + 1 for index in answers[0]]  # WITH ORDINALITY counts from 1
        rows = await self._fetch(_PG_WRITE, *columns, *answers)
        by_who = {(survey, who): rid for rid, survey, who, _ in rows}
        used = len(_invitation_uses(responses))
        if in_transaction and used and (not rows or rows[0][3] < used):
            raise _used_meanwhile()
        return [by_who[(row[0], row[1])] for row in responses]


def postgres_statements(conn: Any, autocommit: bool = False) -> SubmissionSQL:
    """The batch statements on the ``asyncpg`` connection ``conn``; a write needs a transaction
    open on it, unless ``autocommit`` (then it commits on its own, atomically)."""
    return _Postgres(conn, autocommit)


async def submission_sql(session: AsyncSession) -> SubmissionSQL:
    """The batch statements on ``session``'s driver connection, inside its transaction.

    Lookups may come first; a write needs a statement of the transaction run through the
    session before it (on PostgreSQL the transaction starts with SQLAlchemy's first statement;
    a write sent before it would commit on its own, so it is refused then).
    """
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    dialect = conn.dialect
    if dialect.driver == "aiosqlite":
        return _SQLite(driver, dialect)
    if dialect.driver == "asyncpg":
        return _Postgres(driver)
    raise RuntimeError(
        f"storing submissions needs sqlite+aiosqlite or postgresql+asyncpg, not {dialect.name}"
        f"+{dialect.driver}"
    )
