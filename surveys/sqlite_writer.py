"""Storing submission batches on SQLite in one call: a plain connection off the web loop.

Through the async driver every statement of a batch is a trip to the driver's thread and back,
and each trip waits for the event loop to come round, which under load (the loop busy with
hundreds of requests) is what a batch's time went to. :class:`SQLiteBatchWriter` keeps one
plain ``sqlite3`` connection for the group committer, whose worker runs on an event loop in a
thread of its own (:mod:`surveys.committer`), and stores a whole batch there as a single call:
``BEGIN IMMEDIATE``, :func:`surveys.submission.batch_plan`'s lookup (the survey states with it)
and write, ``COMMIT``. The web server's loop only hands submissions over and gets each batch's
outcomes back.

It is a writer like any other on the file: other connections (the chat dialogs, the console,
another process) wait for its transaction through SQLite's busy timeout, as it waits for theirs.
``BEGIN IMMEDIATE`` takes the write lock first, so the batch's checks and writes see one state
of the database. Errors come back as SQLAlchemy's ``IntegrityError`` / ``OperationalError``,
which the group committer handles (retry one by one, retry later).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from sqlalchemy.engine import Dialect

from storage.db import sqlite_pragmas
from surveys.submission import Submission, SubmitError, SubmitResult, batch_plan, run_batch_sync
from surveys.submission_sql import SQLiteStatements, translated

__all__ = ["SQLiteBatchWriter"]


class SQLiteBatchWriter:
    """Stores batches of submissions on the SQLite file ``path`` (one connection, used from
    the thread that first stores)."""

    def __init__(self, path: str, dialect: Dialect) -> None:
        self._path = path
        self._dialect = dialect
        self._conn: sqlite3.Connection | None = None
        self._sql: SQLiteStatements | None = None

    async def store(self, items: Sequence[Submission]) -> list[SubmitResult | SubmitError]:
        """Store ``items`` in one transaction (committed when this returns); their outcomes.

        Blocks the calling event loop for the batch: it runs on the group committer's loop in
        a thread of its own, which has nothing else to do meanwhile."""
        return self._store(list(items))

    async def close(self) -> None:
        """Close the connection."""
        self._close()

    def _connect(self) -> tuple[sqlite3.Connection, SQLiteStatements]:
        if self._conn is None or self._sql is None:
            # Autocommit mode: the transactions are the explicit BEGIN/COMMIT of each batch.
            conn = sqlite3.connect(self._path, timeout=30, isolation_level=None)
            sqlite_pragmas(conn)
            self._conn, self._sql = conn, SQLiteStatements(conn, self._dialect)
        return self._conn, self._sql

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = self._sql = None

    def _store(self, items: list[Submission]) -> list[SubmitResult | SubmitError]:
        if not items:
            return []
        conn, sql = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            outcomes = run_batch_sync(batch_plan(items), sql)
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise translated(exc, "submission batch") from exc
            raise
        return outcomes
