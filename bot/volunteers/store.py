"""Database access of the 法律明白人 registry: villages of a township, liaisons (sealed at rest),
coverage figures and the audit trail.

Names and mobile numbers go through :class:`Keys` on the way in and out: sealed with
:class:`core.crypto.Sealer` (one purpose each) and, for the number, a keyed hash that finds the
same number in a township without opening anything. Every change is written to the audit log
with who, what, when and the record before and after, masked (``张*``, ``138****1234``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.volunteers.coverage import Coverage, VillageFacts, compute_coverage, target_for
from bot.volunteers.rules import mask_mobile, mask_name
from core.crypto import Sealer, keyed_hash
from storage.models import AuditLog, Township, Village
from storage.models_volunteers import Volunteer

__all__ = [
    "Keys",
    "Liaison",
    "LiaisonData",
    "VillageCount",
    "add_liaison",
    "audit_snapshot",
    "count_in_village",
    "coverage",
    "find_duplicate",
    "get_liaison",
    "get_township",
    "list_liaisons",
    "remove_liaison",
    "search_villages",
    "township_villages",
    "update_liaison",
    "village_in_township",
]

NAME_PURPOSE = "volunteer.name"
MOBILE_PURPOSE = "volunteer.mobile"
DRAFT_PURPOSE = "volunteer.draft"


class Keys:
    """Sealers and the number hash of the registry, derived once from the secret key."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.name = Sealer(secret, NAME_PURPOSE)
        self.mobile = Sealer(secret, MOBILE_PURPOSE)
        self.draft = Sealer(secret, DRAFT_PURPOSE)

    def mobile_hash(self, national: str) -> str:
        """The keyed hash of an 11-digit mobile number (unique per township)."""
        return keyed_hash(self.secret, MOBILE_PURPOSE, national)


@dataclass(frozen=True, slots=True)
class LiaisonData:
    """A liaison's details in plain text (validated by :mod:`bot.volunteers.rules`)."""

    name: str
    gender: str
    mobile: str
    background: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class Liaison:
    """A registered liaison, opened, with where they serve."""

    id: int
    township: str
    township_name: str
    village: str
    village_name: str
    village_id: int
    data: LiaisonData
    sample: bool
    created_at: datetime

    @property
    def masked_mobile(self) -> str:
        """``138****1234``."""
        return mask_mobile(self.data.mobile)


@dataclass(frozen=True, slots=True)
class VillageCount:
    """A village of a township with its liaison count and target."""

    village: Village
    count: int

    @property
    def target(self) -> int:
        """2, or 3 for a poor village."""
        return target_for(self.village.poor)

    @property
    def shortfall(self) -> int:
        """How many are still missing."""
        return max(0, self.target - self.count)


def audit_snapshot(village: str, data: LiaisonData) -> dict[str, str]:
    """A liaison as the audit log keeps it: name and number masked."""
    return {
        "village": village,
        "name": mask_name(data.name),
        "gender": data.gender,
        "mobile": mask_mobile(data.mobile),
        "background": data.background,
        "note": data.note,
    }


def _audit(
    session: AsyncSession, now: datetime, actor: str, action: str, subject: str, **detail: Any
) -> None:
    session.add(AuditLog(at=now, actor=actor, action=action, subject=subject, detail=detail))


# ---------------------------------------------------------------------------------- villages


async def get_township(session: AsyncSession, township_id: int) -> Township | None:
    """A township by id."""
    return await session.get(Township, township_id)


async def _counts(
    session: AsyncSession, village_ids: Iterable[int] | None = None, *, include_sample: bool = True
) -> dict[int, int]:
    query = select(col(Volunteer.village_id), func.count()).group_by(col(Volunteer.village_id))
    if village_ids is not None:
        query = query.where(col(Volunteer.village_id).in_(list(village_ids)))
    if not include_sample:
        query = query.where(col(Volunteer.sample).is_(False))
    return {int(vid): int(n) for vid, n in (await session.execute(query)).all()}


