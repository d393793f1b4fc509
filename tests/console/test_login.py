"""Logging in: wrong passwords, throttling per account and per address (counted in the
database, so every process sharing it agrees), and what the audit log keeps of it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select, update

from bot.app import create_app
from bot.web.accounts import ACCOUNT_LIMIT, ADDRESS_LIMIT, WINDOW, throttle_wait
from core.clock import utcnow
from storage.db import transaction
from storage.models import AuditLog
from storage.models_console import ConsoleAccount, LoginFailure
from tests.console.conftest import PASSWORD, login, make_account, page_csrf


async def _failures(sessions: Any, kind: str) -> int:
    async with sessions() as session:
        return int(
            (
                await session.execute(
                    select(func.count()).select_from(LoginFailure).where(LoginFailure.kind == kind)
                )
            ).scalar_one()
        )


async def _age_failures(sessions: Any, by: timedelta) -> None:
    """Let time pass for the recorded failures."""
    async with transaction(sessions) as session:
        await session.execute(update(LoginFailure).values(at=utcnow() - by))


def test_throttle_wait_counts_only_the_last_failures_of_the_window() -> None:
    now = utcnow()
    four = [now - timedelta(minutes=m) for m in (10, 8, 6, 1)]
    assert throttle_wait(four, 5, now) == 0
    five = [now - timedelta(minutes=14), *four]
    assert throttle_wait(five, 5, now) == 60  # until the oldest leaves the 15 minutes
    six = [now - timedelta(minutes=14, seconds=30), *five]
    assert throttle_wait(six, 5, now) == 60


async def test_wrong_password_then_throttled_per_account_across_processes(
    client: TestClient[Any, Any], sessions: Any, settings: Any
) -> None:
    await make_account(sessions, "ops")
    wrong = await login(client, "ops", "not the password at all")
    assert wrong.status == 401
    assert "用户名或密码错误" in await wrong.text()
    # A second process on the same database counts the same failures.
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as other:
        for n in range(ACCOUNT_LIMIT - 1):
            who = other if n % 2 else client
            response = await login(who, "OPS ", f"guess {n}")  # case and spaces do not help
            assert response.status == 401
        assert await _failures(sessions, "account") == ACCOUNT_LIMIT
        for who in (client, other):
            blocked = await login(who, "ops", PASSWORD)  # even the right password
            assert blocked.status == 429
            assert 0 < int(blocked.headers["Retry-After"]) <= WINDOW.total_seconds()
            assert "登录失败次数过多" in await blocked.text()
            assert "pufa_console" not in blocked.cookies or "uid" not in blocked.cookies
            assert (await who.get("/admin/dashboard", allow_redirects=False)).status == 302
    # Refused attempts are not counted as failures (the lock does not grow by itself).
    assert await _failures(sessions, "account") == ACCOUNT_LIMIT
    # Another account from the same address is not locked by this one.
    await make_account(sessions, "analyst", role="analyst")
    assert (await login(client, "analyst")).status == 303

    await _age_failures(sessions, WINDOW + timedelta(seconds=1))
    client.session.cookie_jar.clear()
    ok = await login(client, "ops")
    assert ok.status == 303
    async with sessions() as session:
        account = (
            await session.execute(select(ConsoleAccount).where(ConsoleAccount.name == "ops"))
        ).scalar_one()
        assert account.last_login_at is not None
        actions = (await session.execute(select(AuditLog.action))).scalars().all()
    assert actions.count("console.login_failed") == ACCOUNT_LIMIT
    assert actions.count("console.login") == 2


async def test_a_good_login_clears_the_accounts_failures(
    client: TestClient[Any, Any], sessions: Any
) -> None:
    await make_account(sessions, "ops")
    for n in range(ACCOUNT_LIMIT - 1):
        assert (await login(client, "ops", f"wrong {n}")).status == 401
    assert (await login(client, "ops")).status == 303
    assert await _failures(sessions, "account") == 0
    client.session.cookie_jar.clear()
    for n in range(ACCOUNT_LIMIT - 1):
        assert (await login(client, "ops", f"wrong again {n}")).status == 401
    assert (await login(client, "ops")).status == 303


async def test_throttled_per_address_whatever_the_names(
    client: TestClient[Any, Any], sessions: Any
) -> None:
    await make_account(sessions, "ops")
    token = await page_csrf(client, "/admin/login")
    for n in range(ADDRESS_LIMIT):
        # Different names (none more than once): no account limit is reached.
        response = await client.post(
            "/admin/login",
            data={"csrf_token": token, "name": f"user{n}", "password": "password123456"},
        )
        assert response.status == 401
    assert await _failures(sessions, "address") == ADDRESS_LIMIT
    blocked = await login(client, "ops", PASSWORD)
    assert blocked.status == 429
    await _age_failures(sessions, WINDOW + timedelta(seconds=1))
    assert (await login(client, "ops")).status == 303


async def test_a_deactivated_account_is_logged_out_at_once(
    client: TestClient[Any, Any], sessions: Any
) -> None:
    await make_account(sessions, "ops")
    assert (await login(client, "ops")).status == 303
    assert (await client.get("/admin/dashboard", allow_redirects=False)).status == 200
    async with transaction(sessions) as session:
        await session.execute(update(ConsoleAccount).values(active=False))
    assert (await client.get("/admin/dashboard", allow_redirects=False)).status == 302
    assert (await login(client, "ops")).status == 401


async def test_login_page_language_and_empty_form(client: TestClient[Any, Any]) -> None:
    zh = await client.get("/admin/login", headers={"Accept-Language": "zh-CN"})
    assert "登录" in await zh.text()
    en = await client.get("/admin/login", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert '<html lang="en">' in await en.text() and "Log in" in await en.text()
    # The switch keeps the choice in the session, over Accept-Language.
    switch = await client.get("/admin/lang?to=en&next=/admin/login", allow_redirects=False)
    assert switch.status == 302 and switch.headers["Location"] == "/admin/login"
    again = await client.get("/admin/login", headers={"Accept-Language": "zh-CN"})
    assert "Log in" in await again.text()
    # An address outside the console is never where a switch or a login leads.
    away = await client.get("/admin/lang?to=zh&next=//evil.example/", allow_redirects=False)
    assert away.headers["Location"] == "/admin/"
    empty = await login(client, "", "")
    assert empty.status == 422
    assert "请输入用户名和密码" in await empty.text()  # the language switched back to zh
