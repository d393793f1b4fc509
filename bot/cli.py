"""The ``pufa`` command line.

Exit status: 0 on success, 2 on bad usage (click's own), 1 on failure with one line on stderr.
Commands that create a secret print it alone on the last line of stdout.
"""

from __future__ import annotations

import asyncio
import functools
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import click

from bot.errors import PufaError
from bot.settings import Settings, load_settings

P = ParamSpec("P")
R = TypeVar("R")


def get_settings(ctx: click.Context) -> Settings:
    """Settings for this invocation, loaded once (a bad value is a one-line error)."""
    obj = ctx.ensure_object(dict)
    if "settings" not in obj:
        overrides = obj.get("overrides", {})
        obj["settings"] = load_settings(**overrides)
    return obj["settings"]


def run_async(fn: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, R]:
    """Run an async click command body in a fresh event loop."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


async def with_sessions(
    settings: Settings, body: Callable[[Any], Awaitable[R]], migrate: bool = True
) -> R:
    """Open the engine (migrating first), run ``body(sessions)``, dispose of the engine."""
    from storage.db import create_engine, session_factory
    from storage.migrate import upgrade_engine

    engine = create_engine(settings.database_url)
    try:
        if migrate:
            await upgrade_engine(engine)
        return await body(session_factory(engine))
    except OSError as exc:
        raise PufaError(f"cannot reach the database: {exc}") from exc
    finally:
        await engine.dispose()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pufa")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """pufa (普法): surveys, lecture rota and legal-liaison registry for a district."""
    ctx.ensure_object(dict)


@cli.command()
@click.option("--host", default=None, help="Listen address (default PUFA_HOST).")
@click.option("--port", type=int, default=None, help="Listen port (default PUFA_PORT).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve H5 pages, the JSON API, chat channels and background workers in one process."""
    obj = ctx.ensure_object(dict)
    overrides = obj.setdefault("overrides", {})
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    settings = get_settings(ctx)
    from bot.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(_serve(settings))


async def _serve(settings: Settings) -> None:
    from aiohttp import web

    from bot.app import create_app

    app = create_app(settings)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=15.0, access_log=None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await runner.setup()
    except OSError as exc:
        raise PufaError(f"cannot reach the database: {exc}") from exc
    site = web.TCPSite(runner, settings.host, settings.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise PufaError(
            f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}"
        ) from exc
    base = f"http://{settings.host}:{settings.port}"
    click.echo(f"pufa is serving on {base}")
    click.echo(f"  health:   {base}/healthz")
    click.echo(f"  metrics:  {base}/metrics")
    for line in _extra_urls(settings, base):
        click.echo(line)
    click.echo(f"  database: {_safe_url(settings.database_url)}")
    click.echo("Stop with Ctrl-C.")
    sys.stdout.flush()
    await stop.wait()
    click.echo("shutting down…")
    await runner.cleanup()


def _extra_urls(settings: Settings, base: str) -> list[str]:
    from bot.app import describe_urls

    return describe_urls(settings, base)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@cli.group()
def db() -> None:
    """Database administration."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str) -> None:
    """Apply Alembic migrations."""
    settings = get_settings(ctx)

    @run_async
    async def _run() -> None:
        from storage.db import create_engine
        from storage.migrate import upgrade_engine

        engine = create_engine(settings.database_url)
        try:
            await upgrade_engine(engine, revision)
        except OSError as exc:
            raise PufaError(f"cannot reach the database: {exc}") from exc
        finally:
            await engine.dispose()

    _run()
    click.echo(f"database at {revision}: {_safe_url(settings.database_url)}")


@cli.command()
@click.option("--demo", is_flag=True, help="Also add sample townships, villages and data.")
@click.pass_context
def seed(ctx: click.Context, demo: bool) -> None:
    """Load the built-in catalog (idempotent); --demo adds sample data."""
    settings = get_settings(ctx)

    async def body(sessions: Any) -> Any:
        from bot.seeding import seed_catalog, seed_demo
        from storage.db import transaction

        async with transaction(sessions) as session:
            report = await seed_catalog(session)
            if demo:
                await seed_demo(session, report)
            return report

    report = asyncio.run(with_sessions(settings, body))
    created = ", ".join(f"{k} {v}" for k, v in sorted(report.created.items())) or "nothing"
    updated = ", ".join(f"{k} {v}" for k, v in sorted(report.updated.items())) or "nothing"
    click.echo(f"created: {created}")
    click.echo(f"updated: {updated}")


def register(group: click.Group) -> None:
    """Attach feature command groups (each feature module exposes ``commands``)."""
    import importlib

    for name in _FEATURE_COMMANDS:
        module = importlib.import_module(name)
        for command in module.commands:
            existing = group.commands.get(command.name or "")
            if isinstance(existing, click.Group) and isinstance(command, click.Group):
                for sub in command.commands.values():  # two features share e.g. `pufa invite`
                    existing.add_command(sub)
            else:
                group.add_command(command)


_FEATURE_COMMANDS: list[str] = ["bot.chat_cli", "surveys.cli"]


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``pufa`` console script."""
    register(cli)
    try:
        cli.main(args=argv, prog_name="pufa", standalone_mode=True)
    except PufaError as exc:
        click.echo(f"pufa: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
