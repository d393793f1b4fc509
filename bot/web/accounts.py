"""Console accounts: argon2 password hashes, creation, and logins throttled across processes.

Passwords are hashed with argon2id (``argon2-cffi``'s :class:`~argon2.PasswordHasher`, its
recommended parameters); a hash made with older parameters is replaced on the next good login.

Throttling counts failed logins in the database (:class:`~storage.models_console.LoginFailure`)
per account name and per client address over :data:`WINDOW`: after :data:`ACCOUNT_LIMIT`
failures for one name, or :data:`ADDRESS_LIMIT` from one address, further attempts are refused
without looking at the password until the oldest counted failure leaves the window. Because the
counts live in the database, every ``pufa serve`` process sharing it sees the same figures. A
good login clears its account's failures (not its address's).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from storage.audit import record
from storage.db import transaction
from storage.models import Township
from storage.models_console import CONSOLE_ROLES, ConsoleAccount, LoginFailure

__all__ = [
    "ACCOUNT_LIMIT",
    "ADDRESS_LIMIT",
    "MIN_PASSWORD",
    "WINDOW",
    "AccountError",
    "LoginResult",
    "attempt_login",
    "create_account",
    "hash_password",
    "set_active",
    "set_password",
    "throttle_wait",
]

WINDOW = timedelta(minutes=15)
"""How long a failed login counts."""
ACCOUNT_LIMIT = 5
"""Failed logins for one account name within :data:`WINDOW` before it is throttled."""
ADDRESS_LIMIT = 20
"""Failed logins from one client address within :data:`WINDOW` before it is throttled."""
MIN_PASSWORD = 10
"""Shortest password accepted."""
MAX_NAME = 64


class AccountError(ValueError):
    """An account that cannot be created as asked (the message says why)."""


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # Verified against when the name is unknown, so that answering takes as long either way.
    return _hasher().hash("pufa-no-such-account")


def hash_password(password: str) -> str:
    """The argon2id hash stored for ``password``."""
    return _hasher().hash(password)


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher().verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def account_key(name: str) -> str:
    """The throttling key of an account name (case and surrounding space ignored)."""
    return name.strip().casefold()[:128]


async def create_account(
    session: AsyncSession,
    name: str,
    password: str,
    *,
    role: str,
    township: str | None,
    now: datetime,
    actor: str = "cli",
) -> ConsoleAccount:
    """Create an account (audited); :class:`AccountError` when the input is not acceptable."""
    name = name.strip()
    if not name or len(name) > MAX_NAME or any(c.isspace() or not c.isprintable() for c in name):
        raise AccountError(f"a name is 1 to {MAX_NAME} characters without spaces")
    if role not in CONSOLE_ROLES:
        raise AccountError(f"unknown role {role!r}; roles: {', '.join(CONSOLE_ROLES)}")
    if role == "staff" and not township:
        raise AccountError("a staff account needs --township")
    if role != "staff" and township:
        raise AccountError("only a staff account is bound to a township")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")
    if township is not None:
        found = (
            await session.execute(select(col(Township.id)).where(col(Township.code) == township))
        ).first()
        if found is None:
            raise AccountError(f"unknown township {township!r}")
    taken = (
        await session.execute(
            select(col(ConsoleAccount.id)).where(
                func.lower(col(ConsoleAccount.name)) == name.lower()
            )
        )
    ).first()
    if taken is not None:
        raise AccountError(f"an account named {name!r} already exists")
    account = ConsoleAccount(
        name=name,
        password_hash=await asyncio.to_thread(hash_password, password),
        role=role,
        township=township,
        created_at=now,
    )
    session.add(account)
    await session.flush()
    record(
        session,
        actor,
        "console.account.create",
        name,
        before=None,
        after={"role": role, "township": township, "active": True},
    )
    return account


async def _account(session: AsyncSession, name: str) -> ConsoleAccount:
    account = (
        await session.execute(
            select(ConsoleAccount).where(
                func.lower(col(ConsoleAccount.name)) == name.strip().lower()
            )
        )
    ).scalar_one_or_none()
    if account is None:
        raise AccountError(f"no account named {name!r}")
    return account


async def set_active(
    session: AsyncSession, name: str, active: bool, *, actor: str = "cli"
) -> ConsoleAccount:
    """Enable or disable an account (audited); a disabled account is logged out at once."""
    account = await _account(session, name)
    if account.active != active:
        record(
            session,
            actor,
            "console.account.enable" if active else "console.account.disable",
            account.name,
            before={"active": account.active},
            after={"active": active},
        )
        account.active = active
    return account


async def set_password(
    session: AsyncSession, name: str, password: str, *, actor: str = "cli"
) -> ConsoleAccount:
    """Give an account a new password (audited, without the password)."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")
    account = await _account(session, name)
    account.password_hash = await asyncio.to_thread(hash_password, password)
    record(session, actor, "console.account.password", account.name)
    return account


