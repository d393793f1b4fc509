"""The ``pufa`` command line: ``serve``, ``db upgrade``, ``seed``, ``chat`` and every feature's
commands (from :data:`bot.app.FEATURES`).

Exit status: 0 on success, 2 on bad usage (click's own), 1 on failure with one line on stderr.
Commands that create a secret print it alone on the last line of stdout.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import click
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from bot.app import FEATURES, banner_lines, build_runtime, create_app, seed_all
from bot.channels.console import CONSOLE, run_console
from bot.logs import configure_logging
from bot.rota.store import load as load_rota
from core.appkeys import CATALOGS
from core.cli import catalogs, get_settings, run_async
from core.clock import utcnow
from core.errors import PufaError
from core.feature import SeedReport
from core.heap import settle_heap
from core.settings import Settings
from storage.db import create_engine, transaction
from storage.migrate import upgrade_engine
from storage.models import ChatIdentity, Township, Unit
from storage.runner import with_sessions

__all__ = ["cli", "main", "register"]


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
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(_serve(settings))


async def _serve(settings: Settings) -> None:
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
    settle_heap()  # what start-up made lives as long as the process
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
    for line in banner_lines(settings, app[CATALOGS]):
        click.echo(line)
    click.echo(f"  database: {_safe_url(settings.database_url)}")
    click.echo("Stop with Ctrl-C.")
    sys.stdout.flush()
    await stop.wait()
    click.echo("shutting down…")
    await runner.cleanup()


def _safe_url(url: str) -> str:
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
    """Load the built-in catalog (idempotent); --demo adds sample data (refused when
    PUFA_ENV=production: demo answers never go into a production database)."""
    settings = get_settings(ctx)
    if demo and settings.env == "production":
        raise PufaError(
            "refusing --demo with PUFA_ENV=production: sample data never goes into a"
            " production database"
        )
    loaded = catalogs(ctx)

    async def body(sessions: async_sessionmaker[AsyncSession]) -> SeedReport:
        async with transaction(sessions) as session:
            return await seed_all(session, settings, loaded, demo=demo)

    report = asyncio.run(with_sessions(settings.database_url, body))
    created = ", ".join(f"{k} {v}" for k, v in sorted(report.created.items())) or "nothing"
    updated = ", ".join(f"{k} {v}" for k, v in sorted(report.updated.items())) or "nothing"
    click.echo(f"created: {created}")
    click.echo(f"updated: {updated}")


@cli.command("chat")
@click.option(
    "--as",
    "role",
    type=click.Choice(["resident", "staff", "unit"]),
    default=None,
    help="Talk as this role (staff: first township; unit: first unit). Without it, the "
    "console account keeps whatever role /bind gave it.",
)
@click.option("--lang", default=None, help="Language tag, e.g. en (default PUFA_DEFAULT_LOCALE).")
@click.pass_context
def chat(ctx: click.Context, role: str | None, lang: str | None) -> None:
    """Talk to the bot in the terminal (same dialogues as Telegram/WeCom). Type quit to leave."""
    settings = get_settings(ctx)
    loaded = catalogs(ctx)

    async def body(sessions: async_sessionmaker[AsyncSession]) -> None:
        async with transaction(sessions) as session:
            await seed_all(session, settings, loaded)
            external_id = await _console_identity(session, role)
        runtime = build_runtime(settings, sessions, loaded)
        click.echo(f"pufa chat as {role or 'the console account'} — type help, survey, or quit.")
        await run_console(runtime, external_id, language=lang or settings.default_locale)

    asyncio.run(with_sessions(settings.database_url, body))


async def _console_identity(session: AsyncSession, role: str | None) -> str:
    """The console account: ``local`` keeps the role it was bound to; ``local-<role>`` is
    given ``role`` directly (a local convenience for trying the staff and unit dialogues)."""
    external_id = f"local-{role}" if role else "local"
    identity = (
        await session.execute(
            select(ChatIdentity).where(
                col(ChatIdentity.channel) == CONSOLE, col(ChatIdentity.external_id) == external_id
            )
        )
    ).scalar_one_or_none()
    if identity is None:
        identity = ChatIdentity(channel=CONSOLE, external_id=external_id)
        session.add(identity)
    if role is None:
        return external_id
    identity.role = role
    if role == "staff":
        township = (
            (await session.execute(select(Township).order_by(col(Township.id)))).scalars().first()
        )
        if township is None:
            raise PufaError("no township yet: run `pufa seed --demo` or import villages first")
        identity.township_id = township.id
    elif role == "unit":
        # The unit whose lecture comes next, so that /duty has something to confirm.
        upcoming = (await load_rota(session)).upcoming(utcnow())
        if upcoming:
            identity.unit_id = upcoming[0].unit_id
        else:
            unit = (await session.execute(select(Unit).order_by(col(Unit.id)))).scalars().first()
            if unit is None:  # pragma: no cover - the catalog always has units
                raise PufaError("no unit in the catalog")
            identity.unit_id = unit.id
    return external_id


def register(group: click.Group) -> None:
    """Attach every feature's commands to ``group`` (two features may share a group, e.g.
    ``pufa invite residents`` and ``pufa invite staff``: their sub-commands are merged)."""
    for feature in FEATURES:
        for command in feature.commands:
            existing = group.commands.get(command.name or "")
            if isinstance(existing, click.Group) and isinstance(command, click.Group):
                for sub in command.commands.values():
                    existing.add_command(sub)
            else:
                group.add_command(command)


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
