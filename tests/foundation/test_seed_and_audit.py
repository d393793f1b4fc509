"""The built-in catalog: both rotas as in the source documents, idempotent loading."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.audit import record
from storage.db import transaction
from storage.models import AuditLog, Indicator, RotaEntry, Township, Unit, Village
from storage.seed import load_catalog, load_demo

STANDING = "司法局 党办 法院 检察院 纪委监委 公安分局 综合执法局 信访局 卫生健康局 统计局 农业农村水务局 财政局 审计局 人社局 教育局 发改局 政法委 自然资源局 住房建设交通局 医疗保障局"  # noqa: E501
EXECUTIVE = "司法局 政办 法院 检察院 纪委监委 网信办 政法委 妇联 审计局 人社局 自然资源局 住房建设交通局 发改局 民族宗教局 工会 审批服务管理局 综合执法局 农业农村水务局 财政局 退役军人事务局"  # noqa: E501


async def _rota(session: AsyncSession, committee: str) -> list[str]:
    rows = await session.execute(
        select(Unit.name)
        .join(RotaEntry, RotaEntry.unit_id == Unit.id)
        .where(RotaEntry.committee == committee)
        .order_by(RotaEntry.position)
    )
    return list(rows.scalars())


async def test_catalog_matches_source_and_loads_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with transaction(sessions) as session:
        first = await load_catalog(session)
    assert first.created["rota_entry"] == 40
    async with transaction(sessions) as session:
        second = await load_catalog(session)
        assert second.changed == 0
        assert await _rota(session, "standing") == STANDING.split()
        assert await _rota(session, "executive") == EXECUTIVE.split()
        targets = dict((await session.execute(select(Indicator.code, Indicator.target))).all())
    assert targets["info_disclosure"] == pytest.approx(0.90)
    assert targets["deputies_proposals"] == pytest.approx(0.95)
    assert targets["law_enforcement"] is None
    assert sum(1 for v in targets.values() if v == pytest.approx(0.80)) == 6


async def test_demo_data_is_marked_and_idempotent(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with transaction(sessions) as session:
        await load_demo(session)
    async with transaction(sessions) as session:
        again = await load_demo(session)
        assert again.changed == 0
        towns = (await session.execute(select(Township))).scalars().all()
        villages = (await session.execute(select(Village))).scalars().all()
    assert towns and all(t.sample for t in towns)
    assert villages and all(v.sample for v in villages)
    assert any(v.poor for v in villages)


async def test_audit_log_is_append_only(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with transaction(sessions) as session:
        record(session, "admin:test", "survey.open", "fazhi-2026", reason="test")
    async with sessions() as session:
        entry = (await session.execute(select(AuditLog))).scalar_one()
        assert entry.detail == {"reason": "test"}
        assert entry.at.tzinfo is not None
        entry.action = "tampered"
        with pytest.raises(PermissionError):
            await session.flush()
        await session.rollback()
        await session.delete(entry)
        with pytest.raises(PermissionError):
            await session.flush()
        await session.rollback()
    async with sessions() as session:
        count = (await session.execute(select(func.count()).select_from(AuditLog))).scalar()
        action = (await session.execute(select(AuditLog.action))).scalar()
    assert (count, action) == (1, "survey.open")
