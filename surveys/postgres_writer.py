"""Storing submission batches on PostgreSQL from connections and an event loop of their own.

A batch is four round trips: ``BEGIN``, one lookup (survey states, earlier keys, respondents and
tokens), one write (responses, answers, the invitations' use), ``COMMIT``. Run on the server's
event loop, each reply waits until the loop has come round all the requests it is serving, so
under load a batch spent most of its time "idle in transaction" with PostgreSQL waiting for
pufa, and a session from the pool added a ping, the survey states through SQLAlchemy and a
reset. :class:`PostgresBatchWriter` keeps ``connections`` plain ``asyncpg``
connections on an event loop in a thread of its own that does nothing else: a batch is handed
over once and its round trips follow one another without waiting for the web handlers.

The statements are :mod:`surveys.submission_sql`'s, inside one transaction per batch; the
outcomes come from :func:`surveys.submission.batch_plan`, the same rules as every other path.
Errors come back as SQLAlchemy's ``IntegrityError`` (a constraint: the group committer retries
the batch one by one) or ``OperationalError`` (a deadlock, a lost connection: retried later).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.exc import OperationalError

from storage.db import POSTGRES_SERVER_SETTINGS
from surveys.submission import Submission, SubmitError, SubmitResult, batch_plan, run_batch
from surveys.submission_sql import postgres_statements

__all__ = ["PostgresBatchWriter"]

_T = TypeVar("_T")
_CONNECTION_ERRORS = (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError)


class PostgresBatchWriter:
    """Stores batches of submissions on PostgreSQL ``dsn`` (an ``asyncpg`` connection string)
    over up to ``connections`` connections, one batch per connection at a time."""

    def __init__(self, dsn: str, connections: int = 4) -> None:
        self._dsn = dsn
        self._size = max(1, connections)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="pufa-submissions", daemon=True
        )
        self._thread.start()
        self._free: asyncio.Queue[asyncpg.Connection | None] | None = None

    async def store(self, items: Sequence[Submission]) -> list[SubmitResult | SubmitError]:
        """Store ``items`` in one transaction (committed when this returns); their outcomes."""
        return await self._call(self._store(list(items)))

    async def close(self) -> None:
        """Close the connections and stop the thread."""
        if not self._loop.is_closed():
            await self._call(self._close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            await asyncio.to_thread(self._thread.join)
            self._loop.close()

    async def _call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    def _pool(self) -> asyncio.Queue[asyncpg.Connection | None]:
        if self._free is None:
            # Created on the writer's loop; ``None`` is a slot whose connection is opened on use.
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
                conn = await asyncpg.connect(
                    self._dsn, server_settings=POSTGRES_SERVER_SETTINGS, timeout=30
                )
            sql = postgres_statements(conn)
            async with conn.transaction():
                return await run_batch(batch_plan(items), sql)
        except _CONNECTION_ERRORS as exc:
            if conn is not None:
                conn.terminate()
                conn = None
            raise OperationalError("submission batch", None, exc) from exc
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
