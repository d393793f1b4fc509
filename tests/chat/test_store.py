"""The dialog store on a real database: one transaction per step, version guard, round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.dialogs.store import (
    ConcurrentStep,
    claim_and_load,
    claim_event,
    load_person,
    save_state,
)
from core.messages import Inbound
from storage.db import transaction
from storage.models import ChatIdentity
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


async def test_claim_and_load_is_the_claim_then_the_person(seeded: Any) -> None:
    """A new person is created with the claim; a known one comes back as :func:`load_person`
    reads them (conversation, state, version, timestamps); an event handled before gives
    ``None`` and neither reads nor creates anyone."""
    state = {"s": "fazhi-2026", "a": {"q1": "很满意", "q2": ["a", "b"]}, "n": 3, "tw": None}
    async with transaction(seeded) as session:
        new = await claim_and_load(session, "telegram", "e-1", "5151", "en", NOW)
        assert new is not None and not new.has_conversation
        assert (new.locale, new.role, new.version, new.state) == ("en", "resident", 0, {})
        assert await save_state(session, new, "survey", state, NOW) == 1
        assert await claim_and_load(session, "telegram", "e-1", "5151", "en", NOW) is None
        assert await claim_and_load(session, "telegram", "e-1", "6262", "en", NOW) is None
    later = NOW + timedelta(minutes=5)
    async with transaction(seeded) as session:
        known = await claim_and_load(session, "telegram", "e-2", "5151", "zh_CN", later)
        assert known == await load_person(session, "telegram", "5151", "zh_CN", later)
        assert known is not None and known.identity_id == new.identity_id
        assert (known.flow, known.state, known.version, known.locale) == ("survey", state, 1, "en")
        assert known.updated_at == NOW and known.updated_at.tzinfo is not None
        assert await save_state(session, known, None, {}, later) == 2
    assert await _count(seeded, ProcessedEvent) == 2
    async with transaction(seeded) as session:
        who = (await session.execute(select(ChatIdentity.external_id))).scalars().all()
    assert sorted(who) == ["5151"]  # the duplicate of e-1 created no 6262


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


async def test_a_session_s_next_transaction_keeps_its_steps_on_its_own_connection(
    seeded: Any,
) -> None:
    """The driver connection a step found is kept for that transaction only: when the session's
    next transaction runs on another connection, its statements (and its rollback) go there."""

    async def driver_of(session: Any) -> Any:
        return (await (await session.connection()).get_raw_connection()).driver_connection

    async with seeded() as a:
        async with a.begin():
            assert await claim_event(a, "telegram", "kept", NOW)
            first = await driver_of(a)
        # other sessions take connections until one holds the connection ``a`` gave back
        holders = []
        for _ in range(20):
            holder = seeded()
            holders.append(holder)
            await holder.begin()
            if await driver_of(holder) is first:
                break
        else:
            pytest.fail("the pool never handed the connection out again: nothing tested")
        with pytest.raises(RuntimeError):
            async with a.begin():
                assert await driver_of(a) is not first
                assert await claim_event(a, "telegram", "rolled-back", NOW)
                raise RuntimeError("the step failed")
        for holder in holders:
            await holder.commit()
            await holder.close()
    async with transaction(seeded) as session:
        ids = (await session.execute(select(ProcessedEvent.event_id))).scalars().all()
    assert ids == ["kept"]