async def township_villages(session: AsyncSession, township_id: int) -> list[VillageCount]:
    """The villages of a township (by code) with their liaison counts (sample ones included:
    this is the township's working view)."""
    villages = list(
        (
            await session.execute(
                select(Village)
                .where(col(Village.township_id) == township_id)
                .order_by(col(Village.code))
            )
        ).scalars()
    )
    counts = await _counts(session, [v.id for v in villages if v.id is not None])
    return [VillageCount(v, counts.get(v.id or 0, 0)) for v in villages]


async def village_in_township(
    session: AsyncSession, village_id: int, township_id: int
) -> Village | None:
    """The village with this id if it belongs to the township, else ``None`` (scope check)."""
    village = await session.get(Village, village_id)
    if village is None or village.township_id != township_id:
        return None
    return village


async def search_villages(session: AsyncSession, township_id: int, query: str) -> list[Village]:
    """Villages of the township whose name contains ``query`` or whose code is ``query``."""
    text = query.strip()
    if not text:
        return []
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    found = (
        await session.execute(
            select(Village)
            .where(
                col(Village.township_id) == township_id,
                col(Village.name).like(f"%{escaped}%", escape="\\")
                | (func.lower(col(Village.code)) == text.lower()),
            )
            .order_by(col(Village.code))
        )
    ).scalars()
    return list(found)


async def count_in_village(session: AsyncSession, village_id: int) -> int:
    """How many liaisons a village has (sample ones included)."""
    return (await _counts(session, [village_id])).get(village_id, 0)


# ---------------------------------------------------------------------------------- liaisons


async def find_duplicate(
    session: AsyncSession, township_id: int, mobile_hash: str, *, exclude: int | None = None
) -> Volunteer | None:
    """The liaison of the township registered with this number, if any."""
    query = select(Volunteer).where(
        col(Volunteer.township_id) == township_id, col(Volunteer.mobile_hash) == mobile_hash
    )
    if exclude is not None:
        query = query.where(col(Volunteer.id) != exclude)
    return (await session.execute(query)).scalars().first()


def _open(keys: Keys, row: Volunteer) -> LiaisonData:
    return LiaisonData(
        name=keys.name.open(row.name_sealed),
        gender=row.gender,
        mobile=keys.mobile.open(row.mobile_sealed),
        background=row.background,
        note=row.background_note,
    )


def sealed_values(keys: Keys, data: LiaisonData) -> dict[str, Any]:
    """The stored columns of ``data``: sealed name and number, number hash, plain fields."""
    return {
        "name_sealed": keys.name.seal(data.name),
        "mobile_sealed": keys.mobile.seal(data.mobile),
        "mobile_hash": keys.mobile_hash(data.mobile),
        "gender": data.gender,
        "background": data.background,
        "background_note": data.note,
    }


async def add_liaison(
    session: AsyncSession,
    keys: Keys,
    village: Village,
    data: LiaisonData,
    *,
    actor: str,
    now: datetime,
    sample: bool = False,
) -> Volunteer:
    """Store a new liaison of ``village`` (the caller checked scope and duplicates)."""
    assert village.id is not None
    row = Volunteer(
        township_id=village.township_id,
        village_id=village.id,
        sample=sample,
        created_by=actor,
        created_at=now,
        updated_at=now,
        **sealed_values(keys, data),
    )
    session.add(row)
    await session.flush()
    _audit(
        session,
        now,
        actor,
        "volunteer.create",
        f"volunteer:{row.id}",
        after=audit_snapshot(village.code, data),
    )
    return row


async def get_liaison(
    session: AsyncSession, keys: Keys, liaison_id: int, *, township_id: int | None
) -> tuple[Volunteer, Liaison] | None:
    """A liaison by id, within ``township_id`` when given (``None`` outside the scope)."""
    row = await session.get(Volunteer, liaison_id)
    if row is None or (township_id is not None and row.township_id != township_id):
        return None
    found = await list_liaisons(session, keys, ids=[liaison_id])
    return (row, found[0]) if found else None


