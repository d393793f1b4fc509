"""The dialog store on a real database: one transaction per step, version guard, round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.dialogs.store import ConcurrentStep, claim_event, load_person, save_state
from core.messages import Inbound
from storage.db import transaction
from storage.models_dialogs import Conversation, ProcessedEvent

NOW = datetime(2026, 6, 1, 2, 0, 0, 123456, tzinfo=UTC)


async def _count(sessions: Any, model: Any) -> int:
    async with transaction(sessions) as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


async def test_claim_is_rolled_back_with_a_failed_step(seeded: Any) -> None:
    with pytest.raises(RuntimeError):
        async with transaction(seeded) as session:
            assert await claim_event(session, "telegram", "u-9", NOW)
            raise RuntimeError("the step failed")
    assert await _count(seeded, ProcessedEvent) == 0
    async with transaction(seeded) as session:
        assert await claim_event(session, "telegram", "u-9", NOW)
        assert not await claim_event(session, "telegram", "u-9", NOW)


async def test_state_round_trip_and_version_guard(seeded: Any) -> None:
    state = {"s": "fazhi-2026", "a": {"q1": "很满意", "q2": ["a", "b"]}, "m": [1], "tw": None}
    async with transaction(seeded) as session:
        person = await load_person(session, "telegram", "4242", "en", NOW)
        assert not person.has_conversation and person.locale == "en"
        assert await save_state(session, person, "survey", state, NOW) == 1
    later = NOW + timedelta(minutes=5)
    async with transaction(seeded) as session:
        person = await load_person(session, "telegram", "4242", "zh_CN", later)
        assert person.has_conversation and person.version == 1 and person.flow == "survey"
        assert person.state == state and person.locale == "en"
        assert person.updated_at == NOW and person.updated_at.tzinfo is not None
        stale = await load_person(session, "telegram", "4242", "zh_CN", later)
        assert await save_state(session, person, None, {}, later) == 2
        with pytest.raises(ConcurrentStep):
            await save_state(session, stale, "survey", state, later)
    async with transaction(seeded) as session:
        row = (await session.execute(select(Conversation))).scalar_one()
        assert (row.version, row.flow, row.state, row.updated_at) == (2, None, {}, later)


async def test_failed_step_leaves_no_trace(runtime: Any, seeded: Any) -> None:
    inbound = Inbound(
        channel="telegram", external_id="77", chat_id="77", text="/help", event_id="u-1"
    )

    async def boom(step: Any, args: str) -> None:
        step.update(x=1)
        raise RuntimeError("the step failed")

    runtime.commands["help"] = boom
    with pytest.raises(RuntimeError):
        await runtime.handle(inbound)
    assert await _count(seeded, ProcessedEvent) == 0
    assert await _count(seeded, Conversation) == 0
