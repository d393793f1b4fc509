"""Answering a survey in chat by typing: numbers choose options only on choice questions,
option words choose options, several numbers answer a multiple-choice question."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.app import build_runtime
from core.feature import Catalogs
from core.messages import render_numbered
from core.metrics import Metrics
from storage.db import transaction
from storage.models_surveys import SurveyAnswer
from tests.chat.test_runtime import first_button


async def _stored(sessions: Any) -> dict[str, list[str | None]]:
    async with transaction(sessions) as session:
        real = select(SurveyAnswer).where(SurveyAnswer.sample.is_(False))  # type: ignore[attr-defined]
        rows = (await session.execute(real)).scalars().all()
    stored: dict[str, list[str | None]] = {}
    for row in rows:
        stored.setdefault(row.question, []).append(row.value or row.text)
    return stored


async def _to_channels(say: Any, user: str) -> Any:
    """Answer the eight ratings with typed words and numbers; return the replies that ask
    the multiple-choice question."""
    replies = await say("/survey fazhi-2026", user=user)
    replies = await say("满意", user=user)  # the option's words, not "非常满意" or "不满意"
    assert "✓ 满意" in replies[0].text
    for _ in range(7):
        replies = await say("1", user=user)  # a number on a choice question picks the option
    assert "可多选" in replies[-1].text
    return replies


async def test_typed_one_on_a_free_text_question_is_the_comment(say: Any, seeded: Any) -> None:
    replies = await _to_channels(say, "3001")
    replies = await say("1,3", user="3001")  # two options at once
    assert "✓" in replies[0].text
    comment = replies[-1]
    assert "请输入您的回答" in comment.text and "（选填）" in comment.text
    assert [b.label for b in comment.flat_buttons] == ["跳过"]
    assert not comment.numbered
    assert "1. 跳过" not in render_numbered(comment)  # on text channels: "[跳过]"
    assert "[跳过]" in render_numbered(comment)
    done = await say("1", user="3001")
    assert "感谢" in done[-1].text
    stored = await _stored(seeded)
    assert stored["comment"] == ["1"], "the comment 1 is kept, not taken as Skip"
    assert stored["business_env"] == ["satisfied"]
    assert stored["public_service"] == ["very_satisfied"]
    assert sorted(stored["channels"]) == ["service_hall", "website"]


async def test_skip_is_pressed_or_typed(say: Any, seeded: Any) -> None:
    replies = await _to_channels(say, "3002")
    replies = await say("2 4", user="3002")
    replies = await say(payload=first_button(replies), user="3002")  # pressing Skip works
    assert "感谢" in replies[-1].text
    replies = await _to_channels(say, "3003")
    replies = await say("政府网站", user="3003")  # one option's words on a multiple choice
    replies = await say("跳过", user="3003")  # typing the Skip label skips
    assert "感谢" in replies[-1].text
    stored = await _stored(seeded)
    assert "comment" not in stored
    assert sorted(stored["channels"]) == ["hotline", "mobile", "website"]


async def test_full_width_separators_and_wrong_input(say: Any, seeded: Any) -> None:
    replies = await _to_channels(say, "3004")
    refused = await say("1，9", user="3004")  # option 9 does not exist
    assert "选项" in refused[0].text
    replies = await say("１，２、5", user="3004")  # full-width digits and separators
    assert "✓" in replies[0].text
    await say("跳过", user="3004")
    stored = await _stored(seeded)
    assert sorted(stored["channels"]) == ["mobile", "service_hall", "wechat"]


async def test_a_single_choice_takes_one_option(say: Any, seeded: Any) -> None:
    await say("/survey fazhi-2026", user="3005")
    refused = await say("1 2", user="3005")
    assert "只选一项" in refused[0].text
    nothing = await say("很好吧", user="3005")
    assert "选项" in nothing[0].text
    assert await _stored(seeded) == {}


async def test_chat_responses_are_counted_after_commit(
    settings: Any, seeded: Any, clock: Any
) -> None:
    from core.messages import Inbound

    metrics = Metrics()
    runtime = build_runtime(settings, seeded, Catalogs(), clock=clock, metrics=metrics)

    async def say(text: str) -> Any:
        return await runtime.handle(
            Inbound(channel="console", external_id="m1", chat_id="m1", text=text)
        )

    await say("/survey fazhi-2026")
    for _ in range(8):
        await say("1")
    await say("1")  # tick the first option, then press Done (number 7)
    await say("7")
    await say("好")
    value = metrics.registry.get_sample_value(
        "pufa_survey_responses_total", {"survey": "fazhi-2026", "channel": "console"}
    )
    assert value == 1.0
