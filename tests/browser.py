"""Driving Debian's headless chromium with Playwright — the one way the tests use a browser.

Playwright for Python talks to ``/usr/bin/chromium`` (installed by ``make browser``); it never
downloads a browser of its own (``playwright install`` is never run). Without chromium a
browser test skips locally and fails under ``CI=true``, where it must run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

CHROMIUM = os.environ.get("PUFA_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
"""Where browser tests save their screenshots."""

WECHAT_UA = (
    "Mozilla/5.0 (Linux; Android 13; V2183A Build/TP1A.220624.014; wv) AppleWebKit/537.36"
    " (KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160065"
    " MMWEBSDK/20231202 MicroMessenger/8.0.47.2560(0x28002F30) WeChat/arm64 Weixin"
    " NetType/WIFI Language/zh_CN ABI/arm64"
)
"""The user agent of WeChat's in-app browser on Android."""


def chromium_path() -> str | None:
    """The chromium executable, if installed."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    return shutil.which("chromium")


def require_chromium() -> str:
    """The chromium executable; skip the test without one (fail under ``CI=true``)."""
    path = chromium_path()
    if path is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("chromium is not installed (make browser); required in CI")
        pytest.skip("chromium is not installed")
    return path


@asynccontextmanager
async def launch() -> AsyncIterator[Browser]:
    """Headless chromium driven by Playwright, closed afterwards."""
    executable = require_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, args=FLAGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()
