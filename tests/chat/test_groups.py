"""Steps sharing a commit (``bot.dialogs.group``) on a real database.

Queued steps commit together; each returns only once what it stored is committed; one that
fails takes nothing of the others with it (they run again alone); a group whose queued step
gave up still commits.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, func, select

from bot.dialogs import DialogRuntime
from bot.dialogs.group import GroupAborted, StepGroups
from bot.dialogs.store import claim_event
from bot.outbox.queue import Outgoing, Recipient, enqueue, wake_on_commit
from core.dialog import Step
from core.messages import Inbound, Reply
from storage.db import create_engine, session_factory, transaction
from storage.models import ChatIdentity
from storage.models_dialogs import Conversation, ProcessedEvent
from storage.models_outbox import OutboxMessage

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)


async def _count(sessions: Any, model: Any, **where: Any) -> int:
    query = select(func.count()).select_from(model)
    for name, value in where.items():
        query = query.where(getattr(model, name) == value)
    async with transaction(sessions) as session:
        return (await session.execute(query)).scalar_one()


def _commits(sessions: Any) -> list[int]:
    """A list that grows by one at each COMMIT of the sessions' engine."""
    seen: list[int] = []
    engine = sessions.kw["bind"].sync_engine
    event.listen(engine, "commit", lambda conn: seen.append(1))
    return seen


def _inbound(user: str, text: str, event_id: str) -> Inbound:
    return Inbound(
        channel="telegram",
        external_id=user,
        chat_id=user,
        text=text,
        language="zh-hans",
        event_id=event_id,
    )


def _sqlite_only(sessions: Any) -> None:
    if sessions.kw["bind"].dialect.name != "sqlite":
        pytest.skip("steps take turns (and share commits) on SQLite only")


async def test_queued_steps_share_a_commit_and_return_after_it(
    runtime: DialogRuntime, seeded: Any, db_url: str
) -> None:
    _sqlite_only(seeded)
    commits = _commits(seeded)
    other = create_engine(db_url)  # another connection, whose commits are not counted
    readers = session_factory(other)

    async def one(n: int) -> None:
        replies = await runtime.handle(_inbound(f"70{n:02d}", "/start s_fazhi-2026", f"g{n}"))
        assert replies and replies[0].text.startswith("(1/10) ")
        # answered only once committed: another connection sees this person's conversation
        async with transaction(readers) as session:
            flow = (
                await session.execute(
                    select(Conversation.flow)
                    .join(ChatIdentity, ChatIdentity.id == Conversation.identity_id)
                    .where(ChatIdentity.external_id == f"70{n:02d}")
                )
            ).scalar_one()
        assert flow == "survey"

    try:
        await asyncio.gather(*(one(n) for n in range(12)))
        assert 1 <= len(commits) < 12, len(commits)
        commits.clear()
        for n in range(12, 15):  # one at a time: each commits alone
            await one(n)
        assert len(commits) == 3
    finally:
        await other.dispose()
    assert await _count(seeded, Conversation) == 15
    assert await _count(seeded, ProcessedEvent) == 15


async def test_a_failing_step_takes_nothing_of_the_others(
    runtime: DialogRuntime, seeded: Any, caplog: pytest.LogCaptureFixture
) -> None:
    _sqlite_only(seeded)

    async def boom(step: Step, args: str) -> None:
        step.say("about to fail")
        raise RuntimeError("the step failed")

    runtime.add_command("boom", boom)
    inbounds = [_inbound(f"80{n:02d}", "/start s_fazhi-2026", f"h{n}") for n in range(8)]
    inbounds.insert(3, _inbound("8099", "/boom", "h-boom"))
    with caplog.at_level(logging.INFO, logger="bot.dialogs.runtime"):
        results = await asyncio.gather(
            *(runtime.handle(i) for i in inbounds), return_exceptions=True
        )
    failed = results.pop(3)
    assert isinstance(failed, RuntimeError)
    for replies in results:
        assert isinstance(replies, list) and replies[0].text.startswith("(1/10) ")
    # the steps queued with it were rolled back and ran again, each stored once
    assert any("running the event again" in r.message for r in caplog.records)
    assert await _count(seeded, Conversation) == 8
    assert await _count(seeded, ProcessedEvent) == 8
    assert await _count(seeded, ProcessedEvent, event_id="h-boom") == 0
    assert await _count(seeded, ChatIdentity, external_id="8099") == 0
    # and the event that failed can be delivered again
    assert await runtime.handle(_inbound("8099", "/help", "h-boom"))


