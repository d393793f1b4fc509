"""The composition root: lists the features once and wires every part of them.

:data:`FEATURES` is the one list of what pufa does. :func:`create_app` builds the aiohttp
application: the database (migrated and seeded on start), each feature's routes, the dialog
runtime with each feature's dialogs, the chat channels, the outbox worker (given each
channel's sender) and each feature's periodic tasks.
Resources are created inside ``cleanup_ctx`` generators so they start with the app and close
in reverse order on shutdown; nothing connects at import time. ``pufa`` (:mod:`bot.cli`) takes
the features' commands, seeds and banner lines from here too.

Adding a feature: write its package with a ``feature.py`` defining ``FEATURE``
(:class:`core.feature.Feature`), then add it to :data:`FEATURES`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.binding.feature import FEATURE as BINDING
from bot.channels.wecom import config_problems, status_line
from bot.channels.wecom import install as install_wecom
from bot.dialogs import DIALOGS, DialogRuntime
from bot.dialogs.store import prune
from bot.outbox.feature import FEATURE as OUTBOX
from bot.outbox.queue import wake_on_commit
from bot.outbox.sender import Sender
from bot.outbox.worker import SENDERS, WORKER, OutboxWorker, WorkerConfig
from bot.rota.feature import FEATURE as ROTA
from bot.volunteers.feature import FEATURE as VOLUNTEERS
from bot.web.feature import FEATURE as CONSOLE
from core.appkeys import CATALOGS, CHANNEL_HEALTH, ENGINE, METRICS, SESSIONS, SETTINGS
from core.clock import Clock, utcnow
from core.feature import Catalogs, Feature, PeriodicTask, SeedContext, SeedReport, TaskContext
from core.http import ERROR_SCHEMA, MAX_BODY, error_middleware
from core.metrics import CONTENT_TYPE_LATEST, Metrics
from core.settings import Settings
from storage import seed as core_seed
from storage.db import create_engine, ping, session_factory, transaction
from storage.migrate import upgrade_engine
from surveys.feature import FEATURE as SURVEYS

__all__ = [
    "FEATURES",
    "banner_lines",
    "build_runtime",
    "create_app",
    "seed_all",
]

log = logging.getLogger(__name__)

FEATURES: tuple[Feature[Any], ...] = (
    SURVEYS,
    BINDING,
    VOLUNTEERS,
    ROTA,
    OUTBOX,
    CONSOLE,
)
"""Every feature of pufa, in the order their commands appear in the chat menu."""


# ---------------------------------------------------------------------------------- wiring


def build_runtime(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    catalogs: Catalogs,
    *,
    clock: Clock = utcnow,
    metrics: Metrics | None = None,
) -> DialogRuntime:
    """The dialog runtime with every feature's dialogs registered."""
    runtime = DialogRuntime(sessions, settings, clock=clock, metrics=metrics)
    for feature in FEATURES:
        if feature.dialogs is not None:
            feature.dialogs(runtime, catalogs.of(feature))
    return runtime


async def seed_all(
    session: AsyncSession,
    settings: Settings,
    catalogs: Catalogs,
    *,
    demo: bool = False,
    now: Callable[[], Any] = utcnow,
) -> SeedReport:
    """Load the built-in catalog of the core tables and of every feature (and the demo data).

    Idempotent: loading twice changes nothing.
    """
    report = await core_seed.load_catalog(session)
    ctx = SeedContext(session=session, report=report, now=now(), settings=settings)
    for feature in FEATURES:
        if feature.seed is not None:
            await feature.seed(ctx, catalogs.of(feature))
    if demo:
        await core_seed.load_demo(session, report)
        for feature in FEATURES:
            if feature.seed_demo is not None:
                await feature.seed_demo(ctx, catalogs.of(feature))
    return report


