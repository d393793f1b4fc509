"""Invite (bind) codes: single-use, expiring codes that give a chat account a role.

``pufa invite staff --township CODE`` / ``unit UNIT`` / ``coordinator`` create one with
:func:`create_invite`; a person redeems it with ``/bind CODE`` or the deep link
``?start=b_CODE`` (:func:`redeem_invite`). Only an HMAC of the code is stored, so a database
dump does not reveal usable codes. The rota and volunteer features read the role and scope
from :class:`~storage.models.ChatIdentity`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.errors import PufaError
from storage.models import AuditLog, ChatIdentity, Township, Unit
from storage.models_dialogs import InviteCode

__all__ = [
    "CODE_ALPHABET",
    "CODE_LENGTH",
    "DEFAULT_TTL",
    "CreatedInvite",
    "InviteProblem",
    "Redeemed",
    "Role",
    "create_invite",
    "hash_code",
    "normalize_code",
    "redeem_invite",
]

Role = Literal["staff", "unit", "coordinator"]
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read aloud and typed safely
CODE_LENGTH = 12  # about 59 bits
DEFAULT_TTL = timedelta(days=7)


class InviteProblem(Exception):
    """Why a code cannot be redeemed: ``unknown``, ``used`` or ``expired``."""

    def __init__(self, reason: Literal["unknown", "used", "expired"]) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CreatedInvite:
    """A new invite: the code (shown once), its scope and expiry."""

    code: str
    role: Role
    scope: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Redeemed:
    """The role an account now has: ``scope_name`` is the township or unit name ('' otherwise)."""

    role: str
    scope_name: str
    township_id: int | None = None
    unit_id: int | None = None


def normalize_code(text: str) -> str:
    """Upper-case and drop spaces and dashes (``abcd-efgh`` → ``ABCDEFGH``)."""
    return "".join(ch for ch in text.upper() if ch.isalnum())


def hash_code(secret: bytes, code: str) -> str:
    """The keyed hash stored for ``code``."""
    return hmac.new(secret, normalize_code(code).encode(), hashlib.sha256).hexdigest()


async def _find_unit(session: AsyncSession, name_or_code: str) -> Unit:
    unit = (
        await session.execute(
            select(Unit).where(or_(col(Unit.name) == name_or_code, col(Unit.code) == name_or_code))
        )
    ).scalar_one_or_none()
    if unit is None:
        raise PufaError(f"no unit named {name_or_code!r} (use its name, e.g. 司法局, or code)")
    return unit


async def create_invite(
    session: AsyncSession,
    secret: bytes,
    role: Role,
    *,
    now: datetime,
    township: str | None = None,
    unit: str | None = None,
    ttl: timedelta = DEFAULT_TTL,
    created_by: str = "cli",
) -> CreatedInvite:
    """Create a single-use code for ``role`` (``staff`` needs ``township``, ``unit`` a unit)."""
    township_id = unit_id = None
    scope = ""
    if role == "staff":
        if not township:
            raise PufaError("staff invites need --township CODE")
        found = (
            await session.execute(select(Township).where(col(Township.code) == township))
        ).scalar_one_or_none()
        if found is None:
            raise PufaError(f"no township with code {township!r}")
        township_id, scope = found.id, found.code
    elif role == "unit":
        if not unit:
            raise PufaError("unit invites need the unit's name or code")
        found_unit = await _find_unit(session, unit)
        unit_id, scope = found_unit.id, found_unit.code
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    expires_at = now + ttl
    session.add(
        InviteCode(
            code_hash=hash_code(secret, code),
            role=role,
            township_id=township_id,
            unit_id=unit_id,
            created_at=now,
            expires_at=expires_at,
            created_by=created_by,
        )
    )
    session.add(
        AuditLog(
            at=now,
            actor=created_by,
            action="invite.create",
            subject=f"{role}:{scope}" if scope else role,
            detail={"expires_at": expires_at.isoformat()},
        )
    )
    await session.flush()
    return CreatedInvite(code, role, scope, expires_at)


async def redeem_invite(
    session: AsyncSession, secret: bytes, code: str, identity_id: int, now: datetime
) -> Redeemed:
    """Use ``code`` for the chat identity; raise :class:`InviteProblem` if it cannot be used.

    The code row is claimed with a guarded update (``used_at IS NULL``), so two people racing
    for one code cannot both get the role.
    """
    invite = (
        await session.execute(
            select(InviteCode).where(col(InviteCode.code_hash) == hash_code(secret, code))
        )
    ).scalar_one_or_none()
    if invite is None:
        raise InviteProblem("unknown")
    if invite.used_at is not None:
        raise InviteProblem("used")
    if invite.expires_at <= now:
        raise InviteProblem("expired")
    claimed = await session.execute(
        update(InviteCode)
        .where(col(InviteCode.id) == invite.id, col(InviteCode.used_at).is_(None))
        .values(used_at=now, used_by=identity_id)
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        raise InviteProblem("used")
    await session.execute(
        update(ChatIdentity)
        .where(col(ChatIdentity.id) == identity_id)
        .values(role=invite.role, township_id=invite.township_id, unit_id=invite.unit_id)
    )
    scope_name = ""
    if invite.township_id is not None:
        township = await session.get(Township, invite.township_id)
        scope_name = township.name if township else ""
    elif invite.unit_id is not None:
        unit = await session.get(Unit, invite.unit_id)
        scope_name = unit.name if unit else ""
    session.add(
        AuditLog(
            at=now,
            actor=f"identity:{identity_id}",
            action="invite.redeem",
            subject=invite.role,
            detail={"invite_id": invite.id, "scope": scope_name},
        )
    )
    return Redeemed(invite.role, scope_name, invite.township_id, invite.unit_id)
