"""Sample liaisons for ``pufa seed --demo``: a few in the demo villages (marked ``sample``), so
a newcomer sees coverage with villages met, short and empty. Idempotent: a sample whose number
is already registered in its township is left alone."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.volunteers.store import Keys, LiaisonData, add_liaison, find_duplicate
from storage.models import Village

__all__ = ["SAMPLES", "seed_sample_liaisons"]

SAMPLES: tuple[tuple[str, LiaisonData], ...] = (
    ("zbp-01", LiaisonData("张明", "m", "13800138001", "committee")),
    ("zbp-01", LiaisonData("李红", "f", "13800138002", "mediator")),
    ("zbp-02", LiaisonData("马文", "m", "13800138003", "grid")),
    ("xj-01", LiaisonData("王强", "m", "13800138004", "group_leader")),
    ("xj-02", LiaisonData("赵敏", "f", "13800138005", "party")),
    ("xj-02", LiaisonData("杨洁", "f", "13800138006", "notable")),
    ("xj-02", LiaisonData("刘军", "m", "13800138007", "entrepreneur")),
    ("wcl-01", LiaisonData("周丽", "f", "13800138008", "grid")),
)
"""(village code, liaison): zbp-01 meets its target, zbp-02 (poor) has 1 of 3, xj-02 (poor) 3
of 3, the rest are short or empty. The numbers are in a test range, not real people's."""


async def seed_sample_liaisons(session: AsyncSession, secret: bytes, now: datetime) -> int:
    """Add the sample liaisons that are missing; return how many were added."""
    keys = Keys(secret)
    codes = {code for code, _ in SAMPLES}
    villages = {
        v.code: v
        for v in (
            await session.execute(
                select(Village).where(col(Village.code).in_(codes), col(Village.sample).is_(True))
            )
        ).scalars()
    }
    added = 0
    for code, data in SAMPLES:
        village = villages.get(code)
        if village is None:
            continue
        if await find_duplicate(session, village.township_id, keys.mobile_hash(data.mobile)):
            continue
        await add_liaison(session, keys, village, data, actor="seed", now=now, sample=True)
        added += 1
    return added