async def _failures(session: AsyncSession, kind: str, key: str, since: datetime) -> list[datetime]:
    rows = await session.execute(
        select(col(LoginFailure.at))
        .where(
            col(LoginFailure.kind) == kind,
            col(LoginFailure.key) == key,
            col(LoginFailure.at) > since,
        )
        .order_by(col(LoginFailure.at))
    )
    return list(rows.scalars())


def throttle_wait(failures: list[datetime], limit: int, now: datetime) -> int:
    """Seconds to wait before another attempt, given the failures inside the window (oldest
    first): 0 while fewer than ``limit``; otherwise until enough of them leave the window."""
    if len(failures) < limit:
        return 0
    oldest_that_matters = failures[len(failures) - limit]
    return max(1, math.ceil((oldest_that_matters + WINDOW - now).total_seconds()))


@dataclass(frozen=True, slots=True)
class LoginResult:
    """The outcome of a login attempt: the account, or ``retry_after`` seconds when throttled,
    or neither when the name or password is wrong."""

    account: ConsoleAccount | None = None
    retry_after: int = 0


async def attempt_login(
    sessions: async_sessionmaker[AsyncSession],
    name: str,
    password: str,
    address: str,
    now: datetime,
) -> LoginResult:
    """Check a login: throttled, wrong, or good (then audited and the account's failures
    cleared). Every failure is recorded per account name and per address."""
    akey = account_key(name)
    addr = address[:128] or "unknown"
    since = now - WINDOW
    async with transaction(sessions) as session:
        wait = max(
            throttle_wait(await _failures(session, "account", akey, since), ACCOUNT_LIMIT, now),
            throttle_wait(await _failures(session, "address", addr, since), ADDRESS_LIMIT, now),
        )
        account = None
        if not wait:
            account = (
                await session.execute(
                    select(ConsoleAccount).where(
                        func.lower(col(ConsoleAccount.name)) == name.strip().lower(),
                        col(ConsoleAccount.active).is_(True),
                    )
                )
            ).scalar_one_or_none()
    if wait:
        return LoginResult(retry_after=wait)
    stored = account.password_hash if account is not None else _dummy_hash()
    good = await asyncio.to_thread(_verify, stored, password) and account is not None
    async with transaction(sessions) as session:
        if not good or account is None:
            await session.execute(delete(LoginFailure).where(col(LoginFailure.at) <= since))
            session.add(LoginFailure(kind="account", key=akey, at=now))
            session.add(LoginFailure(kind="address", key=addr, at=now))
            record(session, f"address:{addr}", "console.login_failed", akey)
            return LoginResult()
        await session.execute(
            delete(LoginFailure).where(
                col(LoginFailure.kind) == "account", col(LoginFailure.key) == akey
            )
        )
        fresh = await session.get(ConsoleAccount, account.id)
        assert fresh is not None
        fresh.last_login_at = now
        if _hasher().check_needs_rehash(fresh.password_hash):
            fresh.password_hash = await asyncio.to_thread(hash_password, password)
        record(session, f"console:{fresh.name}", "console.login", fresh.name, address=addr)
        return LoginResult(account=fresh)
