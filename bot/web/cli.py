"""``pufa admin create NAME [--role …] [--township CODE]``, ``pufa admin list``,
``pufa admin password NAME`` and ``pufa admin disable|enable NAME``.

A password is asked twice on a terminal (not echoed); when standard input is not a terminal
its first two lines are read instead, so scripts can create accounts. Every change is written
to the audit log (actor ``cli``).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from bot.web.accounts import (
    MIN_PASSWORD,
    AccountError,
    create_account,
    set_active,
    set_password,
)
from core.cli import get_settings
from core.clock import utcnow
from core.errors import PufaError
from storage.db import transaction
from storage.models_console import CONSOLE_ROLES, ConsoleAccount
from storage.runner import with_sessions

__all__ = ["commands"]


@click.group()
def admin() -> None:
    """Web console accounts."""


def _read_password() -> str:
    if sys.stdin.isatty():
        return str(
            click.prompt(
                f"Password (at least {MIN_PASSWORD} characters)",
                hide_input=True,
                confirmation_prompt="Repeat the password",
            )
        )
    first = sys.stdin.readline().rstrip("\r\n")
    second = sys.stdin.readline().rstrip("\r\n")
    if first != second:
        raise PufaError("the two passwords differ")
    return first


@admin.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(list(CONSOLE_ROLES)), default="admin", show_default=True)
@click.option("--township", default=None, help="Township code (required for --role staff).")
@click.pass_context
def admin_create(ctx: click.Context, name: str, role: str, township: str | None) -> None:
    """Create a console account NAME; the password is asked twice (or read from two lines of
    standard input)."""
    if role == "staff" and not township:
        raise click.UsageError("--role staff needs --township")
    if role != "staff" and township:
        raise click.UsageError("only --role staff takes --township")
    settings = get_settings(ctx)
    password = _read_password()

    async def body(sessions: async_sessionmaker[AsyncSession]) -> int:
        try:
            async with transaction(sessions) as session:
                account = await create_account(
                    session, name, password, role=role, township=township, now=utcnow()
                )
                assert account.id is not None
                return account.id
        except AccountError as exc:
            raise PufaError(str(exc)) from exc

    ident = asyncio.run(with_sessions(settings.database_url, body))
    scope = f" for township {township}" if township else ""
    click.echo(f"console account #{ident} {name!r} created, role {role}{scope}")
    click.echo(f"log in at {settings.public_url.rstrip('/')}/admin/")


@admin.command("list")
@click.pass_context
def admin_list(ctx: click.Context) -> None:
    """Console accounts: name, role, township, active, last login."""
    settings = get_settings(ctx)

    async def body(sessions: async_sessionmaker[AsyncSession]) -> list[ConsoleAccount]:
        async with sessions() as session:
            rows = await session.execute(select(ConsoleAccount).order_by(col(ConsoleAccount.id)))
            return list(rows.scalars())

    tz = settings.tz
    for account in asyncio.run(with_sessions(settings.database_url, body)):
        last = (
            account.last_login_at.astimezone(tz).isoformat(timespec="minutes")
            if account.last_login_at
            else "never"
        )
        click.echo(
            f"{account.id}\t{account.name}\t{account.role}\t{account.township or ''}\t"
            f"{'active' if account.active else 'disabled'}\t{last}"
        )


def _change(ctx: click.Context, change: Any) -> None:
    settings = get_settings(ctx)

    async def body(sessions: async_sessionmaker[AsyncSession]) -> None:
        try:
            async with transaction(sessions) as session:
                await change(session)
        except AccountError as exc:
            raise PufaError(str(exc)) from exc

    asyncio.run(with_sessions(settings.database_url, body))


@admin.command("password")
@click.argument("name")
@click.pass_context
def admin_password(ctx: click.Context, name: str) -> None:
    """Give account NAME a new password (asked twice, or two lines of standard input)."""
    password = _read_password()
    _change(ctx, lambda session: set_password(session, name, password))
    click.echo(f"password of {name!r} changed")


@admin.command("disable")
@click.argument("name")
@click.pass_context
def admin_disable(ctx: click.Context, name: str) -> None:
    """Disable account NAME: it cannot log in, and its open sessions end at once."""
    _change(ctx, lambda session: set_active(session, name, False))
    click.echo(f"{name!r} disabled")


@admin.command("enable")
@click.argument("name")
@click.pass_context
def admin_enable(ctx: click.Context, name: str) -> None:
    """Enable account NAME again."""
    _change(ctx, lambda session: set_active(session, name, True))
    click.echo(f"{name!r} enabled")


commands = [admin]
"""The click commands this feature adds to ``pufa``."""
