"""The dialog runtime over a real database: dedupe, state, stale/forged buttons, expiry."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from core import payloads
from core.messages import Reply, render_numbered
from storage.db import transaction
from storage.models_dialogs import Conversation, ProcessedEvent
from storage.models_surveys import SurveyAnswer, SurveyResponse
from surveys.dialog import respondent_for
from tests.helpers import TEST_SECRET


def first_button(replies: list[Reply], index: int = 0) -> str:
    with_buttons = [r for r in replies if r.buttons]
    return with_buttons[-1].flat_buttons[index].payload


async def count(sessions: Any, model: Any) -> int:
    async with transaction(sessions) as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


async def test_help_in_chinese_and_english(say: Any) -> None:
    zh = await say("/help", lang="zh-hans", user="1")
    en = await say("/help", lang="en", user="2")
    assert "/survey" in zh[0].text and "问卷" in zh[0].text
    assert "survey" in en[0].text and "问卷" not in en[0].text


async def test_duplicate_event_is_answered_once(say: Any, seeded: Any) -> None:
    first = await say("/help", event_id="u-1")
    again = await say("/help", event_id="u-1")
    assert first and again == []
    assert await count(seeded, ProcessedEvent) == 1


async def test_full_survey_is_stored_with_pseudonym(say: Any, seeded: Any) -> None:
    replies = await say("/survey fazhi-2026", user="555")
    # one reply opens it: the title and intro lead the first question
    assert len(replies) == 1 and replies[0].text.startswith("(1/10) ")
    opening = replies[0].lead
    assert opening.startswith("2026年西夏区法治政府建设满意度调查\n\n")
    for n in range(8):  # eight scale questions: press the first option
        replies = await say(payload=first_button(replies), user="555")
        assert replies[0].kind == "edit_source" and not replies[0].buttons
        assert "✓ 非常满意" in replies[0].text
        # the answer replacing the opening message keeps its lead; the next question has none
        assert replies[0].lead == (opening if n == 0 else "") and not replies[1].lead
    # multiple choice: tick two options, then Done
    replies = await say(payload=first_button(replies, 1), user="555")
    replies = await say(payload=first_button(replies, 3), user="555")
    assert replies[0].kind == "edit_source"
    labels = [b.label for b in replies[0].flat_buttons]
    assert labels[1].startswith("✅") and labels[3].startswith("✅")
    replies = await say(payload=first_button(replies, -1), user="555")
    # free text
    replies = await say("窗口服务很好", user="555")
    assert "感谢" in replies[-1].text
    async with transaction(seeded) as session:
        mine = respondent_for(TEST_SECRET.encode(), "telegram", "555")
        response = (
            await session.execute(select(SurveyResponse).where(SurveyResponse.respondent == mine))
        ).scalar_one()
        answers = (
            (
                await session.execute(
                    select(SurveyAnswer).where(SurveyAnswer.response_id == response.id)
                )
            )
            .scalars()
            .all()
        )
    assert response.survey == "fazhi-2026" and response.channel == "telegram"
    assert "555" not in response.respondent and len(response.respondent) == 64
    assert len(answers) >= 10
    # the conversation is closed; a second attempt is refused politely
    again = await say("/survey fazhi-2026", user="555")
    assert "已" in again[0].text


async def test_stale_and_forged_buttons_change_nothing(say: Any, seeded: Any) -> None:
    replies = await say("/survey fazhi-2026", user="7")
    old = first_button(replies)
    await say(payload=old, user="7")  # answers question 1
    async with transaction(seeded) as session:
        before = (await session.execute(select(Conversation))).scalar_one()
    stale = await say(payload=old, user="7")
    forged = await say(payload=old[:-3] + "AAA", user="7")
    other = await say(payload=old, user="8")  # somebody else's button
    assert "较早" in stale[0].text or "最新" in stale[0].text
    assert forged[0].text == other[0].text and "按钮" in forged[0].text
    async with transaction(seeded) as session:
        after = (
            await session.execute(
                select(Conversation).where(Conversation.identity_id == before.identity_id)
            )
        ).scalar_one()
    assert (after.version, after.state) == (before.version, before.state)


async def test_payloads_fit_telegram_limit() -> None:
    payload = payloads.sign(b"k" * 32, "telegram:" + "9" * 20, 2**40, "o", "x" * 24)
    assert len(payload.encode()) <= 64
    assert payloads.verify(b"k" * 32, "telegram:" + "9" * 20, payload).arg == "x" * 24


async def test_numbered_fallback_on_console(say: Any) -> None:
    replies = await say("survey fazhi-2026", channel="console", user="c1")
    text = render_numbered(replies[-1])
    assert "1. 非常满意" in text and "5. 非常不满意" in text
    replies = await say("2", channel="console", user="c1")
    assert "✓ 满意" in replies[0].text
    assert replies[-1].text.startswith("(2/")


async def test_abandoned_conversation_offers_resume_or_restart(say: Any, clock: Any) -> None:
    replies = await say("/survey fazhi-2026", user="9")
    replies = await say(payload=first_button(replies), user="9")
    clock.advance(timedelta(hours=3))
    offer = await say("hello", user="9")
    assert len(offer) == 1 and len(offer[0].flat_buttons) == 2
    resumed = await say(payload=offer[0].flat_buttons[0].payload, user="9")
    assert resumed[-1].text.startswith("(2/") and not resumed[-1].lead
    clock.advance(timedelta(hours=3))
    offer = await say("hello", user="9")
    restarted = await say(payload=offer[0].flat_buttons[1].payload, user="9")
    # started again, the survey opens as it did: title and intro above the first question
    assert restarted[-1].text.startswith("(1/") and "法治政府" in restarted[-1].lead
    clock.advance(timedelta(days=8))
    expired = await say("hello", user="9")
    assert "过期" in expired[0].text


async def test_lang_switches_language_and_reprompts(say: Any) -> None:
    replies = await say("/survey fazhi-2026", user="11")
    replies = await say("/lang en", user="11")
    assert "English" in replies[0].text
    assert "How satisfied" in replies[-1].text and replies[-1].buttons
    replies = await say("/cancel", user="11")
    assert replies[0].text.startswith("Stopped")


async def test_survey_command_offers_public_surveys_only(say: Any) -> None:
    # Both shipped surveys are open in June 2026; /survey starts the public one directly and
    # never lists the deputies' survey, which is by invitation only (see test_invitation_chat).
    replies = await say("/survey", user="31")
    shown = " ".join(r.full_text for r in replies) + " ".join(
        b.label for r in replies for b in r.flat_buttons
    )
    assert "法治政府建设满意度调查" in shown
    assert "人大代表" not in shown
    deputies = await say("/survey deputies-2026", user="32")
    assert "受邀" in deputies[0].text and not deputies[0].buttons


async def test_dont_know_is_the_last_button_and_is_stored(say: Any, seeded: Any) -> None:
    replies = await say("/survey fazhi-2026", user="606")
    labels = [b.label for b in [r for r in replies if r.buttons][-1].flat_buttons]
    assert labels == ["非常满意", "满意", "基本满意", "不满意", "非常不满意", "不了解"]
    replies = await say(payload=first_button(replies, -1), user="606")
    assert replies[0].kind == "edit_source" and "✓ 不了解" in replies[0].text
    for _ in range(7):  # the other seven ratings: the first option
        replies = await say(payload=first_button(replies), user="606")
    replies = await say(payload=first_button(replies, -1), user="606")  # channels: Done
    replies = await say(payload=first_button(replies, -1), user="606")  # comment: Skip
    assert "感谢" in replies[-1].text
    async with transaction(seeded) as session:
        mine = respondent_for(TEST_SECRET.encode(), "telegram", "606")
        rows = (
            await session.execute(
                select(SurveyAnswer.question, SurveyAnswer.value)
                .join(SurveyResponse, SurveyResponse.id == SurveyAnswer.response_id)
                .where(SurveyResponse.respondent == mine)
            )
        ).all()
    values = dict(rows)
    assert values["business_env"] == "unknown"
    assert values["public_service"] == "very_satisfied"


async def test_dont_know_on_the_console_is_numbered_last(say: Any) -> None:
    replies = await say("survey fazhi-2026", channel="console", user="c6")
    text = render_numbered(replies[-1])
    assert "5. 非常不满意" in text and "6. 不了解" in text
    replies = await say("6", channel="console", user="c6")
    assert "✓ 不了解" in replies[0].text
