"""Helpers for the console tests: accounts, townships, logging in, answering surveys, rota
meetings and chats bound to roles."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta, timezone
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.rota.config import load_offsets
from bot.rota.service import Env, add_meetings
from bot.rota.store import load
from bot.web.accounts import create_account
from core.clock import utcnow
from core.settings import Settings
from storage.db import transaction
from storage.models import AuditLog, ChatIdentity, Township, Unit
from tests.surveys.conftest import fazhi_answers

CST = timezone(timedelta(hours=8))

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


# ---------------------------------------------------------------------------------- the rota


def local_day(days: int, clock: str = "08:30") -> datetime:
    """Beijing time ``clock`` (``HH:MM``) on the day ``days`` days from today."""
    hour, minute = (int(x) for x in clock.split(":"))
    today = utcnow().astimezone(CST).date() + timedelta(days=days)
    return datetime.combine(today, time(hour, minute), tzinfo=CST)


def form_time(moment: datetime) -> str:
    """A time as a ``datetime-local`` field holds it (Beijing time)."""
    return moment.astimezone(CST).strftime("%Y-%m-%dT%H:%M")


async def schedule(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    committee: str,
    *times: datetime,
    now: datetime | None = None,
) -> list[int]:
    """Meetings added through the rota's own function (``now``: as if it were then)."""
    async with transaction(sessions) as session:
        env = Env.of(session, settings, load_offsets(), now or utcnow(), "test")
        added, _ = await add_meetings(env, committee, list(times))
    return [m.id for m in added if m.id is not None]


async def bind(
    sessions: async_sessionmaker[AsyncSession],
    address: str,
    role: str,
    *,
    unit: str | None = None,
    township: str | None = None,
) -> None:
    """A Telegram chat bound to a role (as ``/bind`` leaves it)."""
    async with transaction(sessions) as session:
        unit_id = township_id = None
        if unit is not None:
            unit_id = (await session.execute(select(Unit.id).where(Unit.code == unit))).scalar_one()
        if township is not None:
            township_id = (
                await session.execute(select(Township.id).where(Township.code == township))
            ).scalar_one()
        session.add(
            ChatIdentity(
                channel="telegram",
                external_id=address,
                locale="zh_CN",
                role=role,
                unit_id=unit_id,
                township_id=township_id,
            )
        )


async def on_duty(sessions: async_sessionmaker[AsyncSession], *meeting_ids: int) -> list[str]:
    """The code of the unit on duty at each meeting."""
    async with sessions() as session:
        snapshot = await load(session)
    return [snapshot.units[snapshot.slots[i].unit_id].code for i in meeting_ids]


async def audit_actions(sessions: async_sessionmaker[AsyncSession], prefix: str) -> list[AuditLog]:
    """Audit entries whose action starts with ``prefix``, oldest first."""
    async with sessions() as session:
        rows = await session.execute(
            select(AuditLog).where(AuditLog.action.startswith(prefix)).order_by(AuditLog.id)
        )
        return list(rows.scalars())


def flash_of(html: str) -> str:
    """The text of the page's flash message (empty when there is none)."""
    match = re.search(r'<p class="flash[^"]*" role="\w+">(.*?)</p>', html, flags=re.S)
    return match.group(1) if match else ""
