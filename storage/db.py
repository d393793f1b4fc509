"""The async engine and session factory.

SQLite (the embedded default) runs in WAL mode with a busy timeout and foreign keys on;
PostgreSQL goes through asyncpg. Nothing connects at import time: the composition root in
``bot/app.py`` (or a CLI command) calls :func:`create_engine` and disposes of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import ConnectionPoolEntry, PoolResetState

from storage.models import AuditLog

SQLITE_BUSY_TIMEOUT_MS = 10_000
#: WAL pages after which a commit also checkpoints (SQLite's default is 1,000). The submission
#: writer process turns this off on its connection and checkpoints beside its batches
#: (:class:`surveys.sqlite_writer.WalCheckpointer`), keeping the WAL to about a second of
#: batches; under that load a chat step's or the console's commit would otherwise find more
#: than 1,000 pages and checkpoint them itself, holding up its request.
SQLITE_WAL_AUTOCHECKPOINT = 10_000
#: Bytes the WAL file is cut back to when SQLite starts it again from its beginning. Without a
#: limit the file keeps the largest size a burst gave it for as long as the database is open:
#: up to about 60 MB under the benchmark's load at 200 connections (so the limit does not cut
#: it there), 913 MB in one such run while the writer process did not checkpoint itself.
SQLITE_JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024


def sqlite_pragmas(dbapi_connection: Any) -> None:
    """Set pufa's pragmas on a SQLite connection (WAL, busy timeout, foreign keys,
    ``synchronous=FULL``, the WAL's checkpoint interval and size limit): the engine's
    connections and any other one pufa opens.

    ``FULL`` syncs the WAL at each COMMIT, so what pufa has acknowledged (an answer given in a
    chat, a liaison registered, a lecture confirmed, a submission answered 201) outlives a power
    cut, not only a crash of the process; with ``NORMAL`` the last commits before a power cut
    could roll back."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_AUTOCHECKPOINT}")
    cursor.execute(f"PRAGMA journal_size_limit={SQLITE_JOURNAL_SIZE_LIMIT}")
    cursor.close()


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    sqlite_pragmas(dbapi_connection)


def _sqlite_on_return(
    dbapi_connection: Any, record: ConnectionPoolEntry, state: PoolResetState
) -> None:
    """A connection back in the pool ends any transaction it still has.

    The pool's own reset rolls back whenever the connection's transaction was not already
    rolled back, so also after every commit: one more trip to the driver's thread, waiting for
    the event loop to come round, per transaction that succeeded. SQLite says whether a
    transaction is open: roll back only then (and, as the pool does, only where it may wait)."""
    if state.transaction_was_reset or not state.asyncio_safe:
        return
    driver = record.driver_connection
    if driver is None or driver.in_transaction:
        dbapi_connection.rollback()


POSTGRES_SERVER_SETTINGS = {"plan_cache_mode": "force_custom_plan"}
"""Session settings of every PostgreSQL connection pufa opens (see :func:`create_engine`)."""


def asyncpg_dsn(url: URL) -> str:
    """The ``asyncpg`` connection string of the SQLAlchemy ``postgresql+asyncpg`` URL ``url``."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """Create the async engine for ``url`` with the pragmas and pool settings pufa relies on."""
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("pool_reset_on_return", None)  # _sqlite_on_return does it
        engine = _create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        event.listen(engine.sync_engine, "reset", _sqlite_on_return)
        return engine
    # Plan every execution for its parameters and the tables as they are now. A generic plan,
    # cached per connection after a statement's fifth run until the next ANALYZE, made while a
    # new survey's tables had no statistics, took any index on ``survey`` for a unique lookup
    # and filtered every response of the survey for each batch of submissions.
    connect_args = kwargs.setdefault("connect_args", {})
    server_settings = connect_args.setdefault("server_settings", {})
    for name, value in POSTGRES_SERVER_SETTINGS.items():
        server_settings.setdefault(name, value)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return _create_async_engine(url, **kwargs)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """A session maker whose objects stay readable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session inside one transaction: committed on success, rolled back on error."""
    async with sessions() as session, session.begin():
        yield session


_AFTER_COMMIT_KEY = "pufa.after_commit"


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Call ``callback`` once what ``session`` wrote is committed.

    That is the session's own commit, or, for a session working in a transaction that someone
    else commits (:func:`collect_after_commit`: the dialog steps sharing a commit), that
    commit. Nothing is called if the transaction rolls back.
    """
    deferred: list[Callable[[], None]] | None = session.info.get(_AFTER_COMMIT_KEY)
    if deferred is not None:
        deferred.append(callback)
        return
    event.listen(session.sync_session, "after_commit", lambda _session: callback(), once=True)


def collect_after_commit(session: AsyncSession) -> list[Callable[[], None]]:
    """Make :func:`after_commit` collect ``session``'s callbacks in the returned list, for the
    owner of the transaction the session joined to call once it has committed."""
    collected: list[Callable[[], None]] = []
    session.info[_AFTER_COMMIT_KEY] = collected
    return collected


async def ping(engine: AsyncEngine, timeout: float = 2.0) -> bool:
    """Whether the database answers ``SELECT 1`` within ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


@event.listens_for(Session, "before_flush")
def _audit_log_is_append_only(session: Session, _ctx: Any, _instances: Any) -> None:
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, AuditLog):
            raise PermissionError("the audit log is append-only")
