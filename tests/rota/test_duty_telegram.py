"""``/duty`` end to end: pufa's webhook with the real python-telegram-bot stack, over HTTP,
against the fake Telegram Bot API — a unit confirms (from a pushed reminder and from /duty)
and sends its topic with a file; the coordinator sees the status and marks a lecture."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.binding.invites import create_invite
from bot.dialogs.runtime import UNSTORABLE
from bot.rota.config import load_offsets
from bot.rota.service import Env, add_meetings, tick
from core.clock import utcnow
from core.i18n import translator
from core.settings import Settings
from storage.db import transaction
from storage.models_outbox import OutboxMessage
from storage.models_rota import RotaMeeting, RotaTurn
from tests.fakes.telegram_api import FakeBotApi
from tests.helpers import TEST_SECRET
from tests.telegram_webhook import Webhook, serve_webhook, webhook_settings

Bot = Webhook


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


@pytest.fixture
async def bot(make_settings: Callable[..., Settings], fake: FakeBotApi) -> AsyncIterator[Bot]:
    async with serve_webhook(webhook_settings(make_settings, fake), fake, demo=False) as served:
        yield served


async def _code(sessions: async_sessionmaker[AsyncSession], role: str, unit: str | None) -> str:
    async with transaction(sessions) as session:
        made = await create_invite(
            session,
            TEST_SECRET.encode(),
            role,  # type: ignore[arg-type]
            now=utcnow(),
            unit=unit,
        )
    return made.code


async def test_duty_over_telegram_for_a_unit_and_the_coordinator(bot: Bot) -> None:
    unit, coordinator = 6001, 6009
    now = utcnow().replace(second=0, microsecond=0)
    async with transaction(bot.sessions) as session:
        # a lecture of 司法局 four days ahead; a past one for the coordinator to mark
        before = Env.of(session, bot.settings, load_offsets(), now - timedelta(days=10))
        await add_meetings(before, "executive", [now - timedelta(days=1)])
        env = Env.of(session, bot.settings, load_offsets(), now)
        coming, _ = await add_meetings(env, "standing", [now + timedelta(days=4)])
    await bot.text(unit, f"/bind {await _code(bot.sessions, 'unit', 'sfj')}")
    assert "司法局" in bot.last(unit)["text"]

    # the scheduler queues the heads-up; delivered to the chat as the outbox worker would
    async with transaction(bot.sessions) as session:
        queued = await tick(Env.of(session, bot.settings, load_offsets(), now))
    assert [q.kind for q in queued if q.address == str(unit)] == ["heads_up"]
    async with bot.sessions() as session:
        row = (
            await session.execute(select(OutboxMessage).where(OutboxMessage.recipient == str(unit)))
        ).scalar_one()
    keyboard = [[{"text": b["label"], "callback_data": b["payload"]} for b in r] for r in
                row.body["buttons"]]  # fmt: skip
    await bot.api(
        "sendMessage",
        {"chat_id": unit, "text": row.body["text"], "reply_markup": {"inline_keyboard": keyboard}},
    )
    pushed = bot.last_with_keyboard(unit)
    assert "贵单位承担第1期讲课" in pushed["text"]
    await bot.press(unit, pushed, "确认讲课")
    assert "谢谢，已确认：区委常委会第1期" in bot.last(unit)["text"]

    # /duty: the turn is confirmed; send the topic with the file of the talk
    await bot.text(unit, "/duty")
    overview = bot.last_with_keyboard(unit)
    assert "贵单位近期的讲课安排" in overview["text"] and "已确认" in overview["text"]
    assert "1. 确认" not in str(overview["reply_markup"])  # confirmed: no confirm button
    await bot.press(unit, overview, "1. 提交题目")
    assert "请发送讲课题目（第一行）" in bot.last(unit)["text"]
    # a title with a NUL in it is refused in words, and the flow still waits for the topic
    await bot.text(unit, "《行政复议法》\x00修订要点")
    assert bot.last(unit)["text"] == translator("zh_CN")._(UNSTORABLE)
    async with bot.sessions() as session:
        assert (await session.execute(select(RotaTurn))).scalar_one().topic_title is None
    update = bot.fake.make_message_update(None, unit, None, "")
    message = update["message"]
    message.pop("text")
    message["caption"] = "《行政复议法》修订要点解读\n受案范围的变化；复议前置情形"
    message["document"] = {
        "file_id": "BQACAgUAAxkBAAIC-test",
        "file_unique_id": "AgADtest",
        "file_name": "讲稿.pdf",
        "mime_type": "application/pdf",
        "file_size": 20480,
    }
    await bot.post(update)
    saved = bot.last(unit)["text"]
    assert "讲课题目已保存" in saved and "《行政复议法》修订要点解读" in saved
    assert "附件：讲稿.pdf" in saved
    async with bot.sessions() as session:
        turn = (await session.execute(select(RotaTurn))).scalar_one()
    assert (turn.topic_title, turn.topic_outline) == (
        "《行政复议法》修订要点解读",
        "受案范围的变化；复议前置情形",
    )
    assert (turn.topic_file_id, turn.topic_file_name, turn.topic_file_mime) == (
        "BQACAgUAAxkBAAIC-test",
        "讲稿.pdf",
        "application/pdf",
    )

    # the coordinator: the coming meeting with the unit's status, and the one to mark
    await bot.text(coordinator, f"/bind {await _code(bot.sessions, 'coordinator', None)}")
    await bot.text(coordinator, "/duty")
    board = bot.last_with_keyboard(coordinator)
    assert "普法学法微课堂 — 近期会议" in board["text"]
    assert coming[0].id is not None
    assert f"#{coming[0].id} 区委常委会第1期" in board["text"]
    assert "已确认；题目：《行政复议法》修订要点解读" in board["text"]
    async with bot.sessions() as session:
        past = (
            await session.execute(select(RotaMeeting).where(RotaMeeting.committee == "executive"))
        ).scalar_one()
    await bot.press(coordinator, board, f"#{past.id} 已讲")
    assert f"会议 #{past.id}：司法局的讲课已登记为“已讲”" in bot.last(coordinator)["text"]
    async with bot.sessions() as session:
        marked = await session.get(RotaMeeting, past.id)
    assert marked is not None and (marked.outcome, marked.outcome_unit_id) == (
        "delivered",
        turn.unit_id,
    )
    # every button press was answered
    assert all(v is not None for v in bot.fake.callback_queries.values())


async def test_duty_for_someone_not_bound_explains_how_to_bind(bot: Bot) -> None:
    await bot.text(6100, "/duty")
    assert "/bind" in bot.last(6100)["text"] and "协调人" in bot.last(6100)["text"]
