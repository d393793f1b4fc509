"""The district office uses the console in headless chromium, on a desktop and on a phone.

Real residents' answers are submitted through the public API first; the test logs in through
the form, reads the dashboard's figures (checked against the survey results computed from the
database), closes and reopens a survey with the buttons, and finds both changes in the audit
log. Screenshots at 1280 px and 360 px wide are saved in ``test-artifacts/``. The page runs
no script, text typed by residents stays text, and the Content-Security-Policy is never
violated.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Dialog, Page
from sqlalchemy import select

from storage.models_surveys import SurveyState
from surveys.results import compute_results
from surveys.schema import load_catalog
from tests.browser import ARTIFACTS, launch
from tests.console.conftest import PASSWORD, add_townships, answer, make_account
from tests.surveys.test_api import opened

pytestmark = pytest.mark.browser

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


class Watch:
    """Collects what must never happen on a console page: dialogs and CSP violations."""

    def __init__(self) -> None:
        self.dialogs: list[str] = []
        self.csp: list[str] = []

    def attach(self, page: Page) -> None:
        page.on("dialog", self._dialog)
        page.on("console", self._console)

    async def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        await dialog.dismiss()

    def _console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.csp.append(message.text)


async def _context(browser: Browser, width: int, height: int, mobile: bool) -> BrowserContext:
    return await browser.new_context(
        viewport={"width": width, "height": height},
        device_scale_factor=2 if mobile else 1,
        is_mobile=mobile,
        has_touch=mobile,
        locale="zh-CN",
        extra_http_headers={"Accept-Language": "zh-CN,zh;q=0.9"},
    )


async def _login(page: Page, base: str, name: str) -> None:
    await page.goto(f"{base}/admin/")
    assert page.url.startswith(f"{base}/admin/login")
    await page.fill("#name", name)
    await page.fill("#password", PASSWORD)
    async with page.expect_navigation():
        await page.click("button.primary")
    assert page.url.startswith(f"{base}/admin/dashboard"), page.url


async def _overflowing(page: Page, width: int) -> list[str]:
    """The elements that stick out beyond ``width`` (to say why a page scrolls sideways)."""
    found: list[str] = await page.evaluate(
        """(width) => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > width)
            .slice(0, 10).map(e => e.tagName + '.' + e.className.toString() + ' '
            + Math.round(e.getBoundingClientRect().right))""",
        width,
    )
    return found


async def test_console_in_a_browser(client: Any, sessions: Any) -> None:
    await opened(client, sessions)
    await add_townships(sessions, ZHENBEI="镇北堡镇", XINGJING="兴泾镇")
    await make_account(sessions, "司法局管理员")
    await answer(client, src="ZHENBEI", comment="希望多开展普法进社区活动")
    await answer(client, src="ZHENBEI", business_env="dissatisfied", comment=HOSTILE)
    await answer(client, src="XINGJING", business_env="very_satisfied")
    await answer(client, public_service="dissatisfied")
    async with sessions() as session:
        report = await compute_results(session, load_catalog()["fazhi-2026"], include_sample=False)
    business = report.indicators[0]
    assert business.result.n == 4 and business.result.satisfied == 3

    base = str(client.make_url("/")).rstrip("/")
    watch = Watch()
    async with launch() as browser:
        desktop = await _context(browser, 1280, 900, mobile=False)
        page = await desktop.new_page()
        watch.attach(page)
        await _login(page, base, "司法局管理员")

        # The dashboard shows the figures the database gives.
        assert await page.inner_text("#total-responses") == "4"
        first = page.locator("#indicators tbody tr").first
        cells = await first.locator("td").all_inner_texts()
        assert cells[0] == business.title
        assert cells[1] == "4"
        assert cells[2] == "75.0%"
        assert "未达标" in cells[5] or "尚无定论" in cells[5] or "达标" in cells[5]
        assert await page.locator("svg.chart").count() == 3
        assert "镇北堡镇" in await page.locator("svg.chart").nth(1).text_content()
        # What a resident typed is shown as text: no script ran, no element was made.
        comments = await page.inner_text(".comments")
        assert HOSTILE in comments
        assert await page.locator(".comments img, .comments script").count() == 0
        await page.screenshot(path=ARTIFACTS / "console-dashboard-1280.png", full_page=True)

        # Close the survey with its button, then open it again.
        await page.click('nav a[href="/admin/surveys"]')
        row = page.locator("#survey-fazhi-2026")
        async with page.expect_navigation():
            await row.locator('button[value="closed"]').click()
        assert "fazhi-2026" in await page.inner_text(".flash")
        assert "已关闭" in await row.inner_text() or "关闭" in await row.inner_text()
        async with sessions() as session:
            state = await session.get(SurveyState, "fazhi-2026")
            assert state is not None and state.status == "closed"
        await page.screenshot(path=ARTIFACTS / "console-surveys-1280.png", full_page=True)
        async with page.expect_navigation():
            await row.locator('button[value="open"]').click()
        async with sessions() as session:
            status = (
                await session.execute(
                    select(SurveyState.status).where(SurveyState.code == "fazhi-2026")
                )
            ).scalar_one()
        assert status == "open"

        # Both changes are in the audit log, with who, before and after.
        await page.click('nav a[href="/admin/audit"]')
        await page.select_option('select[name="action"]', "survey.closed")
        async with page.expect_navigation():
            await page.click('form.filters button[type="submit"]')
        rows = page.locator("#audit tbody tr")
        assert await rows.count() == 1
        text = await rows.first.inner_text()
        assert "console:司法局管理员" in text
        assert '"status": "open"' in text and '"status": "closed"' in text
        await page.goto(f"{base}/admin/audit")
        assert await page.locator("#audit tbody tr", has_text="survey.open").count() == 1
        await page.screenshot(path=ARTIFACTS / "console-audit-1280.png", full_page=True)
        await desktop.close()

        # On a phone: the same pages fit 360 px without sideways scrolling.
        phone = await _context(browser, 360, 740, mobile=True)
        page = await phone.new_page()
        watch.attach(page)
        await _login(page, base, "司法局管理员")
        for name, path in (
            ("dashboard", "/admin/dashboard"),
            ("surveys", "/admin/surveys"),
            ("audit", "/admin/audit"),
        ):
            await page.goto(base + path)
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, f"{path} is {width} px wide: {await _overflowing(page, 360)}"
            await page.screenshot(path=ARTIFACTS / f"console-{name}-360.png", full_page=True)
        await phone.close()

    assert watch.dialogs == []
    assert watch.csp == []
    for name in ("dashboard-1280", "dashboard-360", "surveys-1280", "audit-360"):
        assert (ARTIFACTS / f"console-{name}.png").stat().st_size > 10_000