async def update_liaison(
    session: AsyncSession,
    keys: Keys,
    row: Volunteer,
    before: Liaison,
    after: LiaisonData,
    *,
    actor: str,
    now: datetime,
) -> None:
    """Save changed details of a liaison, with the change in the audit log."""
    for key, value in sealed_values(keys, after).items():
        setattr(row, key, value)
    row.updated_at = now
    await session.flush()
    _audit(
        session,
        now,
        actor,
        "volunteer.update",
        f"volunteer:{row.id}",
        before=audit_snapshot(before.village, before.data),
        after=audit_snapshot(before.village, after),
    )


async def remove_liaison(
    session: AsyncSession,
    row: Volunteer,
    before: Liaison,
    reason: str,
    *,
    actor: str,
    now: datetime,
) -> None:
    """Delete a liaison's record (their personal data goes with it); the audit log keeps the
    masked record and the reason."""
    await session.execute(delete(Volunteer).where(col(Volunteer.id) == row.id))
    _audit(
        session,
        now,
        actor,
        "volunteer.delete",
        f"volunteer:{row.id}",
        before=audit_snapshot(before.village, before.data),
        reason=reason,
    )


async def list_liaisons(
    session: AsyncSession,
    keys: Keys,
    *,
    township: str | None = None,
    township_id: int | None = None,
    village: str | None = None,
    village_id: int | None = None,
    ids: Sequence[int] | None = None,
    include_sample: bool = True,
) -> list[Liaison]:
    """Liaisons (opened) ordered by township, village and registration."""
    query = (
        select(Volunteer, Village, Township)
        .join(Village, col(Village.id) == col(Volunteer.village_id))
        .join(Township, col(Township.id) == col(Volunteer.township_id))
        .order_by(col(Township.code), col(Village.code), col(Volunteer.id))
    )
    if township is not None:
        query = query.where(col(Township.code) == township)
    if township_id is not None:
        query = query.where(col(Volunteer.township_id) == township_id)
    if village is not None:
        query = query.where(col(Village.code) == village)
    if village_id is not None:
        query = query.where(col(Volunteer.village_id) == village_id)
    if ids is not None:
        query = query.where(col(Volunteer.id).in_(list(ids)))
    if not include_sample:
        query = query.where(col(Volunteer.sample).is_(False))
    out = []
    for row, vil, town in (await session.execute(query)).all():
        out.append(
            Liaison(
                id=row.id or 0,
                township=town.code,
                township_name=town.name,
                village=vil.code,
                village_name=vil.name,
                village_id=vil.id or 0,
                data=_open(keys, row),
                sample=row.sample,
                created_at=row.created_at,
            )
        )
    return out


# ---------------------------------------------------------------------------------- coverage


async def coverage(
    session: AsyncSession, *, township: str | None = None, include_sample: bool = False
) -> Coverage:
    """Coverage per village and township; sample villages and liaisons only when asked."""
    query = select(Village, Township).join(Township, col(Township.id) == col(Village.township_id))
    if township is not None:
        query = query.where(col(Township.code) == township)
    if not include_sample:
        query = query.where(col(Village.sample).is_(False))
    facts = [
        VillageFacts(
            id=v.id or 0,
            township=t.code,
            township_name=t.name,
            village=v.code,
            village_name=v.name,
            kind=v.kind,
            poor=v.poor,
        )
        for v, t in (await session.execute(query)).all()
    ]
    counts = await _counts(session, include_sample=include_sample)
    return compute_coverage(facts, counts, include_sample=include_sample)


async def township_by_code(session: AsyncSession, code: str) -> Township | None:
    """A township by its code."""
    return (
        await session.execute(select(Township).where(col(Township.code) == code))
    ).scalar_one_or_none()
