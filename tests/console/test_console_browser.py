"""The district office uses the console in headless chromium, on a desktop and on a phone:
one session through the whole journey.

Real residents' answers are submitted through the public API, meetings are scheduled and a
unit asks for a swap through the rota's own functions first. The test logs in through the
form, reads the dashboard's figures (checked against the survey results and the rota computed
from the database), closes and reopens a survey, moves a meeting, approves the swap, imports
villages from a file whose bad row is shown in the preview before anything is written, and
finds every change in the audit log. Screenshots of every page at 1280 px and 360 px wide are
saved in ``test-artifacts/``. The pages run no script, text typed by residents and units
stays text, no page is wider than a phone, and the Content-Security-Policy is never violated.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Dialog, Page
from sqlalchemy import func, select

from bot.rota.config import load_offsets
from bot.rota.service import Env, request_swap
from core.clock import utcnow
from storage.db import transaction
from storage.models import Village
from storage.models_rota import RotaMeeting, RotaSwap
from storage.models_surveys import SurveyState
from surveys.results import compute_results
from surveys.schema import load_catalog
from tests.browser import ARTIFACTS, launch
from tests.console.conftest import (
    PASSWORD,
    add_townships,
    answer,
    audit_actions,
    bind,
    form_time,
    local_day,
    make_account,
    on_duty,
    schedule,
)
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


async def _unit(session: Any, code: str) -> int:
    from storage.models import Unit

    unit_id = (await session.execute(select(Unit.id).where(Unit.code == code))).scalar_one()
    return int(unit_id)


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


VILLAGES = (
    "镇街代码,镇街名称,村居代码,村居名称,类型,贫困村\n"
    "ZHENBEI,镇北堡镇,zb-01,镇北堡村,村,否\n"
    "ZHENBEI,镇北堡镇,zb-02,昊苑村,村,是\n"
    "XINGJING,兴泾镇,xj-01,兴泾村,村,也许\n"  # row 4: not a yes/no value
)


async def _fits(page: Page, width: int) -> None:
    scroll = await page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{page.url} is {scroll} px wide: {await _overflowing(page, width)}"


async def test_console_in_a_browser(client: Any, sessions: Any, settings: Any) -> None:
    meetings = await schedule(
        sessions, settings, "standing", local_day(4), local_day(11), local_day(18)
    )
    await schedule(sessions, settings, "executive", local_day(6, "09:00"))
    await bind(sessions, "21", "unit", unit="sfj")
    async with transaction(sessions) as session:
        env = Env.of(session, settings, load_offsets(), utcnow(), "telegram:22")
        # 党办 (on duty at the second meeting) asks to swap with 法院 (the third)
        swap = await request_swap(
            env, meetings[1], meetings[2], await _unit(session, "dangban"), HOSTILE
        )
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
        # …and the unit on duty at the next 区委常委会 and the swap waiting, from the rota.
        duty = await page.inner_text("#work-duty-standing")
        assert "司法局" in duty and "未确认" in duty
        assert "1个调换申请待答复" in await page.inner_text("#work-rota")
        assert await page.inner_text("#liaisons-registered") == "0"
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

        # Move the first meeting from its page.
        await page.click('nav a[href="/admin/rota"]')
        assert "司法局" in await page.inner_text("#duty-standing")
        await page.screenshot(path=ARTIFACTS / "console-rota-1280.png", full_page=True)
        await page.click(f"#meeting-{meetings[0]} .meeting-when a")
        new_time = local_day(5, "15:00")
        await page.fill("#when", form_time(new_time))
        async with page.expect_navigation():
            await page.click("#move button[type=submit]")
        assert "已改到" in await page.inner_text(".flash")
        assert "15:00" in await page.inner_text("#meeting-when")
        async with sessions() as session:
            moved = await session.get(RotaMeeting, meetings[0])
            assert moved is not None and moved.starts_at == new_time
        await page.screenshot(path=ARTIFACTS / "console-meeting-1280.png", full_page=True)

        # Approve the swap 党办 asked for; its reason is text.
        await page.click('nav a[href="/admin/rota"]')
        card = page.locator(f"#swap-{swap.id}")
        assert HOSTILE in await card.inner_text()
        assert await card.locator("img, script").count() == 0
        async with page.expect_navigation():
            await card.locator('button[value="approve"]').click()
        assert f"调换 #{swap.id} 已批准" in await page.inner_text(".flash")
        assert await on_duty(sessions, meetings[1], meetings[2]) == ["fayuan", "dangban"]
        assert "法院" in await page.inner_text(f"#meeting-{meetings[1]}")

        # Import villages: the bad row is shown and nothing is written until confirmed.
        await page.click('nav a[href="/admin/liaisons"]')
        await page.click('.subnav a[href="/admin/liaisons/import"]')
        await page.set_input_files(
            "#villages-file",
            files=[{"name": "村居.csv", "mimeType": "text/csv", "buffer": VILLAGES.encode()}],
        )
        async with page.expect_navigation():
            await page.click("#import-villages button[type=submit]")
        problems = await page.locator("#problems tbody tr").all_inner_texts()
        assert len(problems) == 1 and problems[0].startswith("4") and "也许" in problems[0]
        assert "尚未写入任何数据" in await page.inner_text("#preview")
        async with sessions() as session:
            count = (await session.execute(select(func.count()).select_from(Village))).scalar()
        assert count == 0
        await page.screenshot(path=ARTIFACTS / "console-import-preview-1280.png", full_page=True)
        preview_url = page.url
        async with page.expect_navigation():
            await page.click('button[value="skip_bad"]')
        assert "新增2条" in await page.inner_text(".flash")
        assert "镇北堡村" in await page.inner_text("#villages")
        async with sessions() as session:
            count = (await session.execute(select(func.count()).select_from(Village))).scalar()
        assert count == 2
        await page.screenshot(path=ARTIFACTS / "console-liaisons-1280.png", full_page=True)

        # Every change is in the audit log, by this account.
        await page.goto(f"{base}/admin/audit?actor=司法局管理员")
        logged = await page.locator("#audit tbody tr td:nth-child(3)").all_inner_texts()
        for action in ("rota.meeting.move", "rota.swap.approve", "village.import", "survey.closed"):
            assert action in logged, action
        assert logged.count("village.create") == 2
        await page.screenshot(path=ARTIFACTS / "console-audit-1280.png", full_page=True)
        await page.goto(f"{base}/admin/dashboard")
        assert "2个村（社区）中2个未达标" in await page.inner_text("#work-liaisons")
        await desktop.close()

        # On a phone: the same pages fit 360 px without sideways scrolling.
        phone = await _context(browser, 360, 740, mobile=True)
        page = await phone.new_page()
        watch.attach(page)
        await _login(page, base, "司法局管理员")
        for name, path in (
            ("dashboard", "/admin/dashboard"),
            ("surveys", "/admin/surveys"),
            ("rota", "/admin/rota"),
            ("meeting", f"/admin/rota/meetings/{meetings[0]}"),
            ("report", "/admin/rota/report"),
            ("notices", "/admin/notices"),
            ("liaisons", "/admin/liaisons"),
            ("liaison-list", "/admin/liaisons/list"),
            ("import", "/admin/liaisons/import"),
            ("audit", "/admin/audit"),
        ):
            await page.goto(base + path)
            await _fits(page, 360)
            await page.screenshot(path=ARTIFACTS / f"console-{name}-360.png", full_page=True)
        # The preview of an import, on a phone.
        await page.goto(f"{base}/admin/liaisons/import")
        await page.set_input_files(
            "#villages-file",
            files=[{"name": "村居.csv", "mimeType": "text/csv", "buffer": VILLAGES.encode()}],
        )
        async with page.expect_navigation():
            await page.click("#import-villages button[type=submit]")
        assert await page.locator("#problems tbody tr").count() == 1
        await _fits(page, 360)
        await page.screenshot(path=ARTIFACTS / "console-import-preview-360.png", full_page=True)
        await phone.close()

    assert watch.dialogs == []
    assert watch.csp == []
    assert preview_url != page.url
    async with sessions() as session:
        status = (await session.execute(select(RotaSwap.status))).scalar_one()
    assert status == "accepted"
    assert [e.actor for e in await audit_actions(sessions, "rota.meeting.move")] == [
        "console:司法局管理员"
    ]
    for name in (
        "dashboard-1280",
        "dashboard-360",
        "surveys-1280",
        "rota-1280",
        "rota-360",
        "meeting-1280",
        "import-preview-1280",
        "import-preview-360",
        "liaisons-1280",
        "audit-360",
    ):
        assert (ARTIFACTS / f"console-{name}.png").stat().st_size > 10_000, name
