"""``pufa invite staff|unit|coordinator``: bind codes that give a chat account a role."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import click
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.binding.invites import CreatedInvite, Role, create_invite
from core.cli import get_settings, local_time
from core.clock import utcnow
from storage.db import transaction
from storage.runner import with_sessions

__all__ = ["commands"]

_DEEP_LINK = "https://t.me/{bot}?start=b_{code}"


@click.group()
def invite() -> None:
    """Create invitations (bind codes for staff, units and the coordinator)."""


def _print_invite(ctx: click.Context, created: CreatedInvite, bot: str | None, what: str) -> None:
    link = _DEEP_LINK.format(bot=bot or "<bot>", code=created.code)
    until = local_time(created.expires_at, get_settings(ctx).tz)
    click.echo(f"bind code for {what}, single use, valid until {until}")
    click.echo(f"  in chat: /bind {created.code}")
    click.echo(f"  deep link: {link}")
    click.echo(created.code)


def _make(
    ctx: click.Context,
    role: Role,
    ttl_days: float,
    *,
    township: str | None = None,
    unit: str | None = None,
) -> CreatedInvite:
    settings = get_settings(ctx)

    async def body(sessions: async_sessionmaker[AsyncSession]) -> CreatedInvite:
        async with transaction(sessions) as session:
            return await create_invite(
                session,
                settings.secret(),
                role,
                now=utcnow(),
                ttl=timedelta(days=ttl_days),
                township=township,
                unit=unit,
            )

    return asyncio.run(with_sessions(settings.database_url, body))


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
    _print_invite(ctx, created, bot, f"township staff of {created.scope}")


@invite.command("unit")
@click.argument("unit")
@_ttl
@_bot
@click.pass_context
def invite_unit(ctx: click.Context, unit: str, ttl_days: float, bot: str | None) -> None:
    """A bind code for the lecture unit UNIT (its name, e.g. 司法局, or its code)."""
    created = _make(ctx, "unit", ttl_days, unit=unit)
    _print_invite(ctx, created, bot, f"unit {created.scope}")


@invite.command("coordinator")
@_ttl
@_bot
@click.pass_context
def invite_coordinator(ctx: click.Context, ttl_days: float, bot: str | None) -> None:
    """A bind code for the rota coordinator (receives escalations)."""
    created = _make(ctx, "coordinator", ttl_days)
    _print_invite(ctx, created, bot, "the rota coordinator")


commands = [invite]
