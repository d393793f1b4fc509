"""Fixtures of the WeCom tests: the fake WeCom API and pufa with WeCom on, over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from core.settings import Settings
from storage.db import create_engine, session_factory
from tests.fakes.wecom_api import FakeWeComApi, WeComCallbacks, random_aes_key
from tests.helpers import seed_db
from tests.wecom.harness import WeCom

CALLBACK_TOKEN = "pufaCallbackToken2026"


@pytest.fixture
async def fake_wecom() -> AsyncIterator[FakeWeComApi]:
    """The fake WeCom server API on a free loopback port."""
    async with FakeWeComApi() as fake:
        yield fake


@pytest.fixture
def aes_key() -> str:
    """The app's EncodingAESKey for this test."""
    return random_aes_key()


@pytest.fixture
def wecom_settings(
    make_settings: Callable[..., Settings], fake_wecom: FakeWeComApi, aes_key: str
) -> Settings:
    """Settings with every PUFA_WECOM_* value, pointing at the fake API."""
    return make_settings(
        wecom_corp_id=fake_wecom.corp_id,
        wecom_agent_id=str(fake_wecom.agent_id),
        wecom_secret=fake_wecom.secret,
        wecom_token=CALLBACK_TOKEN,
        wecom_aes_key=aes_key,
        wecom_api_base=fake_wecom.api_base,
        # these tests hand queued rows to the senders themselves (tests/wecom/harness.py);
        # test_worker.py runs the real outbox worker
        outbox_worker=False,
    )


@pytest.fixture
def callbacks(fake_wecom: FakeWeComApi, aes_key: str) -> WeComCallbacks:
    """WeCom's side of the callback (wechatpy)."""
    return WeComCallbacks(CALLBACK_TOKEN, aes_key, fake_wecom.corp_id, fake_wecom.agent_id)


@pytest.fixture
async def wecom(
    wecom_settings: Settings, fake_wecom: FakeWeComApi, callbacks: WeComCallbacks
) -> AsyncIterator[WeCom]:
    """pufa with WeCom on, its demo data loaded, behind a real HTTP server."""
    client = TestClient(TestServer(create_app(wecom_settings), host="127.0.0.1"))
    await client.start_server()
    engine = create_engine(wecom_settings.database_url)
    sessions = session_factory(engine)
    await seed_db(sessions, demo=True, settings=wecom_settings)
    try:
        yield WeCom(client, fake_wecom, callbacks, sessions)
    finally:
        await client.close()
        await engine.dispose()