def banner_lines(settings: Settings, catalogs: Catalogs) -> list[str]:
    """What ``pufa serve`` prints after its URL: each feature's lines, then the channels."""
    lines: list[str] = []
    for feature in FEATURES:
        if feature.banner is not None:
            lines.extend(feature.banner(settings, catalogs.of(feature)))
    if settings.telegram_enabled:
        lines.append(f"  telegram: {settings.telegram_mode} mode")
    wecom = status_line(settings)
    if wecom is not None:
        lines.append(wecom)
    return lines


def _periodic_tasks() -> list[PeriodicTask]:
    tasks = [PeriodicTask("dialogs.prune", timedelta(hours=1), _prune, first=timedelta(hours=1))]
    for feature in FEATURES:
        tasks.extend(feature.tasks)
    return tasks


async def _prune(ctx: TaskContext) -> None:
    async with transaction(ctx.sessions) as session:
        events, conversations = await prune(session, ctx.now)
    log.info("pruned dialog rows", extra={"events": events, "conversations": conversations})


# ---------------------------------------------------------------------------------- contexts


def _database_ctx(clock: Clock) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        engine = create_engine(settings.database_url)
        app[ENGINE] = engine
        app[SESSIONS] = session_factory(engine)
        if settings.auto_migrate:
            await upgrade_engine(engine)
            async with transaction(app[SESSIONS]) as session:
                await seed_all(session, settings, app[CATALOGS], now=clock)
        log.info("database ready", extra={"dialect": engine.dialect.name})
        yield
        await engine.dispose()

    return ctx


def _dialogs_ctx(clock: Clock) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        app[DIALOGS] = build_runtime(
            app[SETTINGS], app[SESSIONS], app[CATALOGS], clock=clock, metrics=app[METRICS]
        )
        yield

    return ctx


async def _run_periodic(app: web.Application, task: PeriodicTask, clock: Clock) -> None:
    await asyncio.sleep(task.first.total_seconds())
    while True:
        ctx = TaskContext(
            settings=app[SETTINGS], sessions=app[SESSIONS], metrics=app[METRICS], now=clock()
        )
        try:
            await task.run(ctx)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background task failed", extra={"task": task.name})
        await asyncio.sleep(task.every.total_seconds())


RECIPIENT_INTERVALS = {"wecom_robot": 3.0}
"""Seconds between two messages to one recipient for senders that do not say: a WeCom group
robot takes 20 messages a minute."""


def worker_config(settings: Settings) -> WorkerConfig:
    """The outbox worker's pacing, lease and attempts from the configuration."""
    return WorkerConfig(
        rate=settings.send_rate,
        lease=settings.outbox_lease,
        max_attempts=settings.outbox_max_attempts,
        poll_interval=settings.outbox_poll,
        recipient_intervals=RECIPIENT_INTERVALS,
    )


def _outbox_ctx(clock: Clock) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        senders: dict[str, Sender] = app[SENDERS]
        worker = OutboxWorker(
            app[SESSIONS],
            senders,
            config=worker_config(settings),
            metrics=app[METRICS],
            clock=clock,
            default_locale=settings.default_locale,
            secret=settings.secret(),
        )
        app[WORKER] = worker
        wake_on_commit(app[SESSIONS], worker.wake)
        running = asyncio.create_task(worker.run(), name="outbox")
        try:
            yield
        finally:
            worker.stop()
            try:
                await asyncio.wait_for(asyncio.shield(running), timeout=20)
            except TimeoutError:
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running

    return ctx


def _tasks_ctx(clock: Clock) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        running = [
            asyncio.create_task(_run_periodic(app, task, clock), name=task.name)
            for task in _periodic_tasks()
        ]
        try:
            yield
        finally:
            for job in running:
                job.cancel()
            for job in running:
                with contextlib.suppress(asyncio.CancelledError):
                    await job

    return ctx


# ---------------------------------------------------------------------------------- routes


