"""A resident completes the survey in headless chromium on a 360×740 phone screen.

Taps go to the labels (large targets tied to their inputs); the page itself runs no
JavaScript. Screenshots are saved to ``test-artifacts/``. Without chromium the test skips
locally but fails under ``CI=true`` (``make test`` installs it via ``.ci/run``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from storage.models_surveys import SurveyAnswer, SurveyResponse
from tests.surveys.cdp import Browser, chromium_path
from tests.surveys.conftest import make_invitations
from tests.surveys.test_api import opened

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = pytest.mark.browser


@pytest.fixture
def chromium() -> str:
    path = chromium_path()
    if path is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("chromium is not installed (apt-get install chromium); required in CI")
        pytest.skip("chromium is not installed")
    return path


RATINGS = {
    "business_env": 1,
    "public_service": 2,
    "major_decisions": 2,
    "law_enforcement": 3,
    "oversight": 2,
    "info_disclosure": 1,
    "dispute_resolution": 4,
    "rule_of_law_overall": 2,
}


async def test_complete_survey_on_a_phone(chromium: str, client: Any, sessions: Any) -> None:
    await opened(client, sessions)
    base = str(client.make_url("/")).rstrip("/")
    browser = Browser()
    try:
        await browser.start(360, 740)
        await browser.goto(f"{base}/s/fazhi-2026")
        assert await browser.evaluate("document.documentElement.scrollWidth") <= 360
        assert await browser.evaluate("document.title") == "2026年西夏区法治政府建设满意度调查"
        await browser.screenshot(ARTIFACTS / "h5-survey-360x740-start.png")

        # First submit with one rating missing: the page comes back with the error and
        # everything else still chosen.
        for code, position in RATINGS.items():
            if code != "oversight":
                target = f'label[for="q-{code}-{position}"]'
                box = await browser.box(target)
                assert box["h"] >= 44 and box["w"] >= 280, f"tap target too small: {box}"
                await browser.tap(target)
        await browser.tap('label[for="q-channels-2"]')
        await browser.tap('label[for="q-channels-5"]')
        await browser.tap("#q-comment-in")
        await browser.type_text("希望多开展普法进社区活动")
        await browser.tap('button[type="submit"]')
        await browser.wait_event("Page.loadEventFired")
        assert "请回答此题" in await browser.evaluate("document.body.innerText")
        assert await browser.evaluate('document.querySelector("#q-business_env-1").checked')
        assert (
            await browser.evaluate('document.querySelector("#q-comment-in").value')
            == "希望多开展普法进社区活动"
        )
        await browser.evaluate("document.querySelector('#q-oversight').scrollIntoView()")
        await browser.screenshot(ARTIFACTS / "h5-survey-360x740-error.png")

        await browser.tap('label[for="q-oversight-2"]')
        await browser.tap('button[type="submit"]')
        await browser.wait_event("Page.loadEventFired")
        text = await browser.evaluate("document.body.innerText")
        assert "谢谢" in text
        assert (await browser.evaluate("location.pathname")) == "/s/fazhi-2026/thanks"
        await browser.screenshot(ARTIFACTS / "h5-survey-360x740.png")

        # The narrowest phones: nothing overflows at 320 px either.
        await browser.send(
            "Emulation.setDeviceMetricsOverride",
            width=320,
            height=640,
            deviceScaleFactor=2,
            mobile=True,
        )
        # The deputies' survey is by invitation: open its form with a token.
        (token,) = await make_invitations(sessions, 1, survey="deputies-2026")
        await browser.goto(f"{base}/s/deputies-2026?t={token}")
        assert await browser.evaluate("document.querySelectorAll('input').length") > 5
        assert await browser.evaluate("document.documentElement.scrollWidth") <= 320
    finally:
        await browser.close()

    async with sessions() as session:
        response = (await session.execute(select(SurveyResponse))).scalar_one()
        answers = (
            await session.execute(
                select(SurveyAnswer).where(SurveyAnswer.response_id == response.id)
            )
        ).scalars()
        stored = {}
        for row in answers:
            stored.setdefault(row.question, []).append(row.value or row.text)
    assert response.channel == "h5"
    assert stored["business_env"] == ["very_satisfied"]
    assert stored["dispute_resolution"] == ["dissatisfied"]
    assert stored["oversight"] == ["satisfied"]
    assert stored["channels"] == ["mobile", "wechat"]
    assert stored["comment"] == ["希望多开展普法进社区活动"]
    assert (ARTIFACTS / "h5-survey-360x740.png").stat().st_size > 5000


async def _question_numbers(browser: Browser) -> dict[str, str]:
    """``{question code: number as read out}``: the accessible name of each shown question
    (what a screen reader says, CSS-generated numbers included)."""
    await browser.send("Accessibility.enable")
    tree = await browser.send("Accessibility.getFullAXTree")
    names: dict[int, str] = {}
    for node in tree["nodes"]:
        backend = node.get("backendDOMNodeId")
        name = (node.get("name") or {}).get("value", "")
        if backend is not None and not node.get("ignored") and name:
            names[backend] = name
    out: dict[str, str] = {}
    document = await browser.send("DOM.getDocument", depth=-1)
    found = await browser.send(
        "DOM.querySelectorAll", nodeId=document["root"]["nodeId"], selector="fieldset.q, textarea"
    )
    for node_id in found["nodeIds"]:
        described = await browser.send("DOM.describeNode", nodeId=node_id)
        attrs = described["node"].get("attributes", [])
        element_id = dict(zip(attrs[::2], attrs[1::2], strict=True)).get("id", "")
        code = element_id.removeprefix("q-").removesuffix("-in")
        name = names.get(described["node"]["backendNodeId"], "")
        if name:
            number = re.match(r"(\d+(?:\.\d+)*)\.", name)
            out[code] = number.group(1) if number else name
    return out


async def test_numbering_has_no_gap_for_hidden_follow_ups(
    chromium: str, client: Any, sessions: Any
) -> None:
    await opened(client, sessions)
    (token,) = await make_invitations(sessions, 1, survey="deputies-2026")
    base = str(client.make_url("/")).rstrip("/")
    browser = Browser()
    try:
        await browser.start(360, 740)
        await browser.goto(f"{base}/s/deputies-2026?t={token}")
        shown = await _question_numbers(browser)
        assert shown == {"role": "1", "handling": "2", "comment": "3"}, shown
        await browser.tap('label[for="q-handling-4"]')  # 不满意 opens the follow-up
        shown = await _question_numbers(browser)
        # the follow-up reads as part of the question it follows; the comment stays 3
        assert shown == {"role": "1", "handling": "2", "aspects": "2.1", "comment": "3"}, shown
        await browser.screenshot(ARTIFACTS / "h5-deputies-follow-up.png")
    finally:
        await browser.close()
