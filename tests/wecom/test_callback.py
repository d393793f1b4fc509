"""The ``/wecom/callback`` route against forged, stale, replayed, misaddressed, malformed and
oversize requests — and the service healthy afterwards."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import xmltodict
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select
from sqlmodel import col
from wechatpy.crypto import _get_signature
from wechatpy.enterprise.crypto import WeChatCrypto

from bot.app import banner_lines, create_app
from bot.channels.wecom import CALLBACK_PATH, WECOM
from bot.dialogs import DIALOGS
from core.dialog import Step
from core.feature import Catalogs
from core.settings import Settings
from storage.db import create_engine, session_factory, transaction
from storage.models_dialogs import ProcessedEvent
from storage.models_outbox import OutboxMessage
from tests.fakes.wecom_api import WeComCallbacks
from tests.wecom.harness import WeCom


async def _outbox_count(wecom: WeCom) -> int:
    async with transaction(wecom.sessions) as session:
        return int((await session.execute(select(func.count(col(OutboxMessage.id))))).scalar_one())


async def _healthy(wecom: WeCom) -> None:
    """/healthz answers 200 and a correct message is still processed and answered."""
    health = await wecom.client.get("/healthz")
    assert health.status == 200
    body = await health.json()
    assert body["status"] == "ok" and body["channels"]["wecom"]["state"] == "up"
    user = f"check{time.monotonic_ns()}"
    sent = await wecom.chat(user, "help")
    assert len(sent) == 1 and "/survey" in sent[0]["text"]["content"]


def _assert_json_error(answer_body: str, code: str) -> None:
    assert "Traceback" not in answer_body
    assert f'"code": "{code}"' in answer_body


async def test_url_verification_answers_the_decrypted_echostr(wecom: WeCom) -> None:
    params = wecom.callbacks.echostr("5927217328427342183")
    async with wecom.client.get(CALLBACK_PATH, params=params) as response:
        assert response.status == 200
        assert await response.text() == "5927217328427342183"
    # a "+" of the base64 echostr left unencoded arrives as a space and still works
    while "+" not in params["echostr"]:
        params = wecom.callbacks.echostr("5927217328427342183")
    raw = "&".join(f"{k}={v}" for k, v in params.items())
    async with wecom.client.get(f"{CALLBACK_PATH}?{raw}") as response:
        assert response.status == 200
        assert await response.text() == "5927217328427342183"


async def test_url_verification_refuses_forgeries(wecom: WeCom, aes_key: str) -> None:
    good = wecom.callbacks.echostr("123")
    cases: list[tuple[dict[str, str], int]] = [
        ({**good, "msg_signature": "0" * 40}, 403),
        ({k: v for k, v in good.items() if k != "echostr"}, 400),
        (wecom.callbacks.echostr("123", timestamp=int(time.time()) - 3600), 403),
        ({**good, "timestamp": "yesterday"}, 403),  # the signature covers the timestamp
    ]
    other = WeComCallbacks(wecom.callbacks.token, aes_key, "wwanothercorp")
    cases.append((other.echostr("123"), 403))
    for params, status in cases:
        async with wecom.client.get(CALLBACK_PATH, params=params) as response:
            assert response.status == status, params
            _assert_json_error(
                await response.text(), {400: "bad_request", 403: "forbidden"}[status]
            )
    await _healthy(wecom)


async def test_forged_signature_is_403_and_nothing_happens(wecom: WeCom) -> None:
    params, body = wecom.callbacks.encrypt(wecom.callbacks.text("mallory", "help"))
    forged = {**params, "msg_signature": _get_signature("not-the-token", *params.values())}
    for bad in (forged, {**params, "msg_signature": ""}, {**params, "nonce": "1"}):
        answer = await wecom.post_raw(bad, body)
        assert answer.status in (400, 403), bad
        _assert_json_error(answer.body, "forbidden" if answer.status == 403 else "bad_request")
    # someone without the token re-signs a tampered ciphertext: still 403
    envelope = body.decode().replace("<Encrypt><![CDATA[", "<Encrypt><![CDATA[AAAA")
    assert (await wecom.post_raw(params, envelope.encode())).status == 403
    assert await wecom.channel.idle(10)
    assert await _outbox_count(wecom) == 0
    await _healthy(wecom)


async def test_stale_or_future_timestamp_is_refused_as_a_replay(wecom: WeCom) -> None:
    xml = wecom.callbacks.text("replayer", "help")
    for offset in (-301, -3600, 301, 86400):
        answer = await wecom.post(xml, timestamp=int(time.time()) + offset)
        assert answer.status == 403, offset
    answer = await wecom.post(xml, timestamp=int(time.time()) - 200)  # inside the window
    assert answer.status == 200
    assert await wecom.deliver() == []
    assert len(wecom.fake.messages_to("replayer")) == 1
    await _healthy(wecom)


async def test_redelivered_msgid_is_processed_once(wecom: WeCom) -> None:
    msg_id = wecom.callbacks.next_msg_id()
    xml = wecom.callbacks.text("twice", "survey", msg_id)
    first = await wecom.post(xml)
    second = await wecom.post(xml)  # WeCom retries: new nonce and signature, same MsgId
    assert (first.status, second.status) == (200, 200)
    assert first.params["nonce"] != second.params["nonce"]
    assert await wecom.deliver() == []
    assert len(wecom.fake.messages_to("twice")) == 2  # the intro and question 1, once
    async with transaction(wecom.sessions) as session:
        events = (await session.execute(select(col(ProcessedEvent.event_id)))).scalars().all()
    assert f"m{msg_id}" in events
    # a card press redelivered (events have no MsgId) is handled once as well
    card = wecom.fake.messages_to("twice")[-1]
    press = wecom.callbacks.card_press(
        "twice", card["template_card"]["button_list"][0]["key"], card["template_card"]["task_id"]
    )
    await wecom.post(press)
    await wecom.post(press)
    assert await wecom.deliver() == []
    assert len(wecom.fake.messages_to("twice")) == 4  # "✓ 非常满意" and question 2, once
    await _healthy(wecom)


async def test_message_for_another_corp_is_403(wecom: WeCom, aes_key: str) -> None:
    other = WeComCallbacks(wecom.callbacks.token, aes_key, "wwanothercorp")
    params, body = other.encrypt(other.text("outsider", "help"))
    answer = await wecom.post_raw(params, body)
    assert answer.status == 403
    _assert_json_error(answer.body, "forbidden")
    assert await _outbox_count(wecom) == 0
    await _healthy(wecom)


async def test_oversize_body_is_413(wecom: WeCom) -> None:
    params, body = wecom.callbacks.encrypt(wecom.callbacks.text("big", "help"))
    padded = body.replace(b"</xml>", b"<Pad>" + b"x" * 70_000 + b"</Pad></xml>")
    answer = await wecom.post_raw(params, padded)
    assert answer.status == 413
    _assert_json_error(answer.body, "too_large")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while reading
        for _ in range(20):
            yield b"<!-- " + b"y" * 8000 + b" -->"

    async with wecom.client.post(CALLBACK_PATH, params=params, data=chunks()) as response:
        assert response.status == 413
    assert await _outbox_count(wecom) == 0
    await _healthy(wecom)


async def test_malformed_requests_are_400_never_a_traceback(wecom: WeCom, aes_key: str) -> None:
    cb = wecom.callbacks
    params, body = cb.encrypt(cb.text("x", "help"))
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><xml><Encrypt>&b;</Encrypt></xml>'
    )
    external = (
        b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b"<xml><Encrypt>&e;</Encrypt></xml>"
    )
    bodies = [
        b"",
        b"not xml",
        b"<xml><Encrypt>",
        b"<html/>",
        b"<xml><Other>1</Other></xml>",
        bomb,
        external,
    ]
    for bad in bodies:
        answer = await wecom.post_raw(params, bad)
        assert answer.status == 400, bad
        _assert_json_error(answer.body, "bad_request")
    for missing in ("msg_signature", "timestamp", "nonce"):
        answer = await wecom.post_raw({k: v for k, v in params.items() if k != missing}, body)
        assert answer.status == 400

    # correctly signed, but the ciphertext or the message inside is broken
    crypto = WeChatCrypto(cb.token, aes_key, cb.corp_id)

    def signed(encrypt: str) -> tuple[dict[str, str], bytes]:
        stamp, nonce = str(int(time.time())), "77"
        sig = _get_signature(cb.token, stamp, nonce, encrypt)
        xml = f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode()
        return {"msg_signature": sig, "timestamp": stamp, "nonce": nonce}, xml

    for encrypt in ("bm90IGJsb2Nrcw==", "%%%"):
        answer = await wecom.post_raw(*signed(encrypt))
        assert answer.status == 400, encrypt
    for inner in ("not xml at all", "<xml><MsgType>text</MsgType></xml>", "<root/>"):
        sealed = xmltodict.parse(crypto.encrypt_message(inner, "1", "2"))["xml"]["Encrypt"]
        answer = await wecom.post_raw(*signed(sealed))
        assert answer.status == 400, inner
    stamp = "soon"
    sealed = xmltodict.parse(crypto.encrypt_message(cb.text("x", "help"), "1", "2"))["xml"]
    params_bad_ts = {
        "msg_signature": _get_signature(cb.token, stamp, "1", sealed["Encrypt"]),
        "timestamp": stamp,
        "nonce": "1",
    }
    answer = await wecom.post_raw(
        params_bad_ts, f"<xml><Encrypt>{sealed['Encrypt']}</Encrypt></xml>".encode()
    )
    assert answer.status == 400
    assert await wecom.channel.idle(10)
    assert await _outbox_count(wecom) == 0
    await _healthy(wecom)


async def test_a_failing_step_is_answered_with_an_apology(wecom: WeCom) -> None:
    async def boom(step: Step, args: str) -> None:
        raise RuntimeError("a bug in a dialog")

    wecom.client.app[DIALOGS].add_command("boom", boom)
    sent = await wecom.chat("unlucky", "boom")
    assert sent[0]["text"]["content"].startswith("抱歉")
    await _healthy(wecom)


async def test_shutdown_waits_for_running_steps(
    wecom_settings: Settings, callbacks: WeComCallbacks
) -> None:
    client = TestClient(TestServer(create_app(wecom_settings), host="127.0.0.1"))
    await client.start_server()
    users = [f"late{i}" for i in range(8)]
    for user in users:
        params, body = callbacks.encrypt(callbacks.text(user, "help"))
        async with client.post(CALLBACK_PATH, params=params, data=body) as response:
            assert response.status == 200
    channel = client.app[WECOM]
    await client.close()  # at once: steps may still be running
    assert not channel._tasks
    engine = create_engine(wecom_settings.database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            queued = (
                await session.execute(
                    select(col(OutboxMessage.recipient)).where(
                        col(OutboxMessage.channel) == "wecom"
                    )
                )
            ).scalars()
            assert sorted(queued) == sorted(users)
    finally:
        await engine.dispose()


async def test_wecom_unreachable_never_stops_the_service(
    make_settings: Callable[..., Settings], aes_key: str
) -> None:
    settings = make_settings(
        wecom_corp_id="wwcorp",
        wecom_agent_id="1000002",
        wecom_secret="s",
        wecom_token="tok",
        wecom_aes_key=aes_key,
        wecom_api_base="http://127.0.0.1:1",
        outbox_worker=False,  # the test hands the queued reply to the sender itself
    )
    callbacks = WeComCallbacks("tok", aes_key, "wwcorp")
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:
        deadline = time.monotonic() + 20
        while True:
            health = await (await client.get("/healthz")).json()
            if health["channels"]["wecom"]["state"] == "unreachable" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert health["status"] == "ok" and health["db"] == "ok"
        assert health["channels"]["wecom"]["state"] == "unreachable"
        params, body = callbacks.encrypt(callbacks.text("someone", "help"))
        async with client.post(CALLBACK_PATH, params=params, data=body) as response:
            assert response.status == 200
        channel = client.app[WECOM]
        assert await channel.idle(10)
        sessions = client.app[DIALOGS].sessions
        async with transaction(sessions) as session:
            row = (await session.execute(select(OutboxMessage))).scalar_one()
        harness = WeCom(client, None, callbacks, sessions)  # type: ignore[arg-type]
        errors = await harness.deliver()
        assert len(errors) == 1 and "unreachable" in str(errors[0])
        assert [(r.id, r.attempts) for r in await harness.pending()] == [(row.id, 1)]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, None),
        (
            {"wecom_corp_id": "ww1", "wecom_secret": "s"},
            "PUFA_WECOM_AGENT_ID, PUFA_WECOM_TOKEN, PUFA_WECOM_AES_KEY not set",
        ),
        (
            {
                "wecom_corp_id": "ww1",
                "wecom_agent_id": "x1",
                "wecom_secret": "s",
                "wecom_token": "t",
                "wecom_aes_key": "short",
            },
            "PUFA_WECOM_AGENT_ID must be a number",
        ),
    ],
)
async def test_wecom_is_off_unless_fully_configured(
    make_settings: Callable[..., Settings], overrides: dict[str, Any], expected: str | None
) -> None:
    settings = make_settings(**overrides)
    lines = [line for line in banner_lines(settings, Catalogs()) if "wecom" in line]
    if expected is None:
        assert lines == []
    else:
        assert len(lines) == 1 and "off" in lines[0] and expected in lines[0]
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:
        response = await client.post(CALLBACK_PATH, data=b"<xml/>")
        assert response.status == 404
        assert await (await client.get("/healthz")).json() == {"status": "ok", "db": "ok"}
