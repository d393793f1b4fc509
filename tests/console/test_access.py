"""Who may see and do what in the console: every role against every page, export, action and
the results API; the security headers; the login redirect; and the CSRF check on every POST."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from bot.app import create_app
from bot.web.auth import MAX_LOGIN_AGE, SESSION_IDLE
from core.clock import utcnow
from core.crypto import derive_key
from storage.db import transaction
from storage.models_outbox import OutboxMessage
from storage.models_surveys import SurveyInvitation, SurveyState
from tests.console.conftest import add_townships, csrf_of, logged_in, make_account, page_csrf
from tests.surveys.conftest import make_api_token
from tests.surveys.test_api import opened

OWN, OTHER = "ZBP", "XJZ"
ROLES = ("admin", "analyst", "coordinator", "staff")

GETS: list[tuple[str, set[str]]] = [
    ("/admin/dashboard", {"admin", "analyst", "staff"}),
    (f"/admin/dashboard?township={OWN}", {"admin", "analyst", "staff"}),
    (f"/admin/dashboard?township={OTHER}", {"admin", "analyst"}),
    ("/admin/dashboard/results.xlsx", {"admin", "analyst", "staff"}),
    (f"/admin/dashboard/results.xlsx?township={OTHER}", {"admin", "analyst"}),
    ("/admin/dashboard/results.json?by=township", {"admin", "analyst", "staff"}),
    (f"/admin/dashboard/results.json?township={OTHER}", {"admin", "analyst"}),
    ("/admin/surveys", {"admin", "staff"}),
    ("/admin/surveys/fazhi-2026", {"admin", "staff"}),
    (f"/admin/surveys/fazhi-2026/poster/{OWN}", {"admin", "staff"}),
    (f"/admin/surveys/fazhi-2026/poster/{OTHER}", {"admin"}),
    ("/admin/outbox", {"admin", "coordinator"}),
    ("/admin/audit", {"admin"}),
]
POSTS: list[tuple[str, dict[str, str], set[str]]] = [
    ("/admin/surveys/fazhi-2026/status", {"status": "closed"}, {"admin"}),
    ("/admin/surveys/fazhi-2026/invitations", {"township": OWN, "count": "2"}, {"admin", "staff"}),
    ("/admin/surveys/fazhi-2026/invitations", {"township": OTHER, "count": "2"}, {"admin"}),
    ("/admin/outbox/retry", {"all": "1"}, {"admin", "coordinator"}),
]
NAV = {
    "admin": ["/admin/dashboard", "/admin/surveys", "/admin/outbox", "/admin/audit"],
    "analyst": ["/admin/dashboard"],
    "coordinator": ["/admin/outbox"],
    "staff": ["/admin/dashboard", "/admin/surveys"],
}


async def _setup(sessions: Any) -> None:
    await add_townships(sessions, **{OWN: "镇北堡镇", OTHER: "兴泾镇"})
    for role in ROLES:
        await make_account(sessions, role, role=role, township=OWN if role == "staff" else None)
    async with transaction(sessions) as session:
        session.add(
            OutboxMessage(
                dedupe_key="notice-1",
                channel="telegram",
                recipient="42",
                body={"text": "明天的会议改到下午"},
                status="failed",
                attempts=5,
                next_attempt_at=utcnow(),
                last_error="chat not found",
            )
        )


async def _state(sessions: Any) -> tuple[str, int, str]:
    async with sessions() as session:
        status = (
            await session.execute(
                select(SurveyState.status).where(SurveyState.code == "fazhi-2026")
            )
        ).scalar_one()
        invitations = (
            await session.execute(select(func.count()).select_from(SurveyInvitation))
        ).scalar_one()
        outbox = (await session.execute(select(OutboxMessage.status))).scalar_one()
    return status, invitations, outbox


async def _switch(client: TestClient[Any, Any], role: str) -> None:
    client.session.cookie_jar.clear()
    await logged_in(client, role)


@pytest.mark.parametrize("role", ROLES)
async def test_each_role_sees_and_does_only_what_it_may(
    client: TestClient[Any, Any], sessions: Any, role: str
) -> None:
    await opened(client, sessions)
    await _setup(sessions)
    await _switch(client, role)

    home = await client.get("/admin/", allow_redirects=False)
    assert home.status == 302
    assert home.headers["Location"] == NAV[role][0]
    page = await (await client.get(NAV[role][0])).text()
    shown = [href for href in NAV["admin"] if f'<a href="{href}"' in page]
    assert shown == NAV[role], f"{role} sees {shown} in the navigation"

    for path, roles in GETS:
        response = await client.get(path, allow_redirects=False)
        expected = 200 if role in roles else 403
        assert response.status == expected, f"{role} GET {path}: {response.status}"
        if expected == 403:
            body = await response.text()
            assert "text/html" in response.headers["Content-Type"]
            assert "无权" in body  # a console page saying so, not data
            assert "<table" not in body

    before = await _state(sessions)
    for path, data, roles in POSTS:
        token = await page_csrf(client, NAV[role][0])
        response = await client.post(
            path, data={"csrf_token": token, **data}, allow_redirects=False
        )
        if role in roles:
            assert response.status in (200, 303), f"{role} POST {path}: {response.status}"
        else:
            assert response.status == 403, f"{role} POST {path}: {response.status}"
    status, invitations, outbox = await _state(sessions)
    assert (status != before[0]) == (role == "admin")
    assert invitations == {"admin": 4, "staff": 2}.get(role, 0)
    assert (outbox == "pending") == (role in ("admin", "coordinator"))

    # The results API (bearer tokens) draws the same line: no results for the coordinator.
    token = await make_api_token(sessions, role=role, township=OWN if role == "staff" else None)
    response = await client.get(
        "/api/v1/surveys/fazhi-2026/results", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status == (403 if role == "coordinator" else 200)


async def test_nobody_logged_in_is_sent_to_the_login_page(
    client: TestClient[Any, Any], sessions: Any
) -> None:
    await opened(client, sessions)
    await _setup(sessions)
    bare = await client.get("/admin", allow_redirects=False)
    assert bare.status == 302 and bare.headers["Location"] == "/admin/"
    root = await client.get("/admin/", allow_redirects=False)
    assert root.status == 302 and root.headers["Location"] == "/admin/login"
    for path, _roles in GETS:
        response = await client.get(path, allow_redirects=False)
        assert response.status == 302, path
        location = urlsplit(response.headers["Location"])
        assert location.path == "/admin/login", path
        assert parse_qs(location.query)["next"] == [path], path
    before = await _state(sessions)
    token = await page_csrf(client, "/admin/login")  # a session, but no login
    for path, data, _roles in POSTS:
        response = await client.post(path, data={"csrf_token": token, **data})
        assert response.status == 401, path
    assert await _state(sessions) == before
    # After logging in, the page asked for first is where the login leads.
    response = await client.get(GETS[-1][0], allow_redirects=False)
    form = await page_csrf(client, response.headers["Location"])
    response = await client.post(
        "/admin/login",
        data={
            "csrf_token": form,
            "name": "admin",
            "password": "correct horse battery staple",
            "next": "/admin/audit",
        },
        allow_redirects=False,
    )
    assert response.status == 303 and response.headers["Location"] == "/admin/audit"


async def test_every_console_response_carries_the_security_headers(
    client: TestClient[Any, Any], sessions: Any
) -> None:
    await opened(client, sessions)
    await _setup(sessions)
    anonymous = [
        await client.get("/admin/login"),
        await client.get("/admin/", allow_redirects=False),
        await client.get("/admin/dashboard", allow_redirects=False),
        await client.get("/admin/static/console.css"),
        await client.post("/admin/logout"),  # refused: no CSRF token
    ]
    await logged_in(client, "analyst")
    logged = [
        await client.get("/admin/dashboard"),
        await client.get("/admin/audit"),  # 403 for an analyst
        await client.get("/admin/no/such/page"),
        await client.get("/admin/dashboard/results.json"),
        await client.get("/admin/dashboard/results.xlsx"),
    ]
    statuses = [r.status for r in anonymous + logged]
    assert statuses == [200, 302, 302, 200, 403, 200, 403, 404, 200, 200]
    for response in anonymous + logged:
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp
        assert "script-src" not in csp  # no script at all, inline or not
        assert "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
        if response.headers.get("Content-Type", "").startswith("text/html"):
            html = await response.text()
            assert "<script" not in html and " style=" not in html and "<style" not in html


async def test_session_cookie_is_encrypted_httponly_samesite_and_expires(
    client: TestClient[Any, Any], sessions: Any, settings: Any
) -> None:
    await _setup(sessions)
    token = await page_csrf(client, "/admin/login")
    response = await client.post(
        "/admin/login",
        data={"csrf_token": token, "name": "admin", "password": "correct horse battery staple"},
        allow_redirects=False,
    )
    cookie = response.cookies["pufa_console"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/admin"
    assert int(cookie["max-age"]) == SESSION_IDLE
    assert "admin" not in cookie.value and '"uid"' not in cookie.value  # encrypted

    # The key the console derives from PUFA_SECRET_KEY, in the form Fernet takes it.
    fernet = Fernet(base64.urlsafe_b64encode(derive_key(settings.secret(), "console.session")))
    data = fernet.decrypt(cookie.value.encode()).decode()
    assert '"uid": 1' in data

    async def dashboard_with(value: str) -> int:
        client.session.cookie_jar.clear()
        client.session.cookie_jar.update_cookies({"pufa_console": value})
        r = await client.get("/admin/dashboard", allow_redirects=False)
        return r.status

    assert await dashboard_with(cookie.value) == 200
    now = utcnow().timestamp()
    stale = fernet.encrypt_at_time(data.encode(), int(now - SESSION_IDLE - 60)).decode()
    assert await dashboard_with(stale) == 302
    payload = json.loads(data)
    payload["session"]["auth_at"] = int(now - MAX_LOGIN_AGE - 60)
    payload["created"] = int(now)
    too_old = fernet.encrypt_at_time(json.dumps(payload).encode(), int(now)).decode()
    assert await dashboard_with(too_old) == 302
    forged = cookie.value[:-6] + ("AAAAAA" if not cookie.value.endswith("AAAAAA") else "BBBBBB")
    assert await dashboard_with(forged) == 302


async def test_a_post_without_the_right_csrf_token_is_refused(
    client: TestClient[Any, Any], sessions: Any, make_settings: Any
) -> None:
    await opened(client, sessions)
    await _setup(sessions)
    # Logging in needs the token too.
    no_token = await client.post(
        "/admin/login", data={"name": "admin", "password": "correct horse battery staple"}
    )
    assert no_token.status == 403
    assert "表单已过期" in await no_token.text()
    await logged_in(client, "admin")
    page = await (await client.get("/admin/surveys")).text()
    good = csrf_of(page)
    close = "/admin/surveys/fazhi-2026/status"

    # A token from another browser's session is no good here either.
    async with TestClient(TestServer(create_app(make_settings()), host="127.0.0.1")) as other:
        await logged_in(other, "admin")
        foreign = csrf_of(await (await other.get("/admin/surveys")).text())
    assert foreign != good

    for data, headers in (
        ({"status": "closed"}, {}),
        ({"status": "closed", "csrf_token": ""}, {}),
        ({"status": "closed", "csrf_token": good[:-1] + ("x" if good[-1] != "x" else "y")}, {}),
        ({"status": "closed", "csrf_token": foreign}, {}),
        ({"status": "closed"}, {"X-CSRF-Token": foreign}),
    ):
        response = await client.post(close, data=data, headers=headers, allow_redirects=False)
        assert response.status == 403, data
    assert (await _state(sessions))[0] == "open"
    logout = await client.post("/admin/logout", allow_redirects=False)
    assert logout.status == 403
    assert (await client.get("/admin/dashboard", allow_redirects=False)).status == 200

    # An upload form (multipart) carries the token in its action URL, not in the body.
    upload = aiohttp.FormData({"status": "closed", "csrf_token": good})
    upload.add_field("file", b"a,b\n", filename="x.csv", content_type="text/csv")
    response = await client.post(close, data=upload, allow_redirects=False)
    assert response.status == 403
    upload = aiohttp.FormData({"status": "closed"})
    upload.add_field("file", b"a,b\n", filename="x.csv", content_type="text/csv")
    response = await client.post(f"{close}?csrf_token={foreign}", data=upload)
    assert response.status == 403
    assert (await _state(sessions))[0] == "open"

    # The right token, in the form, the header or an upload's URL, is accepted.
    upload = aiohttp.FormData({"status": "scheduled"})
    upload.add_field("file", b"a,b\n", filename="x.csv", content_type="text/csv")
    response = await client.post(f"{close}?csrf_token={good}", data=upload, allow_redirects=False)
    assert response.status == 303
    assert (await _state(sessions))[0] == "scheduled"
    ok = await client.post(
        close, data={"status": "closed"}, headers={"X-CSRF-Token": good}, allow_redirects=False
    )
    assert ok.status == 303
    assert (await _state(sessions))[0] == "closed"
    ok = await client.post("/admin/logout", data={"csrf_token": good}, allow_redirects=False)
    assert ok.status == 303
    assert (await client.get("/admin/dashboard", allow_redirects=False)).status == 302
