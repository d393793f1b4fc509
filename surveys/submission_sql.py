"""The statements of a submission batch, run straight on the database driver.

:func:`surveys.submission.submit_many` decides in Python which submissions of a batch are
stored; this module does its reads and writes. Each is one fixed SQL statement per batch
(per survey for the duplicate checks), whatever the batch size: the lists of keys go in as one
JSON array (SQLite ``json_each``) or one array parameter per column (PostgreSQL ``= ANY`` /
``unnest``), rows to insert too.
Going through SQLAlchemy's statement compilation and per-row parameter processing cost about
half of the server's CPU per submission; this way the driver gets plain tuples.

The statements run on the session's own driver connection (``aiosqlite`` or ``asyncpg``), so
they are part of the caller's transaction and commit or roll back with it. A driver error
caused by a constraint comes back as SQLAlchemy's :class:`~sqlalchemy.exc.IntegrityError`, a
busy database or a deadlock as :class:`~sqlalchemy.exc.OperationalError`, as the callers
expect.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.types import UTCDateTime

__all__ = [
    "ANSWER_COLUMNS",
    "RESPONSE_COLUMNS",
    "SQLiteStatements",
    "SubmissionSQL",
    "lookup_statements",
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
"""The columns of a ``survey_response`` row as :meth:`SubmissionSQL.insert_responses` takes it."""

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
"""The columns of a ``survey_answer`` row as :meth:`SubmissionSQL.insert_answers` takes it."""

_PG_RESPONSE_TYPES = ("text",) * 7 + ("bigint", "boolean", "timestamptz")
_PG_ANSWER_TYPES = ("bigint",) + ("text",) * 6 + ("boolean",)


class SubmissionSQL(Protocol):
    """The reads and writes of one submission batch (rows are plain tuples)."""

    async def states(self, codes: Sequence[str]) -> list[Any]:
        """``(code, status, opens_at, closes_at)`` of the surveys ``codes`` (aware datetimes)."""
        ...

    async def replays(self, survey: str, keys: Sequence[str]) -> list[Any]:
        """``(idempotency_key, id, township, request_hash)`` of stored responses of ``survey``
        with one of ``keys``."""
        ...

    async def answered(self, survey: str, respondents: Sequence[str]) -> list[Any]:
        """``(respondent, id)`` of stored responses of ``survey`` by one of ``respondents``."""
        ...

    async def tokens(self, hashes: Sequence[str]) -> list[Any]:
        """``(id, token_hash, survey, township, used_at)`` of the invitations with one of
        ``hashes`` (``used_at`` is only tested for ``None``)."""
        ...

    async def insert_responses(self, rows: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Insert ``rows`` (:data:`RESPONSE_COLUMNS`); ``(id, survey, respondent)`` of each."""
        ...

    async def insert_answers(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert ``rows`` (:data:`ANSWER_COLUMNS`)."""
        ...

    async def mark_used(self, rows: Sequence[tuple[int, datetime]]) -> int:
        """Set ``used_at`` of the unused invitations ``(id, now)``; how many were updated."""
        ...


_SQLITE = {
    "states": "SELECT code, status, opens_at, closes_at FROM survey_state"
    " WHERE code IN (SELECT value FROM json_each(?))",
    "replays": "SELECT idempotency_key, id, township, request_hash FROM survey_response"
    " WHERE survey = ? AND idempotency_key IN (SELECT value FROM json_each(?))",
    "answered": "SELECT respondent, id FROM survey_response"
    " WHERE survey = ? AND respondent IN (SELECT value FROM json_each(?))",
    "tokens": "SELECT id, token_hash, survey, township, used_at FROM survey_invitation"
    " WHERE token_hash IN (SELECT value FROM json_each(?))",
    "insert_responses": f"INSERT INTO survey_response ({', '.join(RESPONSE_COLUMNS)}) SELECT "
    + ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(RESPONSE_COLUMNS)))
    + " FROM json_each(?) RETURNING id, survey, respondent",
    "insert_answers": f"INSERT INTO survey_answer ({', '.join(ANSWER_COLUMNS)}) SELECT "
    + ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(ANSWER_COLUMNS)))
    + " FROM json_each(?)",
    "mark_used": "UPDATE survey_invitation SET used_at = (SELECT json_extract(u.value, '$[1]')"
    " FROM json_each(?1) AS u WHERE json_extract(u.value, '$[0]') = survey_invitation.id)"
    " WHERE id IN (SELECT json_extract(value, '$[0]') FROM json_each(?1)) AND used_at IS NULL",
}

_PG = {
    "states": "SELECT code, status, opens_at, closes_at FROM survey_state"
    " WHERE code = ANY($1::text[])",
    # Each key is looked up on its own (a LATERAL subquery, kept from being flattened into a
    # join by OFFSET 0) with an equality on every column of a unique index. With
    # "= ANY(array)", the plan made while a new survey's table had no statistics descended
    # the index by survey alone and filtered every response of the survey for each batch.
    "replays": "SELECT r.idempotency_key, r.id, r.township, r.request_hash"
    " FROM unnest($2::text[]) AS k(v) CROSS JOIN LATERAL (SELECT * FROM survey_response"
    " WHERE survey = $1 AND idempotency_key = k.v OFFSET 0) AS r",
    "answered": "SELECT r.respondent, r.id FROM unnest($2::text[]) AS k(v) CROSS JOIN LATERAL"
    " (SELECT respondent, id FROM survey_response WHERE survey = $1 AND respondent = k.v"
    " OFFSET 0) AS r",
    "tokens": "SELECT i.id, i.token_hash, i.survey, i.township, i.used_at"
    " FROM unnest($1::text[]) AS k(v) CROSS JOIN LATERAL (SELECT * FROM survey_invitation"
    " WHERE token_hash = k.v OFFSET 0) AS i",
    "insert_responses": f"INSERT INTO survey_response ({', '.join(RESPONSE_COLUMNS)})"
    " SELECT * FROM unnest("
    + ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(_PG_RESPONSE_TYPES))
    + ") RETURNING id, survey, respondent",
    "insert_answers": f"INSERT INTO survey_answer ({', '.join(ANSWER_COLUMNS)})"
    " SELECT * FROM unnest("
    + ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(_PG_ANSWER_TYPES))
    + ")",
    "mark_used": "UPDATE survey_invitation AS i SET used_at = u.at"
    " FROM unnest($1::bigint[], $2::timestamptz[]) AS u(id, at)"
    " WHERE i.id = u.id AND i.used_at IS NULL RETURNING i.id",
}


def lookup_statements(dialect: str) -> dict[str, str]:
    """The duplicate-check statements (``replays``, ``answered``) as sent on ``dialect``
    (``sqlite`` or ``postgresql``), for checking their query plans."""
    sql = _SQLITE if dialect == "sqlite" else _PG
    return {name: sql[name] for name in ("replays", "answered")}


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


def _sqlite_statement(name: str, args: tuple[Any, ...], to_db: Any) -> tuple[str, Any, bool]:
    """``(sql, params, count)`` of method ``name`` of :class:`SubmissionSQL` on SQLite
    (``count``: the result is the number of rows changed, else the rows returned); ``to_db``
    converts a timestamp to its stored form.

    Every statement is one ``sqlite3_step`` whatever the batch size (rows travel as one JSON
    array, unpacked by ``json_each``): the driver gives up the GIL once per statement rather
    than once per row, and a thread that must win the GIL back from a busy event loop waits
    up to the interpreter's switch interval each time.
    """
    sql = _SQLITE[name]
    if name in ("replays", "answered"):
        survey, values = args
        return sql, (survey, json.dumps(list(values))), False
    if name in ("tokens", "states"):
        return sql, (json.dumps(list(args[0])),), False
    if name == "insert_responses":
        last = len(RESPONSE_COLUMNS) - 1
        doc = [(*row[:last], to_db(row[last])) for row in args[0]]
        return sql, (json.dumps(doc, ensure_ascii=False),), False
    if name == "insert_answers":
        return sql, (json.dumps(args[0], ensure_ascii=False),), True
    if name == "mark_used":
        return sql, (json.dumps([(ident, to_db(now)) for ident, now in args[0]]),), True
    raise ValueError(f"unknown statement {name}")


def _sqlite_states(rows: list[Any], from_db: Any) -> list[Any]:
    """Survey state rows with their stored timestamps as aware datetimes."""
    return [
        (code, status, _or_none(from_db, opens), _or_none(from_db, closes))
        for code, status, opens, closes in rows
    ]


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

    async def states(self, codes: Sequence[str]) -> list[Any]:
        return _sqlite_states(cast(list[Any], await self._run("states", codes)), self._from_db)

    async def _run(self, name: str, *args: Any) -> Any:
        sql, params, count = _sqlite_statement(name, args, self._time)
        try:
            if count:
                return int((await self._db.execute(sql, params)).rowcount)
            return list(await self._db.execute_fetchall(sql, params))
        except sqlite3.Error as exc:
            raise translated(exc, sql) from exc

    async def replays(self, survey: str, keys: Sequence[str]) -> list[Any]:
        return cast(list[Any], await self._run("replays", survey, keys))

    async def answered(self, survey: str, respondents: Sequence[str]) -> list[Any]:
        return cast(list[Any], await self._run("answered", survey, respondents))

    async def tokens(self, hashes: Sequence[str]) -> list[Any]:
        return cast(list[Any], await self._run("tokens", hashes))

    async def insert_responses(self, rows: Sequence[tuple[Any, ...]]) -> list[Any]:
        return cast(list[Any], await self._run("insert_responses", rows))

    async def insert_answers(self, rows: Sequence[tuple[Any, ...]]) -> None:
        await self._run("insert_answers", rows)

    async def mark_used(self, rows: Sequence[tuple[int, datetime]]) -> int:
        return cast(int, await self._run("mark_used", rows))


class SQLiteStatements:
    """The batch statements on a plain ``sqlite3`` connection, called in its own thread
    (the synchronous twin of :class:`SubmissionSQL`, for :func:`surveys.submission.run_batch_sync`).
    """

    def __init__(self, conn: sqlite3.Connection, dialect: Any) -> None:
        self._conn = conn
        self._time, self._from_db = _sqlite_times(dialect)

    def states(self, codes: Sequence[str]) -> list[Any]:
        """``(code, status, opens_at, closes_at)`` of the surveys ``codes``."""
        return _sqlite_states(self.run("states", (codes,)), self._from_db)

    def run(self, name: str, args: tuple[Any, ...]) -> Any:
        """Run method ``name`` of :class:`SubmissionSQL` with ``args``; its result."""
        sql, params, count = _sqlite_statement(name, args, self._time)
        try:
            if count:
                return self._conn.execute(sql, params).rowcount
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise translated(exc, sql) from exc


class _Postgres:
    """:class:`SubmissionSQL` on an ``asyncpg`` connection (one round trip per statement)."""

    def __init__(self, driver: Any) -> None:
        self._pg = driver

    async def _fetch(self, name: str, *params: Any) -> list[Any]:
        try:
            return list(await self._pg.fetch(_PG[name], *params))
        except Exception as exc:
            raise translated(exc, _PG[name]) from exc

    async def _write(self, name: str, *params: Any) -> list[Any]:
        if not self._pg.is_in_transaction():
            # SQLAlchemy starts the transaction with the session's first statement; a write
            # sent before it would commit on its own.
            raise RuntimeError("submission writes need the session's transaction started")
        return await self._fetch(name, *params)

    async def states(self, codes: Sequence[str]) -> list[Any]:
        return await self._fetch("states", list(codes))

    async def replays(self, survey: str, keys: Sequence[str]) -> list[Any]:
        return await self._fetch("replays", survey, list(keys))

    async def answered(self, survey: str, respondents: Sequence[str]) -> list[Any]:
        return await self._fetch("answered", survey, list(respondents))

    async def tokens(self, hashes: Sequence[str]) -> list[Any]:
        return await self._fetch("tokens", list(hashes))

    async def insert_responses(self, rows: Sequence[tuple[Any, ...]]) -> list[Any]:
        return await self._write("insert_responses", *(list(c) for c in zip(*rows, strict=True)))

    async def insert_answers(self, rows: Sequence[tuple[Any, ...]]) -> None:
        await self._write("insert_answers", *(list(c) for c in zip(*rows, strict=True)))

    async def mark_used(self, rows: Sequence[tuple[int, datetime]]) -> int:
        ids = [ident for ident, _ in rows]
        times = [now for _, now in rows]
        return len(await self._write("mark_used", ids, times))


async def submission_sql(session: AsyncSession) -> SubmissionSQL:
    """The batch statements on ``session``'s driver connection, inside its transaction.

    Reads may come first; writes need a statement of the transaction run through the session
    before them (on PostgreSQL the transaction starts with SQLAlchemy's first statement;
    writes sent before it would each commit on their own, so they are refused then).
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
