"""Helpers for the console tests: accounts, townships, logging in, answering surveys."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.web.accounts import create_account
from core.clock import utcnow
from storage.db import transaction
from storage.models import Township
from tests.surveys.conftest import fazhi_answers

PASSWORD = "correct horse battery staple"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


async def make_account(
    sessions: async_sessionmaker[AsyncSession],
    name: str,
    role: str = "admin",
    township: str | None = None,
    password: str = PASSWORD,
) -> int:
    """Create a console account directly in the database; its id."""
    async with transaction(sessions) as session:
        account = await create_account(
            session, name, password, role=role, township=township, now=utcnow()
        )
        assert account.id is not None
        return account.id


async def add_townships(sessions: async_sessionmaker[AsyncSession], **names: str) -> None:
    """Real (not sample) townships: ``add_townships(sessions, ZHENBEI="镇北堡镇")``."""
    async with transaction(sessions) as session:
        for code, name in names.items():
            session.add(Township(code=code, name=name, kind="town"))


def csrf_of(html: str) -> str:
    """The CSRF token of the first form in a page."""
    match = CSRF_RE.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def page_csrf(client: TestClient[Any, Any], path: str) -> str:
    """Open ``path`` and return its CSRF token."""
    response = await client.get(path)
    assert response.status == 200, (path, response.status)
    return csrf_of(await response.text())


async def login(
    client: TestClient[Any, Any], name: str, password: str = PASSWORD, next_: str = ""
) -> aiohttp.ClientResponse:
    """Log in through the login form (not following the redirect)."""
    token = await page_csrf(client, "/admin/login")
    return await client.post(
        "/admin/login",
        data={"csrf_token": token, "name": name, "password": password, "next": next_},
        allow_redirects=False,
    )


async def logged_in(client: TestClient[Any, Any], name: str, password: str = PASSWORD) -> None:
    """Log in and check it worked."""
    response = await login(client, name, password)
    assert response.status == 303, await response.text()


async def answer(
    client: TestClient[Any, Any], src: str | None = None, **overrides: Any
) -> dict[str, Any]:
    """Submit one response through the public API as a new phone (its own cookie jar)."""
    body: dict[str, Any] = {"answers": fazhi_answers(**overrides)}
    if src:
        body["src"] = src
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as phone:
        response = await phone.post(
            str(client.make_url("/api/v1/surveys/fazhi-2026/responses")), json=body
        )
        assert response.status == 201, await response.text()
        result: dict[str, Any] = await response.json()
        return result