async def healthz(request: web.Request) -> web.Response:
    """``200 {"status":"ok","db":"ok"}`` with ``"channels": {name: {"state", "since",
    "detail"}}`` when chat channels are configured (a channel that cannot reach its platform
    does not make the service unhealthy), or 503 when the database does not answer."""
    channels = {name: h.as_json() for name, h in sorted(request.app[CHANNEL_HEALTH].items())}
    extra: dict[str, Any] = {"channels": channels} if channels else {}
    if await ping(request.app[ENGINE]):
        return web.json_response({"status": "ok", "db": "ok", **extra})
    return web.json_response({"status": "error", "db": "unreachable", **extra}, status=503)


_NO_NUL = "^[^\\x00]*$"
_BAD_REQUEST = {
    "description": "A NUL character in the path or query (refused by every route)",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


def _refusing_nul(item: dict[str, Any]) -> dict[str, Any]:
    """A path item as the error middleware serves it: no string parameter takes a NUL
    character (``core.http`` answers 400 to any path or query that has one)."""
    out: dict[str, Any] = {}
    for method, operation in item.items():
        params = []
        for param in operation.get("parameters", []):
            schema = param.get("schema", {})
            if schema.get("type") == "string" and "pattern" not in schema and "enum" not in schema:
                param = {**param, "schema": {**schema, "pattern": _NO_NUL}}
            params.append(param)
        responses = {"400": _BAD_REQUEST, **operation.get("responses", {})}
        out[method] = {**operation, "parameters": params, "responses": responses}
    return out


def openapi_document(settings: Settings) -> dict[str, Any]:
    """The OpenAPI 3.1 description of ``/api/v1``: every feature's part, merged."""
    paths: dict[str, Any] = {
        "/api/v1/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "responses": {"200": {"description": "OpenAPI 3 document"}},
            }
        }
    }
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    for feature in FEATURES:
        part = feature.openapi or {}
        paths.update(part.get("paths", {}))
        schemas.update(part.get("components", {}).get("schemas", {}))
    paths = {path: _refusing_nul(item) for path, item in paths.items()}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "pufa API",
            "version": "1",
            "description": "Satisfaction surveys, the lecture rota and the legal-liaison "
            "registry of the district's law-based-government programme.",
        },
        "servers": [{"url": settings.public_url}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas,
        },
    }


async def openapi_view(request: web.Request) -> web.Response:
    """``GET /api/v1/openapi.json``."""
    return web.json_response(
        openapi_document(request.app[SETTINGS]), dumps=lambda o: json.dumps(o, ensure_ascii=False)
    )


async def metrics_view(request: web.Request) -> web.Response:
    """Prometheus text exposition."""
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_app(settings: Settings, *, clock: Clock = utcnow) -> web.Application:
    """Build the whole application for ``settings`` (call ``ensure_secret_key`` first)."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[error_middleware])
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[CATALOGS] = Catalogs()
    app[CHANNEL_HEALTH] = {}
    app[SENDERS] = {}
    app.cleanup_ctx.append(_database_ctx(clock))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_view)
    app.router.add_get("/api/v1/openapi.json", openapi_view)
    for feature in FEATURES:
        if feature.routes is not None:
            feature.routes(app, app[CATALOGS].of(feature))
    app.cleanup_ctx.append(_dialogs_ctx(clock))
    if settings.telegram_enabled:
        # python-telegram-bot is loaded only when Telegram is on: it takes half a second to
        # import, which every ``pufa`` command would pay for otherwise.
        from bot.channels.telegram import WEBHOOK_PATH, telegram_ctx, webhook_view

        app.cleanup_ctx.append(telegram_ctx)
        if settings.telegram_mode == "webhook":
            app.router.add_post(WEBHOOK_PATH, webhook_view)
    if not config_problems(settings):
        install_wecom(app, settings)
    elif (line := status_line(settings)) is not None:
        log.warning(line.strip())
    if settings.outbox_worker:
        app.cleanup_ctx.append(_outbox_ctx(clock))
    app.cleanup_ctx.append(_tasks_ctx(clock))
    return app
