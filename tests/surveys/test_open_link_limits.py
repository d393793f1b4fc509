"""Open-link answers from many phones on one network: limited per respondent first, with only a
loose ceiling per address; X-Forwarded-For believed only from trusted proxies; a limit that
hits keeps the answers on the page."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from core.http import client_address
from core.settings import Settings
from tests.surveys.conftest import fazhi_answers
from tests.surveys.test_api import URL, count_responses, opened
from tests.surveys.test_h5 import _Form, form_fields


async def _phone(client: TestClient[Any, Any], answers: dict[str, Any], **headers: str) -> Any:
    """One phone (its own cookie jar): open the form, then send it. Returns the POST response
    and the phone's session (to answer again)."""
    jar = aiohttp.CookieJar(unsafe=True)
    phone = aiohttp.ClientSession(cookie_jar=jar)
    base = str(client.make_url("/")).rstrip("/")
    async with phone.get(f"{base}/s/fazhi-2026", headers=headers) as page:
        assert page.status == 200
        form = _Form()
        form.feed(await page.text())
    posted = await phone.post(
        f"{base}/s/fazhi-2026",
        data=form_fields(answers, form.hidden),
        headers=headers,
        allow_redirects=False,
    )
    return posted, phone


async def test_sixty_phones_on_one_network_are_all_accepted(client: Any, sessions: Any) -> None:
    await opened(client, sessions)
    phones = []
    try:
        for i in range(60):
            posted, phone = await _phone(client, fazhi_answers(comment=f"第{i}位"))
            phones.append(phone)
            assert posted.status == 303, (i, await posted.text())
        assert await count_responses(sessions) == 60
        # the same phone answering again is told it already answered (not rate-limited)
        base = str(client.make_url("/")).rstrip("/")
        again = await phones[0].get(f"{base}/s/fazhi-2026")
        assert "您已经填写过" in await again.text()
        form = _Form()
        form.feed(await (await phones[1].get(f"{base}/s/fazhi-2026?lang=en")).text())
        resent = await phones[1].post(
            f"{base}/s/fazhi-2026",
            data=form_fields(fazhi_answers("dissatisfied"), {"lang": "en"}),
            allow_redirects=False,
        )
        assert resent.status == 409
        assert "You have already answered" in await resent.text()
    finally:
        for phone in phones:
            await phone.close()
    assert await count_responses(sessions) == 60


@pytest.fixture
async def strict_client(
    make_settings: Callable[..., Settings],
) -> AsyncIterator[TestClient[Any, Any]]:
    """The app with a tight per-address ceiling (3 a minute) and 127.0.0.1 as trusted proxy."""
    from bot.app import create_app

    settings = make_settings(
        open_link_per_address_per_minute=3, trusted_proxies="127.0.0.1, 10.0.0.0/8"
    )
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as test_client:
        yield test_client


async def test_a_limit_that_hits_keeps_the_answers_on_the_page(
    strict_client: Any, sessions: Any
) -> None:
    client = strict_client
    await opened(client, sessions)
    phones = []
    try:
        for _ in range(3):
            posted, phone = await _phone(client, fazhi_answers())
            phones.append(phone)
            assert posted.status == 303
        answers = fazhi_answers("very_satisfied", comment="路灯修得很快")
        limited, phone = await _phone(client, answers)
        phones.append(phone)
        assert limited.status == 429
        assert limited.headers["Retry-After"].isdigit()
        html = await limited.text()
        assert "请过一分钟再次点击" in html or "再次" in html
        assert "路灯修得很快" in html
        assert re.findall(r'name="business_env" value="(\w+)" checked', html) == ["very_satisfied"]
        assert re.findall(r'name="channels" value="(\w+)" checked', html) == ["mobile", "website"]
        form = _Form()
        form.feed(html)
        assert form.hidden["idem"], "the same idempotency key, so a resend stores one response"
    finally:
        for phone in phones:
            await phone.close()
    assert await count_responses(sessions) == 3


