"""The weekly nudge: queued in the outbox for each township's staff (and bound groups) naming
the villages still short, once per ISO week, from Monday 09:00 on, and nothing when none are."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from subprocess import CompletedProcess
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from bot.outbox.queue import set_push_target
from bot.volunteers.coverage import iso_week, nudge_due
from bot.volunteers.feature import FEATURE
from bot.volunteers.store import Keys, LiaisonData, add_liaison
from core.feature import TaskContext
from core.metrics import Metrics
from core.settings import Settings
from storage.db import transaction
from storage.models import ChatIdentity, Township, Village
from storage.models_outbox import OutboxMessage
from tests.helpers import TEST_SECRET
from tests.volunteers.conftest import make_staff

TZ = ZoneInfo("Asia/Shanghai")
MONDAY_10 = datetime(2026, 6, 1, 10, 0, tzinfo=TZ)  # Monday 1 June 2026, 10:00 in Yinchuan


async def _complete_xj(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Give every village of 兴泾镇 its target, so it has nothing to be nudged about."""
    keys = Keys(TEST_SECRET.encode())
    async with transaction(sessions) as session:
        villages = {
            v.code: v
            for v in (
                await session.execute(
                    select(Village)
                    .join(Township, col(Township.id) == col(Village.township_id))
                    .where(col(Township.code) == "xj")
                )
            ).scalars()
        }
        for n, code in enumerate(["xj-01", "xj-03", "xj-03"]):
            data = LiaisonData(f"补{chr(0x4E00 + n)}", "m", f"1390000900{n}", "grid")
            await add_liaison(
                session, keys, villages[code], data, actor="test", now=MONDAY_10.astimezone(UTC)
            )


async def _messages(sessions: async_sessionmaker[AsyncSession]) -> list[OutboxMessage]:
    async with sessions() as session:
        return list(
            (await session.execute(select(OutboxMessage).order_by(col(OutboxMessage.id)))).scalars()
        )


def test_due_from_monday_nine_and_keyed_by_iso_week() -> None:
    assert not nudge_due(datetime(2026, 6, 1, 8, 59, tzinfo=TZ))
    assert nudge_due(datetime(2026, 6, 1, 9, 0, tzinfo=TZ))
    assert nudge_due(datetime(2026, 6, 4, 3, 0, tzinfo=TZ))  # a later day of the week
    assert iso_week(datetime(2026, 6, 1, tzinfo=TZ)) == "2026-W23"
    assert iso_week(datetime(2027, 1, 1, tzinfo=TZ)) == "2026-W53"


async def test_weekly_nudge_names_the_short_villages_once_a_week(
    demo: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    await make_staff(demo, "4001", "zbp")
    await make_staff(demo, "4002", "xj")
    wcl = await make_staff(demo, "4003", "wcl")
    async with transaction(demo) as session:
        zbp = (
            await session.execute(select(Township).where(col(Township.code) == "zbp"))
        ).scalar_one()
        await set_push_target(
            session, channel="telegram", address="-100777", role="staff", township_id=zbp.id
        )
        identity = await session.get(ChatIdentity, wcl)
        assert identity is not None
        identity.locale = "en"
    await _complete_xj(demo)
    (task,) = FEATURE.tasks

    async def run(at: datetime) -> None:
        await task.run(
            TaskContext(settings=settings, sessions=demo, metrics=Metrics(), now=at.astimezone(UTC))
        )

    await run(MONDAY_10 - timedelta(hours=2))  # Monday 08:00: not yet
    assert await _messages(demo) == []

    await run(MONDAY_10)
    queued = await _messages(demo)
    assert sorted((m.recipient, m.kind, m.status) for m in queued) == [
        ("-100777", "nudge", "pending"),
        ("4001", "nudge", "pending"),
        ("4003", "nudge", "pending"),
    ]  # 兴泾镇 has met every target: its staff get nothing; 怀远路街道 has no staff
    staff = next(m for m in queued if m.recipient == "4001")
    assert staff.dedupe_key == "volunteers.nudge:zbp:2026-W23:telegram:4001"
    assert staff.body["text"].splitlines() == [
        "法律明白人周报：镇北堡镇还有 3 个村（居）未达标。",
        "• 昊苑村：1/3，还差 2 名",
        "• 华西村：0/2，还差 2 名",
        "• 德林村：0/3，还差 3 名",
        "发送 /register 登记法律明白人。",
    ]
    english = next(m for m in queued if m.recipient == "4003")
    assert english.body["text"].startswith(
        "法律明白人 this week: 2 villages of 文昌路街道 are still short of their targets."
    )
    assert "• 文萃社区: 1 of 2, 1 more needed" in english.body["text"]

    await run(MONDAY_10 + timedelta(days=2))  # later the same week: nothing new
    assert len(await _messages(demo)) == 3
    await run(MONDAY_10 + timedelta(days=7))  # the next week: again
    again = await _messages(demo)
    assert len(again) == 6
    assert {m.dedupe_key.split(":")[2] for m in again} == {"2026-W23", "2026-W24"}


async def test_pufa_volunteers_nudge_queues_this_week(
    demo: async_sessionmaker[AsyncSession], pufa: Callable[..., CompletedProcess[str]]
) -> None:
    await make_staff(demo, "4101", "zbp")
    early = pufa("volunteers", "nudge", "--now", "2026-06-01T08:30")
    assert early.returncode == 0 and early.stdout.strip().splitlines()[-1] == "queued 0"
    result = pufa("volunteers", "nudge", "--now", "2026-06-01T09:30")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "queued 1"
    (message,) = await _messages(demo)
    assert message.recipient == "4101" and "德林村" in message.body["text"]
