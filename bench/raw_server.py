"""The baseline of the submission benchmark: the thinnest aiohttp handler that stores a body.

``POST /submit`` reads the raw request body, runs one ``INSERT`` of it and commits, then answers
``201``; ``GET /healthz`` answers ``200``. No SQLAlchemy, no validation, no JSON parsing: the
driver alone, as a floor for what any Python web service writing one row per request costs.

- SQLite: one ``aiosqlite`` connection in WAL mode with pufa's ``busy_timeout``, but
  ``synchronous=NORMAL`` (pufa's connections use ``FULL``: every ``COMMIT`` syncs the WAL, so
  pufa does more I/O per commit than this baseline, which is the stricter comparison) and
  SQLite's default checkpoint interval (1,000 pages): with pufa's 10,000 its throughput was the
  same and its p99 at 50 connections 68-94 ms instead of 34, so the default is its best.
  Concurrent requests share the connection; aiosqlite runs their statements in order on its
  thread, so a ``COMMIT`` may also commit another request's ``INSERT`` (a free group commit,
  which makes this baseline faster, not slower). Each 201 is sent after a commit that covers its
  row.
- PostgreSQL: an ``asyncpg`` pool of :data:`PG_POOL` connections; each request takes one and
  runs the ``INSERT`` in autocommit (one statement, one commit).

Run as ``python -m bench.raw_server sqlite PATH PORT`` or
``python -m bench.raw_server postgres DSN PORT`` (``DSN`` as ``postgresql://…``); with
``shared`` after the port, two or more of them serve one port (the benchmark's second
baseline: one process is one event loop, and two use more of the machine, the throughput
ceiling of this I/O, at the price of SQLite's waiting writers sleep-polling for the lock).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

__all__ = ["PG_POOL", "main", "postgres_app", "sqlite_app"]

#: The PostgreSQL baseline's pool: its best measured. Six-second runs, two of each: at 50
#: connections 4,241/4,609 req/s with 4, 5,284/4,915 with 10 (p99 38-41 ms), 5,532/5,909 with 20
#: (p99 21-24 ms), 5,612/5,202 with 40; at 200 connections 10, 20 and 40 within the noise.
PG_POOL = 20

_CREATE = "CREATE TABLE IF NOT EXISTS bench_raw (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def _app(
    setup: Callable[[], Awaitable[Callable[[str], Awaitable[None]]]],
    teardown: Callable[[], Awaitable[None]],
) -> web.Application:
    store: list[Callable[[str], Awaitable[None]]] = []

    async def context(app: web.Application) -> AsyncIterator[None]:
        store.append(await setup())
        yield
        await teardown()

    async def submit(request: web.Request) -> web.Response:
        await store[0](await request.text())
        return web.Response(status=201, text='{"ok":true}', content_type="application/json")

    app = web.Application()
    app.cleanup_ctx.append(context)
    app.router.add_post("/submit", submit)
    app.router.add_get("/healthz", _healthz)
    return app


def sqlite_app(path: str) -> web.Application:
    """The baseline on the SQLite file ``path`` through raw ``aiosqlite``."""
    import aiosqlite

    holder: list[aiosqlite.Connection] = []

    async def setup() -> Callable[[str], Awaitable[None]]:
        db = await aiosqlite.connect(path)
        # busy_timeout first: two processes of this baseline start on one file at once.
        for pragma in ("busy_timeout=5000", "journal_mode=WAL", "synchronous=NORMAL"):
            await db.execute(f"PRAGMA {pragma}")
        await db.execute(_CREATE)
        await db.commit()
        holder.append(db)

        async def insert(body: str) -> None:
            await db.execute("INSERT INTO bench_raw (body) VALUES (?)", (body,))
            await db.commit()

        return insert

    async def teardown() -> None:
        await holder[0].close()

    return _app(setup, teardown)


def postgres_app(dsn: str) -> web.Application:
    """The baseline on PostgreSQL ``dsn`` through raw ``asyncpg`` (pool of :data:`PG_POOL`)."""
    import asyncpg  # type: ignore[import-untyped]

    holder: list[asyncpg.Pool] = []

    async def setup() -> Callable[[str], Awaitable[None]]:
        pool = await asyncpg.create_pool(dsn, min_size=PG_POOL, max_size=PG_POOL)
        await pool.execute(_CREATE.replace("INTEGER PRIMARY KEY", "BIGSERIAL PRIMARY KEY"))
        holder.append(pool)

        async def insert(body: str) -> None:
            await pool.execute("INSERT INTO bench_raw (body) VALUES ($1)", body)

        return insert

    async def teardown() -> None:
        await holder[0].close()

    return _app(setup, teardown)


def main(argv: list[str]) -> None:
    """Serve the baseline: ``sqlite PATH PORT`` or ``postgres DSN PORT``; a fourth argument
    ``shared`` lets several processes serve the same port (``SO_REUSEPORT``)."""
    kind, target, port, *shared = argv
    app = sqlite_app(target) if kind == "sqlite" else postgres_app(target)
    web.run_app(
        app, host="127.0.0.1", port=int(port), print=None, access_log=None,
        reuse_port=shared == ["shared"],
    )  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
