"""Bearer tokens for the JSON API of every feature: created by role, stored as hashes, revocable.

A token looks like ``pufa_<40 random characters>``; only its SHA-256 is stored, with the first
characters (``prefix``) so an operator can recognise which token to revoke. Roles:

- ``admin`` and ``analyst``: every survey's results, every township's figures;
- ``staff`` (bound to one township): that township only;
- ``coordinator``: the lecture rota (no survey results).

Each feature's API decides which roles may read what; :func:`authenticate` only says who the
bearer is.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.ids import parse_id
from storage.models_surveys import ApiToken

ROLES: tuple[str, ...] = ("admin", "analyst", "coordinator", "staff")
"""The roles a token can have."""

TOKEN_PREFIX = "pufa_"


def hash_token(token: str) -> str:
    """The stored form of a bearer token (hex SHA-256)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def create_api_token(
    session: AsyncSession,
    role: str,
    *,
    township: str | None = None,
    label: str = "",
    now: datetime,
) -> tuple[str, ApiToken]:
    """Create a token; return ``(secret token, stored row)``. The secret is not stored.

    Raises ``ValueError`` for an unknown role, or for ``staff`` without a township.
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    if role == "staff" and not township:
        raise ValueError("a staff token needs --township")
    if role != "staff" and township:
        raise ValueError("only a staff token is bound to a township")
    token = TOKEN_PREFIX + secrets.token_urlsafe(30)
    row = ApiToken(
        token_hash=hash_token(token),
        prefix=token[:12],
        role=role,
        township=township,
        label=label[:100],
        created_at=now,
    )
    session.add(row)
    await session.flush()
    return token, row


async def authenticate(session: AsyncSession, token: str) -> ApiToken | None:
    """The live (not revoked) token row for a presented bearer token, or ``None``."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = (
        await session.execute(select(ApiToken).where(col(ApiToken.token_hash) == hash_token(token)))
    ).scalar_one_or_none()
    if row is None or row.revoked_at is not None:
        return None
    return row


async def revoke_api_token(session: AsyncSession, prefix_or_id: str, now: datetime) -> int:
    """Revoke tokens by id or by their recorded prefix; return how many were revoked."""
    token_id = parse_id(prefix_or_id)
    condition = (
        col(ApiToken.id) == token_id
        if token_id is not None
        else col(ApiToken.prefix) == prefix_or_id[:12]
    )
    result = await session.execute(
        update(ApiToken)
        .where(condition, col(ApiToken.revoked_at).is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def list_api_tokens(session: AsyncSession) -> list[ApiToken]:
    """Every token row, newest first."""
    return list(
        (await session.execute(select(ApiToken).order_by(col(ApiToken.id).desc()))).scalars()
    )
