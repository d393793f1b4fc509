"""Storing submission batches on PostgreSQL from connections of their own.

A batch is two round trips: one lookup (survey states, earlier keys, respondents and tokens) and
one write (responses, answers and the invitations' use, in one statement that commits on its
own). Through a session from the pool it was nine, plus a ping, the survey states through
SQLAlchemy and a reset. :class:`PostgresBatchWriter` keeps a few plain ``asyncpg`` connections
for the group committer, whose workers use them from the web server's event loop
(:mod:`surveys.committer`). When a batch was nine round trips, each waited until that loop had
come round all the requests it was serving, and the batches spent most of their time "idle in
transaction": the workers then ran on a loop in a thread of their own. At two round trips the
thread cost more than it saved (the hand-overs between the threads, and the wait of each for
the interpreter lock); see :mod:`surveys.committer`.

The statements are :mod:`surveys.submission_sql`'s; the outcomes come from
:func:`surveys.submission.batch_plan`, the same rules as every other path. Errors come back as
SQLAlchemy's ``IntegrityError`` (a constraint: the group committer retries the batch one by
one) or ``OperationalError`` (a deadlock, a lost connection: retried later).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.exc import OperationalError

from storage.db import POSTGRES_SERVER_SETTINGS
from surveys.submission import Submission, SubmitError, SubmitResult, batch_plan, run_batch
from surveys.submission_sql import postgres_statements

__all__ = ["PostgresBatchWriter", "connect"]

_CONNECTION_ERRORS = (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError)


async def connect(dsn: str) -> asyncpg.Connection:
    """A connection for storing batches, with pufa's session settings.

    ``plan_cache_mode=force_custom_plan`` matters here as much as on the engine: with generic
    plans (PostgreSQL's default after a statement's fifth run) the batch statements served
    about half as many submissions (1,000–1,200 against 2,000–2,300 requests/s at 50
    connections, measured side by side)."""
    return await asyncpg.connect(dsn, server_settings=POSTGRES_SERVER_SETTINGS, timeout=30)


class PostgresBatchWriter:
    """Stores batches of submissions on PostgreSQL ``dsn`` (an ``asyncpg`` connection string)
        over up to ``connections`` connections, one batch per connection at a time, from the group
    committer's event loop."""

    def __init__(self, dsn: str, connections: int = 4) -> None:
        self._dsn = dsn
        self._size = max(1, connections)
        self._free: asyncio.Queue[asyncpg.Connection | None] | None = None

    async def store(self, items: Sequence[Submission]) -> list[SubmitResult | SubmitError]:
        """Store ``items`` (committed when this returns); their outcomes. Every call must come
        from the same event loop (the group committer's)."""
        return await self._store(list(items))

    async def close(self) -> None:
        """Close the connections (on the loop that stored)."""
        if self._free is not None:
            await self._close()

    def _pool(self) -> asyncio.Queue[asyncpg.Connection | None]:
        if self._free is None:
            # ``None`` is a slot whose connection is opened on first use.
            self._free = asyncio.Queue()
            for _ in range(self._size):
                self._free.put_nowait(None)
        return self._free

    async def _store(self, items: list[Submission]) -> list[SubmitResult | SubmitError]:
        if not items:
            return []
        free = self._pool()
        conn = await free.get()
        try:
            if conn is None:
                conn = await connect(self._dsn)
            # No transaction around the batch: the lookup reads committed rows, like any read
            # in one under READ COMMITTED, and the write is one statement, atomic on its own.
            # A writer that stored a response with the same respondent, key or invitation
            # meanwhile makes it fail on a unique index: the committer then retries one by one.
            return await run_batch(batch_plan(items), postgres_statements(conn, autocommit=True))
        except Exception as exc:
            if isinstance(exc, _CONNECTION_ERRORS) or (conn is not None and conn.is_closed()):
                # The connection is gone (a restart, a failover, an administrator): the
                # committer retries the batch on a new one, whose lookup finds any of it that
                # was committed before the loss (a replay of its Idempotency-Key, or
                # "already answered" without one).
                if conn is not None:
                    conn.terminate()
                    conn = None
                raise OperationalError("submission batch", None, exc) from exc
            raise
        finally:
            if conn is not None and conn.is_closed():
                conn = None
            free.put_nowait(conn)

    async def _close(self) -> None:
        free = self._pool()
        for _ in range(self._size):
            conn = await free.get()
            if conn is not None:
                await conn.close()
