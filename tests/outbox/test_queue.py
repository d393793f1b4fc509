"""Queueing pushes: dedupe keys, cancellation, a role's recipients (with bound groups)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from bot.outbox.queue import (
    SEAL_PURPOSE,
    Outgoing,
    Recipient,
    cancel_pending,
    enqueue,
    is_private,
    listed_text,
    push_button,
    recipients,
    reply_of,
    set_push_target,
)
from core import payloads
from core.crypto import Sealer, SealError
from core.i18n import translator
from core.messages import Reply
from storage.db import transaction
from storage.models import ChatIdentity, Unit
from storage.models_outbox import OutboxMessage
from tests.helpers import TEST_SECRET, seed_db

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


async def test_a_dedupe_key_is_queued_once_even_across_transactions(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    to = Recipient("telegram", "42", "zh_CN", None)
    secret = TEST_SECRET.encode()
    button = push_button(secret, to, "确认", "c", "7")
    message = Outgoing(
        "rota:7:heads-up:telegram:42", to, Reply("轮到您了", ((button,),)), "reminder"
    )
    async with transaction(sessions) as session:
        assert await enqueue(session, [message, message], NOW) == 1
    async with transaction(sessions) as session:
        assert await enqueue(session, [message], NOW + timedelta(minutes=1)) == 0
        rows = (await session.execute(select(OutboxMessage))).scalars().all()
    assert len(rows) == 1
    row = rows[0]
    assert (row.status, row.channel, row.recipient, row.kind) == (
        "pending",
        "telegram",
        "42",
        "reminder",
    )
    assert row.next_attempt_at == NOW
    again = reply_of(row.body)
    assert again.text == "轮到您了" and again.flat_buttons[0].label == "确认"
    pressed = payloads.verify(
        secret, payloads.push_owner("telegram", "42"), again.flat_buttons[0].payload
    )
    assert (pressed.action, pressed.arg, pressed.version) == ("c", "7", 0)


async def test_cancel_withdraws_only_pending_messages(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    to = Recipient("telegram", "42", "en")
    later = NOW + timedelta(days=2)
    async with transaction(sessions) as session:
        await enqueue(
            session,
            [Outgoing("a", to, Reply("a")), Outgoing("b", to, Reply("b"), not_before=later)],
            NOW,
        )
        await session.execute(
            OutboxMessage.__table__.update()  # type: ignore[attr-defined]
            .where(OutboxMessage.__table__.c.dedupe_key == "a")  # type: ignore[attr-defined]
            .values(status="sent")
        )
        assert await cancel_pending(session, ["a", "b", "zzz"], NOW) == 1
    async with sessions() as session:
        states = dict(
            (
                await session.execute(
                    select(col(OutboxMessage.dedupe_key), col(OutboxMessage.status))
                )
            ).all()
        )
        due = (
            await session.execute(
                select(col(OutboxMessage.next_attempt_at)).where(
                    col(OutboxMessage.dedupe_key) == "b"
                )
            )
        ).scalar_one()
    assert states == {"a": "sent", "b": "cancelled"}
    assert due == later


async def test_recipients_are_bound_accounts_and_groups_of_the_role(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed_db(sessions)
    async with transaction(sessions) as session:
        units = (await session.execute(select(Unit).order_by(col(Unit.id)))).scalars().all()
        justice, court = units[0], units[1]
        session.add_all(
            [
                ChatIdentity(
                    channel="telegram",
                    external_id="1",
                    role="unit",
                    unit_id=justice.id,
                    locale="en",
                ),
                ChatIdentity(
                    channel="wecom", external_id="zhangsan", role="unit", unit_id=justice.id
                ),
                ChatIdentity(channel="telegram", external_id="2", role="unit", unit_id=court.id),
                ChatIdentity(channel="telegram", external_id="3", role="resident"),
                ChatIdentity(channel="telegram", external_id="4", role="coordinator"),
            ]
        )
        await set_push_target(
            session, channel="telegram", address="-100", role="unit", unit_id=justice.id
        )
        await set_push_target(
            session, channel="telegram", address="-200", role="unit", unit_id=court.id
        )
        # the same group bound again moves to the new scope instead of being added twice
        await set_push_target(
            session, channel="telegram", address="-200", role="unit", unit_id=justice.id
        )
    async with sessions() as session:
        mine = await recipients(session, "unit", unit_id=justice.id)
        everyone = await recipients(session, "unit")
        coordinators = await recipients(session, "coordinator")
    assert [(r.channel, r.address, r.locale) for r in mine] == [
        ("telegram", "1", "en"),
        ("wecom", "zhangsan", "zh_CN"),
        ("telegram", "-100", "zh_CN"),
        ("telegram", "-200", "zh_CN"),
    ]
    assert mine[0].identity_id is not None and mine[2].identity_id is None
    assert {r.address for r in everyone} == {"1", "zhangsan", "2", "-100", "-200"}
    assert [r.address for r in coordinators] == ["4"]


async def test_private_messages_are_sealed_at_rest_and_listed_without_their_text(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    to = Recipient("wecom", "zhangsan", "zh_CN")
    secret = TEST_SECRET.encode()
    reply = Reply("请核对：欧阳娜娜 13971234567")
    private = Outgoing("reply:1", to, reply, "reply", private=True)
    async with transaction(sessions) as session:
        with pytest.raises(ValueError, match="secret"):
            await enqueue(session, [private], NOW)
        assert await enqueue(session, [private], NOW, secret=secret) == 1
        row = (await session.execute(select(OutboxMessage))).scalar_one()
    assert is_private(row.body) and "13971234567" not in str(row.body)
    assert reply_of(row.body, Sealer(secret, SEAL_PURPOSE)) == reply
    with pytest.raises(SealError):
        reply_of(row.body)
    with pytest.raises(SealError):
        reply_of(row.body, Sealer(b"another key, another deployment", SEAL_PURPOSE))
    assert listed_text(row.body, translator("zh_CN")) == "（私聊回复：内容已加密保存）"
    assert listed_text({"text": "通知"}, translator("zh_CN")) == "通知"


async def test_a_reply_with_a_lead_comes_back_whole_from_the_queue(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    to = Recipient("telegram", "42", "zh_CN")
    secret = TEST_SECRET.encode()
    button = push_button(secret, to, "满意", "a", "1")
    reply = Reply("(1/10) 问题？", ((button,),), lead="调查标题\n\n调查说明")
    async with transaction(sessions) as session:
        queued = [Outgoing("lead:1", to, reply, "reply"), Outgoing("lead:2", to, reply, "reply",
                  private=True)]  # fmt: skip
        assert await enqueue(session, queued, NOW, secret=secret) == 2
        rows = (await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars()
        bodies = [row.body for row in rows]
    assert reply_of(bodies[0]) == reply
    assert reply_of(bodies[1], Sealer(secret, SEAL_PURPOSE)) == reply
    assert reply_of(bodies[0]).full_text == "调查标题\n\n调查说明\n\n(1/10) 问题？"
