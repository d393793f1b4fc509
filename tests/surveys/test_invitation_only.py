"""Invitation-only surveys (the deputies' survey): refused without a token everywhere on the web.

Its 95% indicator must count invited deputies and CPPCC members only, so the service, the JSON
API and the mobile page all refuse an answer that carries no invitation token.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from storage.db import transaction
from storage.models_surveys import SurveyInvitation, SurveyResponse
from surveys.respondents import pseudonym
from surveys.schema import OPEN_AUDIENCES, load_catalog
from surveys.submission import InvitationRequired, submit_response
from tests.surveys.conftest import NOW, SECRET, fazhi_answers, make_invitations, seed_surveys
from tests.surveys.test_api import count_responses, opened
from tests.surveys.test_h5 import _Form, form_fields

URL = "/api/v1/surveys/deputies-2026/responses"
CATALOG = load_catalog()
DEPUTIES = CATALOG["deputies-2026"]


def deputies_answers(level: str = "very_satisfied") -> dict[str, Any]:
    """A complete, valid answer set for deputies-2026."""
    return {"role": "deputy", "handling": level, "comment": "办理及时"}


def test_audience_decides_invitation_only() -> None:
    assert DEPUTIES.invitation_only
    assert not CATALOG["fazhi-2026"].invitation_only
    for audience in ("public", "businesses", "media", "deputies", "staff"):
        survey = DEPUTIES.model_copy(update={"audience": audience})
        assert survey.invitation_only == (audience not in OPEN_AUDIENCES)
    assert DEPUTIES.to_public("en")["invitation_only"] is True


async def test_service_refuses_without_token(sessions: Any) -> None:
    await seed_surveys(sessions)
    from sqlalchemy import update

    from storage.models_surveys import SurveyState

    async with transaction(sessions) as session:
        await session.execute(
            update(SurveyState).where(SurveyState.code == DEPUTIES.code).values(status="open")
        )
    async with transaction(sessions) as session:
        with pytest.raises(InvitationRequired):
            await submit_response(
                session,
                DEPUTIES,
                deputies_answers(),
                respondent=pseudonym(SECRET, "web", "x"),
                channel="api",
                township_code=None,
                locale="zh_CN",
                now=NOW,
            )
    (token,) = await make_invitations(sessions, 1, survey=DEPUTIES.code)
    async with transaction(sessions) as session:
        result = await submit_response(
            session,
            DEPUTIES,
            deputies_answers(),
            respondent=pseudonym(SECRET, "token", token),
            channel="api",
            township_code=None,
            locale="zh_CN",
            now=NOW,
            token=token,
            secret=SECRET,
        )
    assert result.created


async def test_api_refuses_without_token_accepts_with_one_once(client: Any, sessions: Any) -> None:
    await opened(client, sessions)
    listed = await (await client.get("/api/v1/surveys")).json()
    assert "deputies-2026" in {s["code"] for s in listed}  # still an active survey
    definition = await (await client.get("/api/v1/surveys/deputies-2026?lang=en")).json()
    assert definition["invitation_only"] is True

    refused = await client.post(URL + "?lang=en", json={"answers": deputies_answers()})
    assert refused.status == 403
    assert (await refused.json())["error"] == {
        "code": "invitation_required",
        "message": "This survey is by invitation only. "
        "Please use the link or QR code you were given.",
        "fields": {},
    }
    zh = await client.post(URL, json={"answers": deputies_answers()})
    assert zh.status == 403
    assert "受邀" in (await zh.json())["error"]["message"]
    assert await count_responses(sessions) == 0

    (token,) = await make_invitations(sessions, 1, survey="deputies-2026")
    ok = await client.post(URL, json={"answers": deputies_answers(), "token": token})
    assert ok.status == 201, await ok.text()
    again = await client.post(URL, json={"answers": deputies_answers(), "token": token})
    assert again.status == 409
    assert (await again.json())["error"]["code"] == "token_used"
    async with sessions() as session:
        (row,) = (await session.execute(select(SurveyResponse))).scalars().all()
    assert row.survey == "deputies-2026" and row.invitation_id is not None

    # Surveys for the public still take open-link answers.
    public = await client.post(
        "/api/v1/surveys/fazhi-2026/responses", json={"answers": fazhi_answers()}
    )
    assert public.status == 201


async def test_openapi_documents_invitation_required(client: Any) -> None:
    doc = await (await client.get("/api/v1/openapi.json")).json()
    responses = doc["paths"]["/api/v1/surveys/{survey}/responses"]["post"]["responses"]
    assert "invitation_required" in responses["403"]["description"]


async def test_page_without_token_explains_invitation(client: Any, sessions: Any) -> None:
    await opened(client, sessions)
    zh = await client.get("/s/deputies-2026")
    assert zh.status == 403
    html = await zh.text()
    assert 'name="handling"' not in html and "受邀" in html and "二维码" in html
    en = await client.get("/s/deputies-2026?lang=en")
    text = await en.text()
    assert "This survey is by invitation" in text and "QR code you were given" in text

    # A form posted without a token (the hidden field removed) is refused the same way.
    posted = await client.post(
        "/s/deputies-2026", data=list(deputies_answers().items()), allow_redirects=False
    )
    assert posted.status == 403 and 'name="handling"' not in await posted.text()
    assert await count_responses(sessions) == 0


async def test_page_with_token_shows_form_and_stores_once(client: Any, sessions: Any) -> None:
    await opened(client, sessions)
    (token,) = await make_invitations(sessions, 1, survey="deputies-2026")
    res = await client.get(f"/s/deputies-2026?t={token}")
    assert res.status == 200
    page = _Form()
    page.feed(await res.text())
    assert page.hidden["t"] == token
    done = await client.post(
        "/s/deputies-2026",
        data=form_fields(deputies_answers(), page.hidden),
        allow_redirects=False,
    )
    assert done.status == 303
    used = await client.get(f"/s/deputies-2026?t={token}")
    assert used.status == 409
    async with sessions() as session:
        (row,) = (await session.execute(select(SurveyResponse))).scalars().all()
        invitation = (await session.execute(select(SurveyInvitation))).scalar_one()
    assert row.invitation_id == invitation.id and invitation.used_at is not None
