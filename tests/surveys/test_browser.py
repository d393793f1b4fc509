"""A resident completes the survey in headless chromium on a 360×740 phone screen.

Taps go to the labels (large targets tied to their inputs); the page itself runs no
JavaScript. The browser is Debian's chromium driven by Playwright (:mod:`tests.browser`).
Screenshots are saved to ``test-artifacts/``. Without chromium the test skips locally but
fails under ``CI=true`` (``make test`` installs it with ``make browser``).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import CDPSession
from sqlalchemy import select

from storage.models_surveys import SurveyAnswer, SurveyResponse
from tests.browser import ARTIFACTS, WECHAT_UA, launch
from tests.surveys.conftest import make_invitations
from tests.surveys.test_api import opened

pytestmark = pytest.mark.browser


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


async def test_complete_survey_on_a_phone(client: Any, sessions: Any) -> None:
    await opened(client, sessions)
    base = str(client.make_url("/")).rstrip("/")
    async with launch() as browser:
        context = await browser.new_context(
            viewport={"width": 360, "height": 740},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            user_agent=WECHAT_UA,
            locale="zh-CN",
            extra_http_headers={"Accept-Language": "zh-CN,zh;q=0.9"},
        )
        page = await context.new_page()
        await page.goto(f"{base}/s/fazhi-2026")
        assert await page.evaluate("document.documentElement.scrollWidth") <= 360
        assert await page.title() == "2026年西夏区法治政府建设满意度调查"
        await page.screenshot(path=ARTIFACTS / "h5-survey-360x740-start.png")

        # First submit with one rating missing: the page comes back with the error and
        # everything else still chosen.
        for code, position in RATINGS.items():
            if code != "oversight":
                target = page.locator(f'label[for="q-{code}-{position}"]')
                box = await target.bounding_box()
                assert box is not None
                assert box["height"] >= 44 and box["width"] >= 280, f"tap target too small: {box}"
                await target.tap()
        await page.tap('label[for="q-channels-2"]')
        await page.tap('label[for="q-channels-5"]')
        await page.tap("#q-comment-in")
        await page.keyboard.insert_text("希望多开展普法进社区活动")
        async with page.expect_navigation():
            await page.tap('button[type="submit"]')
        assert "请回答此题" in await page.inner_text("body")
        assert await page.is_checked("#q-business_env-1")
        assert await page.input_value("#q-comment-in") == "希望多开展普法进社区活动"
        await page.locator("#q-oversight").scroll_into_view_if_needed()
        await page.screenshot(path=ARTIFACTS / "h5-survey-360x740-error.png")

        await page.tap('label[for="q-oversight-2"]')
        async with page.expect_navigation():
            await page.tap('button[type="submit"]')
        assert "谢谢" in await page.inner_text("body")
        assert await page.evaluate("location.pathname") == "/s/fazhi-2026/thanks"
        await page.screenshot(path=ARTIFACTS / "h5-survey-360x740.png")

        # The narrowest phones: nothing overflows at 320 px either.
        await page.set_viewport_size({"width": 320, "height": 640})
        # The deputies' survey is by invitation: open its form with a token.
        (token,) = await make_invitations(sessions, 1, survey="deputies-2026")
        await page.goto(f"{base}/s/deputies-2026?t={token}")
        assert await page.locator("input").count() > 5
        assert await page.evaluate("document.documentElement.scrollWidth") <= 320
        await context.close()

    async with sessions() as session:
        response = (await session.execute(select(SurveyResponse))).scalar_one()
        answers = (
            await session.execute(
                select(SurveyAnswer).where(SurveyAnswer.response_id == response.id)
            )
        ).scalars()
        stored: dict[str, list[str | None]] = {}
        for row in answers:
            stored.setdefault(row.question, []).append(row.value or row.text)
    assert response.channel == "h5"
    assert stored["business_env"] == ["very_satisfied"]
    assert stored["dispute_resolution"] == ["dissatisfied"]
    assert stored["oversight"] == ["satisfied"]
    assert stored["channels"] == ["mobile", "wechat"]
    assert stored["comment"] == ["希望多开展普法进社区活动"]
    assert (ARTIFACTS / "h5-survey-360x740.png").stat().st_size > 5000


async def _question_numbers(browser: CDPSession) -> dict[str, str]:
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
    document = await browser.send("DOM.getDocument", {"depth": -1})
    found = await browser.send(
        "DOM.querySelectorAll",
        {"nodeId": document["root"]["nodeId"], "selector": "fieldset.q, textarea"},
    )
    for node_id in found["nodeIds"]:
        described = await browser.send("DOM.describeNode", {"nodeId": node_id})
        attrs = described["node"].get("attributes", [])
        element_id = dict(zip(attrs[::2], attrs[1::2], strict=True)).get("id", "")
        code = element_id.removeprefix("q-").removesuffix("-in")
        name = names.get(described["node"]["backendNodeId"], "")
        if name:
            number = re.match(r"(\d+(?:\.\d+)*)\.", name)
            out[code] = number.group(1) if number else name
    return out


async def test_numbering_has_no_gap_for_hidden_follow_ups(client: Any, sessions: Any) -> None:
    await opened(client, sessions)
    (token,) = await make_invitations(sessions, 1, survey="deputies-2026")
    base = str(client.make_url("/")).rstrip("/")
    async with launch() as browser:
        context = await browser.new_context(
            viewport={"width": 360, "height": 740}, locale="zh-CN", has_touch=True, is_mobile=True
        )
        page = await context.new_page()
        cdp = await context.new_cdp_session(page)
        await page.goto(f"{base}/s/deputies-2026?t={token}")
        shown = await _question_numbers(cdp)
        assert shown == {"role": "1", "handling": "2", "comment": "3"}, shown
        await page.tap('label[for="q-handling-4"]')  # 不满意 opens the follow-up
        shown = await _question_numbers(cdp)
        # the follow-up reads as part of the question it follows; the comment stays 3
        assert shown == {"role": "1", "handling": "2", "aspects": "2.1", "comment": "3"}, shown
        await page.screenshot(path=ARTIFACTS / "h5-deputies-follow-up.png")
        await context.close()
