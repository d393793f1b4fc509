"""Who may see and do what in the console: every role against every page, export, action,
upload and the results API (a staff account against another township's figures, liaisons and
imports); the security headers; the login redirect; and the CSRF check on every POST."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from bot.app import create_app
from bot.rota.config import load_offsets
from bot.rota.service import Env, request_swap
from bot.rota.store import load
from bot.web.auth import MAX_LOGIN_AGE, SESSION_IDLE
from core.clock import utcnow
from core.crypto import derive_key
from storage.db import transaction
from storage.models import Township, Village
from storage.models_console import ConsoleUpload
from storage.models_outbox import OutboxMessage
from storage.models_rota import RotaMeeting, RotaSwap
from storage.models_surveys import SurveyInvitation, SurveyState
from tests.console.conftest import (
    add_townships,
    bind,
    csrf_of,
    local_day,
    logged_in,
    make_account,
    page_csrf,
    schedule,
)
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
    ("/admin/rota", {"admin", "coordinator"}),
    ("/admin/rota/meetings/1", {"admin", "coordinator"}),
    ("/admin/rota/report", {"admin", "coordinator"}),
    ("/admin/rota/report.xlsx", {"admin", "coordinator"}),
    ("/admin/notices", {"admin", "coordinator"}),
    ("/admin/liaisons", {"admin", "staff"}),
    (f"/admin/liaisons?township={OWN}&short=1", {"admin", "staff"}),
    (f"/admin/liaisons?township={OTHER}", {"admin"}),
    ("/admin/liaisons/coverage.xlsx", {"admin", "staff"}),
    (f"/admin/liaisons/coverage.xlsx?township={OTHER}", {"admin"}),
    ("/admin/liaisons/list", {"admin", "staff"}),
    (f"/admin/liaisons/list?township={OTHER}", {"admin"}),
    ("/admin/liaisons/import", {"admin", "staff"}),
]
OPENED: list[tuple[str, set[str]]] = [
    # an upload that is not there (or not the account's): back to the import page
    ("/admin/liaisons/import/villages/no-such-upload", {"admin"}),
    ("/admin/liaisons/import/volunteers/no-such-upload", {"admin", "staff"}),
]
POSTS: list[tuple[str, dict[str, str], set[str]]] = [
    ("/admin/surveys/fazhi-2026/status", {"status": "closed"}, {"admin"}),
    ("/admin/surveys/fazhi-2026/invitations", {"township": OWN, "count": "2"}, {"admin", "staff"}),
    ("/admin/surveys/fazhi-2026/invitations", {"township": OTHER, "count": "2"}, {"admin"}),
    ("/admin/outbox/retry", {"all": "1"}, {"admin", "coordinator"}),
    ("/admin/rota/meetings/1/move", {"when": "2099-01-08T15:00"}, {"admin", "coordinator"}),
    ("/admin/rota/meetings/2/cancel", {}, {"admin", "coordinator"}),
    ("/admin/rota/meetings/4/mark", {"outcome": "missed"}, {"admin", "coordinator"}),
    (
        "/admin/rota/meetings",
        {"committee": "executive", "when": "2099-02-03T09:00"},
        {"admin", "coordinator"},
    ),
    ("/admin/rota/swaps/1/decide", {"decision": "reject"}, {"admin", "coordinator"}),
    ("/admin/rota/swaps", {"meeting_a": "3", "meeting_b": "5"}, {"admin", "coordinator"}),
    ("/admin/notices", {"audience": "units", "text": "明天开会"}, {"admin", "coordinator"}),
    ("/admin/liaisons/import/villages/x", {"action": "import"}, {"admin"}),
    ("/admin/liaisons/import/volunteers/x", {"action": "import"}, {"admin", "staff"}),
]
UPLOADS: list[tuple[str, bytes, set[str]]] = [
    (
        "/admin/liaisons/import/villages",
        "镇街代码,镇街名称,村居代码,村居名称,类型,贫困村\nXJZ,兴泾镇,xjz-09,新村,村,否\n".encode(),
        {"admin"},
    ),
    (
        "/admin/liaisons/import/volunteers",
        "村居代码,姓名,性别,手机号,身份\nzbp-01,张三,男,13812345678,网格员\n".encode(),
        {"admin", "staff"},
    ),
]
NAV = {
    "admin": [
        "/admin/dashboard",
        "/admin/surveys",
        "/admin/rota",
        "/admin/liaisons",
        "/admin/notices",
        "/admin/outbox",
        "/admin/audit",
    ],
    "analyst": ["/admin/dashboard"],
    "coordinator": ["/admin/rota", "/admin/notices", "/admin/outbox"],
    "staff": ["/admin/dashboard", "/admin/surveys", "/admin/liaisons"],
}


async def _setup(sessions: Any, settings: Any) -> None:
    await add_townships(sessions, **{OWN: "镇北堡镇", OTHER: "兴泾镇"})
    for role in ROLES:
        await make_account(sessions, role, role=role, township=OWN if role == "staff" else None)
    # meetings 1-3 (standing) and 5 (executive) ahead, 4 (executive) held yesterday; swap 1
    await schedule(sessions, settings, "standing", local_day(9), local_day(16), local_day(23))
    await schedule(sessions, settings, "executive", local_day(-1), now=utcnow() - timedelta(days=3))
    await schedule(sessions, settings, "executive", local_day(30))
    async with transaction(sessions) as session:
        env = Env.of(session, settings, load_offsets(), utcnow(), "telegram:21")
        snapshot = await load(session)
        await request_swap(env, 1, 2, snapshot.slots[1].unit_id)
    await bind(sessions, "21", "unit", unit="sfj")
    async with transaction(sessions) as session:
        town = (await session.execute(select(Township).where(Township.code == OWN))).scalar_one()
        assert town.id is not None
        session.add(Village(code="zbp-01", township_id=town.id, name="镇北堡村", kind="village"))
        other = (await session.execute(select(Township).where(Township.code == OTHER))).scalar_one()
        assert other.id is not None
        for code in ("xjz-01", "xjz-02"):
            session.add(Village(code=code, township_id=other.id, name=code, kind="village"))
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


async def _rota_state(sessions: Any) -> tuple[Any, ...]:
    async with sessions() as session:
        meetings = (
            await session.execute(
                select(
                    RotaMeeting.id, RotaMeeting.starts_at, RotaMeeting.status, RotaMeeting.outcome
                ).order_by(RotaMeeting.id)
            )
        ).all()
        swaps = (await session.execute(select(RotaSwap.status).order_by(RotaSwap.id))).all()
        notices = (
            await session.execute(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.kind == "notice", OutboxMessage.recipient == "21")
            )
        ).scalar_one()
        uploads = (
            await session.execute(select(func.count()).select_from(ConsoleUpload))
        ).scalar_one()
    return tuple(meetings), tuple(swaps), notices, uploads


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
        outbox = (
            await session.execute(
                select(OutboxMessage.status).where(OutboxMessage.dedupe_key == "notice-1")
            )
        ).scalar_one()
    return status, invitations, outbox


async def _switch(client: TestClient[Any, Any], role: str) -> None:
    client.session.cookie_jar.clear()
    await logged_in(client, role)


@pytest.mark.parametrize("role", ROLES)
async def test_each_role_sees_and_does_only_what_it_may(
    client: TestClient[Any, Any], sessions: Any, settings: Any, role: str
) -> None:
    await opened(client, sessions)
    await _setup(sessions, settings)
    await _switch(client, role)

    home = await client.get("/admin/", allow_redirects=False)
    assert home.status == 302
    assert home.headers["Location"] == NAV[role][0]
    page = await (await client.get(NAV[role][0])).text()
    shown = [href for href in NAV["admin"] if f'<a href="{href}"' in page]
    assert shown == NAV[role], f"{role} sees {shown} in the navigation"
    if NAV[role][0] == "/admin/dashboard":  # the work of the rota and the registry, by role
        assert ('id="work-rota"' in page) == (role == "admin")
        assert ('id="work-liaisons"' in page) == (role in ("admin", "staff"))
        if role != "analyst":
            villages = {"admin": "3个村（社区）中3个未达标", "staff": "1个村（社区）中1个未达标"}
            assert villages[role] in page

    for path, roles in GETS:
        response = await client.get(path, allow_redirects=False)
        expected = 200 if role in roles else 403
        assert response.status == expected, f"{role} GET {path}: {response.status}"
        if expected == 403:
            body = await response.text()
            assert "text/html" in response.headers["Content-Type"]
            assert "无权" in body  # a console page saying so, not data
            assert "<table" not in body
    for path, roles in OPENED:
        response = await client.get(path, allow_redirects=False)
        if role in roles:
            assert response.status == 303, f"{role} GET {path}: {response.status}"
            assert response.headers["Location"] == "/admin/liaisons/import"
        else:
            assert response.status == 403, f"{role} GET {path}: {response.status}"

    before = await _state(sessions)
    rota_before = await _rota_state(sessions)
    for path, data, roles in POSTS:
        token = await page_csrf(client, NAV[role][0])
        response = await client.post(
            path, data={"csrf_token": token, **data}, allow_redirects=False
        )
        if role in roles:
            assert response.status in (200, 303), f"{role} POST {path}: {response.status}"
        else:
            assert response.status == 403, f"{role} POST {path}: {response.status}"
    for path, data, roles in UPLOADS:
        token = await page_csrf(client, NAV[role][0])
        form = aiohttp.FormData()
        form.add_field("file", data, filename="f.csv", content_type="text/csv")
        response = await client.post(f"{path}?csrf_token={token}", data=form, allow_redirects=False)
        expected = 303 if role in roles else 403
        assert response.status == expected, f"{role} POST {path}: {response.status}"
        if role in roles:
            assert response.headers["Location"].startswith(path + "/")
    meetings, swaps, notices, uploads = await _rota_state(sessions)
    manages = role in ("admin", "coordinator")
    assert (meetings != rota_before[0]) == manages
    assert len(meetings) == (6 if manages else 5)
    assert (swaps != rota_before[1]) == manages
    assert notices == (1 if manages else 0)
    assert uploads == {"admin": 2, "staff": 1}.get(role, 0)
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
    client: TestClient[Any, Any], sessions: Any, settings: Any
) -> None:
    await opened(client, sessions)
    await _setup(sessions, settings)
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
    client: TestClient[Any, Any], sessions: Any, settings: Any
) -> None:
    await opened(client, sessions)
    await _setup(sessions, settings)
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
    await _setup(sessions, settings)
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
    client: TestClient[Any, Any], sessions: Any, settings: Any, make_settings: Any
) -> None:
    await opened(client, sessions)
    await _setup(sessions, settings)
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
    # Every other action and upload of the console draws the same line.
    rota_before = await _rota_state(sessions)
    for path, data, _roles in POSTS:
        for token in (None, "", foreign):
            sent = data if token is None else {**data, "csrf_token": token}
            response = await client.post(path, data=sent, allow_redirects=False)
            assert response.status == 403, (path, token)
    for path, body, _roles in UPLOADS:
        for query in ("", "?csrf_token=", f"?csrf_token={foreign}"):
            form = aiohttp.FormData({"csrf_token": good})  # in the body does not count
            form.add_field("file", body, filename="f.csv", content_type="text/csv")
            response = await client.post(path + query, data=form, allow_redirects=False)
            assert response.status == 403, (path, query)
    assert await _rota_state(sessions) == rota_before
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
