"""Sample meetings for ``pufa seed --demo``, so a newcomer sees a populated calendar.

Both committees get their usual rhythm around the seeding day — 区委常委会 on the 2nd and 4th
Thursday at 08:30, 政府常务会 on the 1st and 3rd Tuesday at 09:00, from two months back to
two months ahead — with the past lectures confirmed, their topics sent and marked (one missed),
and the next lecture of each committee confirmed with a topic. Every meeting is marked
``sample``: the scheduler sends nothing about it and the report leaves it out unless asked
(``--include-sample``). Loading twice adds nothing.
"""

from __future__ import annotations

from datetime import UTC, timedelta

from sqlalchemy import func, select
from sqlmodel import col

from bot.rota.calendar import WEEKDAYS, add_months, series_dates
from bot.rota.store import load, turn_row
from core.feature import SeedContext
from storage.models_rota import RotaMeeting

__all__ = ["SAMPLE_TOPICS", "seed_demo"]

SAMPLE_TOPICS = (
    (
        "以案释法：《民法典》居住权纠纷",
        "一起居住权纠纷的裁判要点；行政机关在不动产登记中的注意事项。",
    ),
    ("《行政复议法》修订要点解读", "受案范围的变化；复议前置情形；对行政机关应诉工作的要求。"),
    ("《信访工作条例》与依法分类处理信访诉求", "信访事项的受理、办理和督办；典型案例分析。"),
    ("《优化营商环境条例》与规范涉企执法", "行政检查的规范；包容审慎监管；涉企执法案例。"),
    ("《个人信息保护法》在政务服务中的适用", "政务数据收集、使用和公开的边界；典型违法情形。"),
    ("以案释法：行政处罚中的程序违法", "告知、听证和说明理由；一起撤销行政处罚的判决。"),
)
RHYTHM = {"standing": ("thu", (2, 4), 8, 30), "executive": ("tue", (1, 3), 9, 0)}


async def seed_demo(ctx: SeedContext, catalog: object = None) -> None:
    """Add the sample meetings once (see the module docstring)."""
    session = ctx.session
    existing = (
        await session.execute(
            select(func.count(col(RotaMeeting.id))).where(col(RotaMeeting.sample).is_(True))
        )
    ).scalar_one()
    if existing:
        return
    tz = ctx.settings.tz
    now = ctx.now
    local = now.astimezone(tz)
    year, month = add_months(local.year, local.month, -2)
    first = local.date().replace(year=year, month=month, day=1)
    made = 0
    for committee, (weekday, weeks, hour, minute) in RHYTHM.items():
        clock = local.time().replace(hour=hour, minute=minute, second=0, microsecond=0)
        for moment in series_dates(first, 5, WEEKDAYS[weekday], weeks, clock, tz):
            at = moment.astimezone(UTC)
            created = min(now, at - timedelta(days=30))
            session.add(
                RotaMeeting(
                    committee=committee,
                    starts_at=at,
                    notice_at=created,
                    sample=True,
                    created_at=created,
                    updated_at=created,
                )
            )
            made += 1
    await session.flush()
    snapshot = await load(session)
    sample = sorted(
        (s for s in snapshot.slots.values() if s.meeting.sample),
        key=lambda s: (s.meeting.starts_at, s.meeting.id),
    )
    next_done: set[str] = set()
    for index, slot in enumerate(sample):
        meeting = slot.meeting
        past = meeting.starts_at <= now
        if not past and meeting.committee in next_done:
            continue
        if not past:
            next_done.add(meeting.committee)
        row = await turn_row(session, snapshot, slot)
        row.confirmed_meeting_id = meeting.id
        row.confirmed_revision = meeting.revision
        row.confirmed_at = meeting.starts_at - timedelta(days=6)
        row.confirmed_by = "sample"
        title, outline = SAMPLE_TOPICS[index % len(SAMPLE_TOPICS)]
        row.topic_title = title
        row.topic_outline = outline
        row.topic_at = meeting.starts_at - timedelta(days=3)
        row.topic_by = "sample"
        if past:
            stored = snapshot.rows[meeting.id]
            stored.outcome = "missed" if index == 3 else "delivered"
            stored.outcome_unit_id = slot.unit_id
            stored.outcome_at = meeting.starts_at + timedelta(hours=2)
    await session.flush()
    ctx.report.count("rota_meeting", created=True, n=made)
