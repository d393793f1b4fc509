"""The composition root: builds the aiohttp application and wires every part once.

Resources (database engine, chat channels, background workers) are created inside
``cleanup_ctx`` generators so they start with the app and close in reverse order on shutdown;
nothing connects at import time.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from bot.context import ENGINE, METRICS, SESSIONS, SETTINGS
from bot.metrics import CONTENT_TYPE_LATEST, Metrics
from bot.settings import Settings
from bot.web.errors import MAX_BODY, error_middleware
from storage.db import create_engine, ping, session_factory, transaction
from storage.migrate import upgrade_engine

log = logging.getLogger(__name__)


async def _database_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    engine = create_engine(settings.database_url)
    app[ENGINE] = engine
    app[SESSIONS] = session_factory(engine)
    if settings.auto_migrate:
        await upgrade_engine(engine)
        from bot.seeding import seed_catalog

        async with transaction(app[SESSIONS]) as session:
            await seed_catalog(session)
    log.info("database ready", extra={"dialect": engine.dialect.name})
    yield
    await engine.dispose()


async def healthz(request: web.Request) -> web.Response:
    """``200 {"status":"ok","db":"ok"}``, or 503 when the database does not answer."""
    if await ping(request.app[ENGINE]):
        return web.json_response({"status": "ok", "db": "ok"})
    return web.json_response({"status": "error", "db": "unreachable"}, status=503)


async def metrics_view(request: web.Request) -> web.Response:
    """Prometheus text exposition."""
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_app(settings: Settings) -> web.Application:
    """Build the whole application for ``settings`` (call ``ensure_secret_key`` first)."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[error_middleware])
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app.cleanup_ctx.append(_database_ctx)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_view)
    # Feature modules add their routes and background resources here.
    for setup in _feature_setups():
        setup(app)
    return app


def _feature_setups() -> list[Callable[[web.Application], None]]:
    """Each feature's ``setup(app)``: routes, app keys and cleanup contexts of its own."""
    from bot.channels import setup as chat_setup
    from surveys.api import setup as surveys_setup

    return [surveys_setup, chat_setup]


def describe_urls(settings: Settings, base: str) -> list[str]:
    """Lines for the ``pufa serve`` banner: survey pages, API and how to get access."""
    from surveys.schema import load_catalog

    public = settings.public_url.rstrip("/")
    lines = [f"  API:      {base}/api/v1/surveys  (OpenAPI: {base}/api/v1/openapi.json)"]
    for code in sorted(load_catalog()):
        lines.append(f"  survey:   {public}/s/{code}")
    lines.append("  results API: create a bearer token with `pufa token create --role analyst`")
    if settings.telegram_enabled:
        lines.append(f"  telegram: {settings.telegram_mode} mode")
    return lines
