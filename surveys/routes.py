"""The survey feature's ``routes`` hook: app keys, the group committer, API and mobile pages."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from core.appkeys import ENGINE, METRICS, SESSIONS, SETTINGS
from storage.db import asyncpg_dsn
from surveys.api import API_ROUTES
from surveys.committer import GroupCommitter
from surveys.h5.views import setup as setup_pages
from surveys.keys import COMMITTER, RATE_LIMITER, SURVEYS, TOWNSHIP_CACHE
from surveys.postgres_writer import PostgresBatchWriter
from surveys.ratelimit import OpenLinkLimits
from surveys.schema import Survey
from surveys.sqlite_writer import PIPELINE, SQLiteWriterProcess

__all__ = ["COMMIT_WORKERS_POSTGRES", "setup"]

COMMIT_WORKERS_POSTGRES = 4
"""Batches the group committer stores at once on PostgreSQL (each on a connection of its own)."""


async def _committer_ctx(app: web.Application) -> AsyncIterator[None]:
    engine = app[ENGINE]
    writer: SQLiteWriterProcess | PostgresBatchWriter | None = None
    if engine.dialect.name == "sqlite":
        # One writer at a time on SQLite: one worker, or with the writer process as many as
        # it takes batches in flight (it stores them one after another). PostgreSQL overlaps
        # batches on separate connections.
        workers = 1
        path = engine.url.database
        if path and path != ":memory:":
            writer = SQLiteWriterProcess(path)
            await writer.start()
            workers = PIPELINE
    else:
        workers = COMMIT_WORKERS_POSTGRES
        if engine.dialect.driver == "asyncpg":
            writer = PostgresBatchWriter(asyncpg_dsn(engine.url), workers)
    committer = GroupCommitter(
        app[SESSIONS],
        metrics=app.get(METRICS),
        workers=workers,
        writer=writer,
    )
    app[COMMITTER] = committer
    committer.start()
    try:
        yield
    finally:
        await committer.stop()


def setup(app: web.Application, catalog: dict[str, Survey]) -> None:
    """Add the survey feature to ``app``: catalog, group committer, API routes, mobile pages."""
    app[SURVEYS] = catalog
    settings = app[SETTINGS]
    app[RATE_LIMITER] = OpenLinkLimits(
        settings.open_link_per_respondent_per_minute, settings.open_link_per_address_per_minute
    )
    app[TOWNSHIP_CACHE] = {}
    app.cleanup_ctx.append(_committer_ctx)
    for method, path, handler in API_ROUTES:
        app.router.add_route(method, path, handler)
    setup_pages(app)
