"""The deputies' survey in chat: only through an invitation token's deep link ``t_<token>``."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from storage.db import transaction
from storage.models_dialogs import Conversation
from storage.models_surveys import SurveyAnswer, SurveyInvitation, SurveyResponse
from surveys.dialog import respondent_for
from tests.chat.test_runtime import first_button
from tests.helpers import TEST_SECRET
from tests.surveys.conftest import make_invitations

# Telegram start payloads: A-Z a-z 0-9 _ - and at most 64 characters.
_START_PAYLOAD = re.compile(r"[A-Za-z0-9_-]{1,64}")


async def invited_responses(sessions: Any) -> list[SurveyResponse]:
    """Stored deputies' responses other than the demo's sample ones."""
    async with transaction(sessions) as session:
        rows = await session.execute(
            select(SurveyResponse).where(
                SurveyResponse.survey == "deputies-2026", SurveyResponse.sample.is_(False)
            )
        )
        return list(rows.scalars())


async def answer_deputies(say: Any, user: str, replies: Any) -> Any:
    """Answer the deputies' survey from its first question: deputy, very satisfied, a comment."""
    assert "(1/" in replies[-1].text
    replies = await say(payload=first_button(replies), user=user)  # role: deputy
    replies = await say(payload=first_button(replies), user=user)  # handling: very satisfied
    return await say("办理很及时", user=user)  # comment


async def test_survey_by_code_or_link_without_token_is_refused(say: Any, seeded: Any) -> None:
    for text in ("/survey deputies-2026", "/start s_deputies-2026", "/start s_deputies-2026_zbp"):
        replies = await say(text, user="41")
        assert len(replies) == 1 and not replies[0].buttons
        assert "受邀" in replies[0].text and "二维码" in replies[0].text
    en = await say("/survey deputies-2026", user="42", lang="en")
    assert en[0].text == (
        "This survey is by invitation only. Please use the link or QR code you were given."
    )
    async with transaction(seeded) as session:
        flows = (await session.execute(select(Conversation.flow))).scalars().all()
    assert "survey" not in flows
    # /survey alone never offers it either.
    listed = await say("/survey", user="43")
    assert all("人大代表" not in r.text for r in listed)


async def test_invitation_link_completes_and_consumes_the_token(say: Any, seeded: Any) -> None:
    (token,) = await make_invitations(seeded, 1, survey="deputies-2026", township="zbp")
    payload = f"t_{token}"
    assert _START_PAYLOAD.fullmatch(payload)
    replies = await say(f"/start {payload}", user="51")
    assert "人大代表" in replies[0].lead
    replies = await answer_deputies(say, "51", replies)
    assert "感谢" in replies[-1].text

    async with transaction(seeded) as session:
        (response,) = await invited_responses(seeded)
        invitation = (
            await session.execute(
                select(SurveyInvitation).where(SurveyInvitation.batch != "sample")
            )
        ).scalar_one()
        stored = {
            a.question: a.value or a.text
            for a in (
                await session.execute(
                    select(SurveyAnswer).where(SurveyAnswer.response_id == response.id)
                )
            ).scalars()
        }
        states = (await session.execute(select(Conversation.state))).scalars().all()
    assert response.survey == "deputies-2026" and response.channel == "telegram"
    assert response.respondent == respondent_for(TEST_SECRET.encode(), "telegram", "51")
    assert response.invitation_id == invitation.id and invitation.used_at is not None
    assert response.township == "zbp"
    assert stored == {"role": "deputy", "handling": "very_satisfied", "comment": "办理很及时"}
    assert all(token not in str(state) for state in states), "the raw token is not kept"

    # Single use: the same link again, from this or another account, is refused.
    again = await say(f"/start {payload}", user="52", lang="en")
    assert again[0].text == "This invitation link has already been used."
    assert len(await invited_responses(seeded)) == 1


async def test_invalid_token_link_is_explained(say: Any, seeded: Any) -> None:
    replies = await say("/start t_notarealtoken123", user="61", lang="en")
    assert replies[0].text == "This invitation link is not valid."
    short = await say("/start t_abc", user="61", lang="en")
    assert short[0].text == "This invitation link is not valid."
    (fazhi_token,) = await make_invitations(seeded, 1, survey="fazhi-2026")
    public = await say(f"/start t_{fazhi_token}", user="62")
    assert "法治政府" in public[0].lead  # a public survey's token works in chat too


async def test_token_used_elsewhere_mid_survey_is_not_counted(say: Any, seeded: Any) -> None:
    (token,) = await make_invitations(seeded, 1, survey="deputies-2026")
    first = await say(f"/start t_{token}", user="71")
    second = await say(f"/start t_{token}", user="72")  # a forwarded link, opened twice
    done = await answer_deputies(say, "71", first)
    assert "感谢" in done[-1].text
    late = await answer_deputies(say, "72", second)
    assert "已被使用" in late[-1].text or "已使用" in late[-1].text
    assert len(await invited_responses(seeded)) == 1
