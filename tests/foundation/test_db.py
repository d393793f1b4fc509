"""The engine's connection pool on SQLite: a connection goes back to the pool with no
transaction open, and a committed one is not rolled back a second time."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlmodel import col

import storage.db
from storage.db import (
    SQLITE_JOURNAL_SIZE_LIMIT,
    SQLITE_WAL_AUTOCHECKPOINT,
    sqlite_pragmas,
    transaction,
)
from storage.models import Township


@pytest.fixture
def rollbacks(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every ``rollback()`` asked of the SQLite driver's connections (each one is a trip to
    the driver's thread)."""
    if engine.dialect.name != "sqlite":
        pytest.skip("the pool's reset on return is changed on SQLite only")
    calls: list[str] = []
    original = aiosqlite.Connection.rollback

    async def counted(self: aiosqlite.Connection) -> None:
        calls.append("rollback")
        await original(self)

    monkeypatch.setattr(aiosqlite.Connection, "rollback", counted)
    yield calls


async def test_a_committed_transaction_is_not_rolled_back_on_return(
    sessions: async_sessionmaker[AsyncSession], rollbacks: list[str]
) -> None:
    async with transaction(sessions) as session:  # the pool's first connection
        await session.execute(text("SELECT 1"))
    rollbacks.clear()  # (SQLAlchemy rolls a new connection back once it has looked at it)
    async with transaction(sessions) as session:
        session.add(Township(code="t-pool", name="池", kind="town"))
    assert rollbacks == []
    try:
        async with transaction(sessions) as session:
            session.add(Township(code="t-gone", name="无", kind="town"))
            await session.flush()
            raise RuntimeError("the step failed")
    except RuntimeError:
        pass
    assert rollbacks == ["rollback"]  # the failed one, once
    async with sessions() as session:
        codes = set((await session.execute(select(col(Township.code)))).scalars())
    assert "t-pool" in codes and "t-gone" not in codes


async def test_a_connection_returned_mid_transaction_is_rolled_back(
    engine: AsyncEngine, rollbacks: list[str]
) -> None:
    async with engine.connect() as conn:
        before = (await conn.execute(select(func.count()).select_from(Township))).scalar_one()
        await conn.commit()
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert isinstance(driver, aiosqlite.Connection)
        # a transaction opened on the driver, behind the engine's back, and never ended
        await driver.execute("BEGIN")
        await driver.execute(
            "INSERT INTO township (code, name, kind, sample, created_at)"
            " VALUES ('t-raw', '残', 'town', 0, '2026-12-03 00:00:00')"
        )
        assert driver.in_transaction
    assert rollbacks  # the pool ended it
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert isinstance(driver, aiosqlite.Connection) and not driver.in_transaction
        after = (await conn.execute(text("SELECT count(*) FROM township"))).scalar_one()
    assert after == before


async def test_sqlite_connections_get_pufa_s_pragmas(engine: AsyncEngine) -> None:
    """WAL with ``synchronous=FULL`` (each COMMIT syncs the WAL), foreign keys, a checkpoint
    interval longer than the WAL the submission writer process leaves, so no other commit waits
    for a checkpoint, and a limit on the WAL file's size."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite pragmas")
    async with engine.connect() as conn:
        got = {
            name: (await conn.execute(text(f"PRAGMA {name}"))).scalar()
            for name in (
                "journal_mode",
                "synchronous",
                "foreign_keys",
                "wal_autocheckpoint",
                "journal_size_limit",
            )
        }
    assert got == {
        "journal_mode": "wal",
        "synchronous": 2,
        "foreign_keys": 1,
        "wal_autocheckpoint": SQLITE_WAL_AUTOCHECKPOINT,
        "journal_size_limit": SQLITE_JOURNAL_SIZE_LIMIT,
    }
    assert SQLITE_WAL_AUTOCHECKPOINT > 1000  # SQLite's default


def test_a_wal_grown_by_a_burst_is_cut_back_when_it_starts_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a burst has grown the WAL file and a checkpoint has copied it all back, the next
    write starts the WAL from its beginning and cuts the file to the limit (a small one here)."""
    limit = 256 * 1024
    monkeypatch.setattr(storage.db, "SQLITE_JOURNAL_SIZE_LIMIT", limit)
    path = tmp_path / "burst.db"
    wal = Path(f"{path}-wal")
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        sqlite_pragmas(conn)
        conn.execute("PRAGMA wal_autocheckpoint=0")  # as in the writer process
        conn.execute("CREATE TABLE t (x BLOB)")
        for _ in range(30):  # the burst: about 3 MB of pages
            conn.execute("INSERT INTO t VALUES (randomblob(100000))")
        grown = wal.stat().st_size
        assert grown > 10 * limit
        busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert busy == 0 and frames == copied  # all copied back: the WAL may start again
        assert wal.stat().st_size == grown  # a checkpoint alone leaves the file as it is
        conn.execute("INSERT INTO t VALUES (1)")
        assert wal.stat().st_size <= limit
    finally:
        conn.close()
