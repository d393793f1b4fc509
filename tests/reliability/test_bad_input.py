"""Hostile bytes at every HTTP entry point of the whole app, over real HTTP.

Invalid UTF-8, deeply nested JSON, huge numbers, NUL bytes and oversize bodies must get a
clear 4xx (the JSON error format, localized, on the API), never a 5xx, and must not disturb
what is already saved; HTML and SQL typed as free text are stored verbatim and shown escaped.
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.db import transaction
from storage.models_surveys import SurveyAnswer, SurveyResponse, SurveyState
from tests.console.conftest import csrf_of, logged_in, make_account
from tests.reliability.counts import COUNTS
from tests.surveys.conftest import fazhi_answers

API = "/api/v1/surveys/fazhi-2026/responses"
CJK = re.compile(r"[\u4e00-\u9fff]")

DEEP = 30_000  # levels of nesting that still fit in 64 KiB
HOSTILE_BODIES: dict[str, bytes] = {
    "invalid UTF-8": b"\xff\xfe\xfd not utf-8 \xc3\x28",
    "invalid UTF-8 inside a JSON string": b'{"answers": {"comment": "\xc3\x28\xa0\xa1"}}',
    "overlong UTF-8 encoding of '/'": b'{"answers": {"comment": "\xc0\xaf"}}',
    "lone surrogate escape": b'{"answers": {"comment": "\\ud800"}}',
    "deeply nested arrays": b"[" * DEEP + b"]" * DEEP,
    "deeply nested objects": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    "deeply nested answers": b'{"answers": {"comment": ' + b"[" * DEEP + b"]" * DEEP + b"}}",
    "huge integer": b'{"answers": {"comment": 1' + b"0" * 20_000 + b"}}",
    "huge float": b'{"answers": {"business_env": 1e999999}}',
    "NaN and Infinity": b'{"answers": {"business_env": NaN, "comment": -Infinity}}',
    "NUL bytes": b"\x00" * 1000,
    "NUL in a JSON key": b'{"answers\\u0000": {}}',
    "NUL in a question code": b'{"answers": {"comment\\u0000": "x"}}',
    "NUL in the token": b'{"answers": {}, "token": "abc\\u0000def"}',
    "NUL in src": b'{"answers": {}, "src": "\\u0000"}',
    "NUL in lang": b'{"answers": {}, "lang": "\\u0000zh"}',
    "not an object": b'"answers"',
    "empty": b"",
    "truncated": b'{"answers": {"comment": "abc',
    "huge key count": b"{" + b",".join(b'"k%d":1' % i for i in range(6000)) + b"}",
}
OVERSIZE = b'{"answers": {"comment": "' + b"x" * (70 * 1024) + b'"}}'


async def _open(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with transaction(sessions) as session:
        await session.execute(update(SurveyState).values(status="open"))


async def _stored(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
    async with sessions() as session:
        responses = (await session.execute(select(func.count(SurveyResponse.id)))).scalar_one()
        answers = (await session.execute(select(func.count(SurveyAnswer.id)))).scalar_one()
    return int(responses), int(answers)


async def _saved_one(client: TestClient[Any, Any], comment: str) -> int:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as phone:
        response = await phone.post(
            str(client.make_url(API)), json={"answers": fazhi_answers(comment=comment)}
        )
        assert response.status == 201, await response.text()
        return int((await response.json())["response_id"])


def _count(status: int) -> None:
    COUNTS["bad input: requests"] += 1
    COUNTS[f"bad input: {status // 100}xx responses"] += 1


async def _json_error(response: aiohttp.ClientResponse, name: str, lang: str) -> dict[str, Any]:
    """Check ``response`` is a localized 4xx in the JSON error format; its ``error``."""
    _count(response.status)
    assert 400 <= response.status < 500, (name, response.status, await response.text())
    assert response.content_type == "application/json", (name, await response.text())
    error: dict[str, Any] = (await response.json())["error"]
    assert error["code"] and error["message"], (name, error)
    assert isinstance(error["fields"], dict)
    if lang == "zh_CN":
        assert CJK.search(error["message"]), (name, error)
    else:
        assert not CJK.search(error["message"]), (name, error)
    return error


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
async def test_api_refuses_hostile_bodies_with_a_localized_json_error(
    client: TestClient[Any, Any], sessions: async_sessionmaker[AsyncSession], lang: str
) -> None:
    await _open(sessions)
    await _saved_one(client, "已经保存的留言")
    before = await _stored(sessions)
    headers = {"Content-Type": "application/json", "Accept-Language": lang}
    for name, body in [*HOSTILE_BODIES.items(), ("oversize", OVERSIZE)]:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as phone:
            response = await phone.post(str(client.make_url(API)), data=body, headers=headers)
            error = await _json_error(response, name, lang)
        if name == "oversize":
            assert response.status == 413
        COUNTS["bad input: faults injected"] += 1
        assert error["code"] != "internal", name
    assert await _stored(sessions) == before, "nothing stored, nothing lost"


async def test_api_refuses_nul_bytes_in_answers_and_keeps_what_is_saved(
    client: TestClient[Any, Any], sessions: async_sessionmaker[AsyncSession]
) -> None:
    await _open(sessions)
    await _saved_one(client, "已经保存的留言")
    before = await _stored(sessions)
    for overrides in (
        {"comment": "前\x00后"},
        {"comment": "\x00"},
        {"business_env": "satisfied\x00"},
        {"channels": ["mobile\x00"]},
    ):
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as phone:
            response = await phone.post(
                str(client.make_url(API)), json={"answers": fazhi_answers(**overrides)}
            )
            error = await _json_error(response, str(overrides), "zh_CN")
        COUNTS["bad input: faults injected"] += 1
        assert response.status == 422, error
        assert set(error["fields"]) == set(overrides), error
    assert await _stored(sessions) == before


SQL = "'); DROP TABLE survey_response; --"
HTML = '<script>alert("x")</script><img src=x onerror=alert(1)>&amp;'


async def test_html_and_sql_in_free_text_are_stored_verbatim_and_shown_escaped(
    client: TestClient[Any, Any], sessions: async_sessionmaker[AsyncSession]
) -> None:
    await _open(sessions)
    comment = f"{SQL} {HTML} 𠀀😀"
    response_id = await _saved_one(client, comment)
    async with sessions() as session:
        stored = (
            await session.execute(
                select(SurveyAnswer.text).where(
                    SurveyAnswer.response_id == response_id, SurveyAnswer.question == "comment"
                )
            )
        ).scalar_one()
    assert stored == comment
    await make_account(sessions, "ops")
    await logged_in(client, "ops")
    page = await (await client.get("/admin/dashboard")).text()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "&#39;); DROP TABLE survey_response; --" in page
    assert "&amp;amp;" in page
    COUNTS["bad input: faults injected"] += 2


async def test_mobile_pages_refuse_hostile_forms_and_queries(
    client: TestClient[Any, Any], sessions: async_sessionmaker[AsyncSession]
) -> None:
    await _open(sessions)
    await _saved_one(client, "已经保存的留言")
    before = await _stored(sessions)
    page = await client.get("/s/fazhi-2026")
    assert page.status == 200
    form = "application/x-www-form-urlencoded"
    bodies = {
        "invalid UTF-8 form": (b"business_env=\xff\xfe&comment=\xc3\x28", form),
        "NUL in form": (b"business_env=satisfied%00&comment=%00", form),
        "NUL in a field name": (b"comment%00=x", form),
        "oversize form": (b"comment=" + b"x" * (70 * 1024), form),
        "huge field count": (b"&".join(b"f%d=1" % i for i in range(8000)), form),
        "garbage multipart": (b"--x\r\n\x00\xff", "multipart/form-data; boundary=x"),
        "JSON instead of a form": (b"[" * DEEP, "application/json"),
    }
    for name, (body, content_type) in bodies.items():
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as phone:
            response = await phone.post(
                str(client.make_url("/s/fazhi-2026")),
                data=body,
                headers={"Content-Type": content_type},
            )
            text = await response.text()
        _count(response.status)
        COUNTS["bad input: faults injected"] += 1
        assert response.status < 500, (name, response.status, text[:500])
        assert "Traceback" not in text
    for query in (
        "?lang=%00",
        "?lang=%ff%fe",
        "?t=%00%00",
        "?t=" + "a" * 5000,
        "?src=%3Cscript%3E",
        "?src=%ff",
        "?lang=" + "zh" * 3000,
    ):
        response = await client.get("/s/fazhi-2026" + query)
        text = await response.text()
        _count(response.status)
        COUNTS["bad input: faults injected"] += 1
        assert response.status < 500, (query, response.status)
        assert "<script>" not in text
    for cookie in ("፩.x", "²²²." + "0" * 32, "9" * 5000 + ".x"):  # the "just saved" marker
        response = await client.get("/s/fazhi-2026/thanks", cookies={"pufa_saved": cookie})
        _count(response.status)
        COUNTS["bad input: faults injected"] += 1
        assert response.status == 200, (cookie[:20], response.status)
    for path in ("/s/%00", "/s/%ff%fe", "/s/" + "x" * 3000, "/api/v1/surveys/%00"):
        response = await client.get(path)
        _count(response.status)
        COUNTS["bad input: faults injected"] += 1
        assert 400 <= response.status < 500, (path, response.status)
    assert await _stored(sessions) == before


async def test_console_login_refuses_hostile_forms(
    client: TestClient[Any, Any], sessions: async_sessionmaker[AsyncSession]
) -> None:
    await make_account(sessions, "ops")
    token = csrf_of(await (await client.get("/admin/login")).text())
    form = "application/x-www-form-urlencoded"
    bodies = [
        b"csrf_token=" + token.encode() + b"&name=\xff\xfe&password=\xc3\x28",
        b"csrf_token=" + token.encode() + b"&name=ops%00&password=%00",
        b"csrf_token=" + token.encode() + b"&name=" + b"x" * (70 * 1024),
        b"csrf_token=%00&name=ops&password=x",
        b"\x00" * 500,
        b"csrf_token=" + token.encode() + b"&name=%27%20OR%201%3D1%20--&password=x",
        b"csrf_token=" + token.encode() + b"&name=ops&password=" + b"p" * 60_000,
    ]
    garbage = (b"--x\r\n\x00\xff", "multipart/form-data; boundary=x")
    for body, content_type in [*((b, form) for b in bodies), garbage]:
        response = await client.post(
            "/admin/login",
            data=body,
            headers={"Content-Type": content_type},
            allow_redirects=False,
        )
        text = await response.text()
        _count(response.status)
        COUNTS["bad input: faults injected"] += 1
        assert response.status != 303, "no way in without the password"
        assert response.status < 500, (body[:60], response.status, text[:300])
    # the account still works
    await logged_in(client, "ops")
