"""``pufa chat`` (the dialogs in a terminal) and ``pufa invite staff|unit|coordinator``."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import click

from bot.cli import get_settings, with_sessions

__all__ = ["commands"]

_DEEP_LINK = "https://t.me/{bot}?start=b_{code}"


@click.group()
def invite() -> None:
    """Create invitations (bind codes for staff, units and the coordinator)."""


def _print_invite(created: Any, bot: str | None, what: str) -> None:
    link = _DEEP_LINK.format(bot=bot or "<bot>", code=created.code)
    click.echo(
        f"bind code for {what}, single use, valid until {created.expires_at:%Y-%m-%d %H:%M} UTC"
    )
    click.echo(f"  in chat: /bind {created.code}")
    click.echo(f"  deep link: {link}")
    click.echo(created.code)


def _make(ctx: click.Context, role: str, ttl_days: float, **scope: str | None) -> Any:
    settings = get_settings(ctx)

    async def body(sessions: Any) -> Any:
        from bot.dialogs.invites import create_invite
        from storage.db import transaction
        from storage.types import utcnow

        async with transaction(sessions) as session:
            return await create_invite(
                session,
                settings.secret(),
                role,  # type: ignore[arg-type]
                now=utcnow(),
                ttl=timedelta(days=ttl_days),
                **scope,
            )

    return asyncio.run(with_sessions(settings, body))


_ttl = click.option(
    "--ttl-days",
    type=click.FloatRange(min=0.01, max=90),
    default=7,
    show_default=True,
    help="Days before the code expires.",
)
_bot = click.option(
    "--bot",
    envvar="PUFA_TELEGRAM_BOT_USERNAME",
    default=None,
    help="Telegram bot username for the deep link (env PUFA_TELEGRAM_BOT_USERNAME).",
)


@invite.command("staff")
@click.option("--township", required=True, help="Township code (镇街代码).")
@_ttl
@_bot
@click.pass_context
def invite_staff(ctx: click.Context, township: str, ttl_days: float, bot: str | None) -> None:
    """A bind code for township staff of TOWNSHIP (they register legal liaisons)."""
    created = _make(ctx, "staff", ttl_days, township=township)
    _print_invite(created, bot, f"township staff of {created.scope}")


@invite.command("unit")
@click.argument("unit")
@_ttl
@_bot
@click.pass_context
def invite_unit(ctx: click.Context, unit: str, ttl_days: float, bot: str | None) -> None:
    """A bind code for the lecture unit UNIT (its name, e.g. 司法局, or its code)."""
    created = _make(ctx, "unit", ttl_days, unit=unit)
    _print_invite(created, bot, f"unit {created.scope}")


@invite.command("coordinator")
@_ttl
@_bot
@click.pass_context
def invite_coordinator(ctx: click.Context, ttl_days: float, bot: str | None) -> None:
    """A bind code for the rota coordinator (receives escalations)."""
    created = _make(ctx, "coordinator", ttl_days)
    _print_invite(created, bot, "the rota coordinator")


@click.command("chat")
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

    async def body(sessions: Any) -> None:
        from bot.channels.console import run_console
        from bot.dialogs import build_runtime
        from bot.seeding import seed_catalog
        from storage.db import transaction

        async with transaction(sessions) as session:
            await seed_catalog(session)
            external_id = await _console_identity(session, role)
        runtime = build_runtime(settings, sessions)
        click.echo(f"pufa chat as {role or 'the console account'} — type help, survey, or quit.")
        await run_console(runtime, external_id, language=lang or settings.default_locale)

    asyncio.run(with_sessions(settings, body))


async def _console_identity(session: Any, role: str | None) -> str:
    """The console account: ``local`` keeps the role it was bound to; ``local-<role>`` is
    given ``role`` directly (a local convenience for trying the staff and unit dialogues)."""
    from sqlalchemy import select

    from bot.errors import PufaError
    from storage.models import ChatIdentity, Township, Unit

    external_id = f"local-{role}" if role else "local"
    identity = (
        await session.execute(
            select(ChatIdentity).where(
                ChatIdentity.channel == "console", ChatIdentity.external_id == external_id
            )
        )
    ).scalar_one_or_none()
    if identity is None:
        identity = ChatIdentity(channel="console", external_id=external_id)
        session.add(identity)
    if role is None:
        return external_id
    identity.role = role
    if role == "staff":
        township = (await session.execute(select(Township).order_by(Township.id))).scalars().first()
        if township is None:
            raise PufaError("no township yet: run `pufa seed --demo` or import villages first")
        identity.township_id = township.id
    elif role == "unit":
        unit = (await session.execute(select(Unit).order_by(Unit.id))).scalars().first()
        if unit is None:  # pragma: no cover - the catalog always has units
            raise PufaError("no unit in the catalog")
        identity.unit_id = unit.id
    return external_id


commands = [invite, chat]