async def test_forwarded_for_only_from_trusted_proxies(strict_client: Any, sessions: Any) -> None:
    client = strict_client
    await opened(client, sessions)
    statuses = []
    for i in range(6):  # behind the trusted proxy: six different residents' addresses
        client.session.cookie_jar.clear()
        res = await client.post(
            URL,
            json={"answers": fazhi_answers()},
            headers={"X-Forwarded-For": f"203.0.113.{i}, 10.1.2.3"},
        )
        statuses.append(res.status)
    assert statuses == [201] * 6
    # one forwarded address is still one address
    for _ in range(3):
        client.session.cookie_jar.clear()
        res = await client.post(
            URL, json={"answers": fazhi_answers()}, headers={"X-Forwarded-For": "198.51.100.9"}
        )
        statuses.append(res.status)
    client.session.cookie_jar.clear()
    over = await client.post(
        URL, json={"answers": fazhi_answers()}, headers={"X-Forwarded-For": "198.51.100.9"}
    )
    assert statuses[6:] == [201] * 3 and over.status == 429
    assert (await over.json())["error"]["code"] == "rate_limited"


async def test_forwarded_for_from_anyone_else_is_ignored(client: Any, sessions: Any) -> None:
    """Without PUFA_TRUSTED_PROXIES a client cannot pick its address with the header."""
    request = make_mocked_request(
        "POST", "/", headers={"X-Forwarded-For": "203.0.113.5"}, transport=_Peer("192.0.2.1")
    )
    assert client_address(request) == "192.0.2.1"
    from ipaddress import ip_network

    proxies = [ip_network("192.0.2.1"), ip_network("10.0.0.0/8")]
    assert client_address(request, proxies) == "203.0.113.5"
    chained = make_mocked_request(
        "POST",
        "/",
        headers={"X-Forwarded-For": "203.0.113.5, 198.51.100.7, 10.9.9.9"},
        transport=_Peer("192.0.2.1"),
    )
    # the right-most address that is not a trusted proxy; the spoofable left part is ignored
    assert client_address(chained, proxies) == "198.51.100.7"
    untrusted = make_mocked_request(
        "POST", "/", headers={"X-Forwarded-For": "203.0.113.5"}, transport=_Peer("198.51.100.1")
    )
    assert client_address(untrusted, proxies) == "198.51.100.1"


def test_trusted_proxies_setting_is_checked(make_settings: Callable[..., Settings]) -> None:
    from pydantic import ValidationError

    settings = make_settings(trusted_proxies="127.0.0.1 10.0.0.0/8,::1")
    assert [str(n) for n in settings.trusted_proxies] == ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    with pytest.raises(ValidationError, match="not an address or network"):
        make_settings(trusted_proxies="proxy.example.cn")


async def test_one_respondent_hammering_is_limited_first(
    make_settings: Callable[..., Settings], sessions: Any
) -> None:
    """A browser over its own limit is refused without using up its network's allowance."""
    from bot.app import create_app

    settings = make_settings(
        open_link_per_respondent_per_minute=2, open_link_per_address_per_minute=5
    )
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:
        await opened(client, sessions)
        assert (await client.get("/s/fazhi-2026")).status == 200  # the browser's cookie
        bad = fazhi_answers(business_env="great")  # invalid: 422, so it can be sent again
        same_browser = [(await client.post(URL, json={"answers": bad})).status for _ in range(4)]
        assert same_browser == [422, 422, 429, 429]
        others = []
        for _ in range(3):
            client.session.cookie_jar.clear()
            others.append((await client.post(URL, json={"answers": fazhi_answers()})).status)
        assert others == [201, 201, 201]


class _Peer:
    """A transport whose peer is ``address`` (for :func:`make_mocked_request`)."""

    def __init__(self, address: str) -> None:
        self.address = address

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return (self.address, 40000) if name == "peername" else default