async def test_groups_are_bounded_and_commit_without_a_next_step(seeded: Any) -> None:
    """At most ``max_steps`` a commit; a group whose queued step gave up is committed by its
    timer; a step run ``alone`` never shares its commit."""
    commits = _commits(seeded)
    groups = StepGroups(seeded, max_steps=3, max_age=0.05)

    async def claim(session: Any, name: str) -> bool:
        return await claim_event(session, "test", name, NOW)

    results = await asyncio.gather(
        *(groups.run(lambda s, n=n: claim(s, f"b{n}")) for n in range(10))
    )
    assert results == [True] * 10
    assert len(commits) >= 4  # 10 steps, at most 3 a commit
    assert await _count(seeded, ProcessedEvent) == 10

    release = asyncio.Event()
    later: asyncio.Task[bool] | None = None

    async def slow(session: Any) -> bool:
        await release.wait()
        assert later is not None
        later.cancel()  # the step queued behind this one gives up before its turn
        return await claim(session, "slow")

    first = asyncio.create_task(groups.run(slow))
    await asyncio.sleep(0)
    later = asyncio.create_task(groups.run(lambda s: claim(s, "never")))
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.wait_for(first, 5) is True
    with pytest.raises(asyncio.CancelledError):
        await later
    assert await _count(seeded, ProcessedEvent, event_id="slow") == 1
    assert await _count(seeded, ProcessedEvent, event_id="never") == 0

    commits.clear()
    lone = await asyncio.gather(
        *(groups.run(lambda s, n=n: claim(s, f"a{n}"), alone=True) for n in range(4))
    )
    assert lone == [True] * 4 and len(commits) == 4


async def test_a_failing_commit_aborts_its_group(seeded: Any) -> None:
    """When the shared commit fails every step of the group is told to run again, nothing of
    theirs stored; run alone, such a step raises the failure itself."""
    groups = StepGroups(seeded, max_steps=50, max_age=10)
    engine = seeded.kw["bind"].sync_engine
    failing = {"on": True}

    def fail_commit(conn: Any) -> None:
        if failing["on"]:
            raise RuntimeError("disk full")

    event.listen(engine, "commit", fail_commit)
    try:

        async def claim(session: Any, name: str) -> bool:
            return await claim_event(session, "test", name, NOW)

        results = await asyncio.gather(
            *(groups.run(lambda s, n=n: claim(s, f"c{n}")) for n in range(5)),
            return_exceptions=True,
        )
        assert all(isinstance(r, GroupAborted) for r in results), results
        with pytest.raises(RuntimeError, match="disk full"):
            await groups.run(lambda s: claim(s, "alone"), alone=True)
    finally:
        event.remove(engine, "commit", fail_commit)
    assert await _count(seeded, ProcessedEvent) == 0
    assert await groups.run(lambda s: claim(s, "c0")) is True
    assert await _count(seeded, ProcessedEvent) == 1


async def test_the_outbox_is_woken_after_the_shared_commit(seeded: Any) -> None:
    """A step that queues a message wakes this process's outbox worker once the group's
    transaction is committed, not before (the worker would not see the message yet)."""
    commits = _commits(seeded)
    woken_at: list[int] = []
    wake_on_commit(seeded, lambda: woken_at.append(len(commits)))
    groups = StepGroups(seeded)

    async def queue(session: Any, n: int) -> int:
        message = Outgoing(
            dedupe_key=f"wake-{n}",
            recipient=Recipient("telegram", "5", "zh_CN"),
            reply=Reply(text=f"message {n}"),
        )
        return await enqueue(session, [message], NOW)

    assert (
        await asyncio.gather(*(groups.run(lambda s, n=n: queue(s, n)) for n in range(5))) == [1] * 5
    )
    assert len(woken_at) == 5 and min(woken_at) >= 1, woken_at
    assert await _count(seeded, OutboxMessage) == 5


async def test_a_step_that_is_rolled_back_wakes_nothing(seeded: Any) -> None:
    woken: list[int] = []
    wake_on_commit(seeded, lambda: woken.append(1))
    groups = StepGroups(seeded)

    async def queue_then_fail(session: Any) -> None:
        message = Outgoing(
            dedupe_key="never", recipient=Recipient("telegram", "5", "zh_CN"), reply=Reply("x")
        )
        await enqueue(session, [message], NOW)
        raise RuntimeError("the step failed")

    with pytest.raises(RuntimeError):
        await groups.run(queue_then_fail)
    assert woken == [] and await _count(seeded, OutboxMessage) == 0
