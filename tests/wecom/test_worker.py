"""WeCom with the real outbox worker: what a member sends is answered through the outbox, and
/register and /duty work in WeCom unchanged."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from bot.app import create_app
from bot.binding.invites import create_invite
from bot.outbox.queue import is_private
from core.settings import Settings
from storage.db import create_engine, session_factory, transaction
from storage.models_outbox import OutboxMessage
from storage.types import utcnow
from tests.conftest import POSTGRES_URL
from tests.fakes.wecom_api import FakeWeComApi, WeComCallbacks
from tests.helpers import TEST_SECRET, seed_db
from tests.volunteers.test_at_rest import _forms, _scan_postgres, _scan_sqlite
from tests.wecom.harness import WeCom


@pytest.fixture
async def live(
    wecom_settings: Settings, fake_wecom: FakeWeComApi, callbacks: WeComCallbacks
) -> AsyncIterator[WeCom]:
    """pufa with WeCom on and its outbox worker sending, behind a real HTTP server."""
    settings = wecom_settings.model_copy(update={"outbox_worker": True, "outbox_poll": 0.1})
    client = TestClient(TestServer(create_app(settings), host="127.0.0.1"))
    await client.start_server()
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    await seed_db(sessions, demo=True, settings=settings)
    try:
        yield WeCom(client, fake_wecom, callbacks, sessions)
    finally:
        await client.close()
        await engine.dispose()


async def _said(wecom: WeCom, user: str, text: str, *, expect: int = 1) -> list[str]:
    """``user`` sends ``text``; the texts the worker delivers to them (waits for ``expect``)."""
    before = len(wecom.fake.messages_to(user))
    answer = await wecom.say(user, text)
    assert answer.status == 200, answer.body
    deadline = time.monotonic() + 15
    while len(wecom.fake.messages_to(user)) < before + expect:
        assert time.monotonic() < deadline, wecom.fake.messages_to(user)[before:]
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # anything sent after the expected messages arrives too
    return [_content(m) for m in wecom.fake.messages_to(user)[before:]]


def _content(message: dict[str, Any]) -> str:
    if message["msgtype"] == "text":
        return str(message["text"]["content"])
    card = message["template_card"]
    parts = [card.get("main_title", {}).get("title", ""), card.get("sub_title_text", "")]
    parts += [b["text"] for b in card.get("button_list", [])]
    return "\n".join(p for p in parts if p)


async def _code(wecom: WeCom, role: str, **scope: str) -> str:
    async with transaction(wecom.sessions) as session:
        created = await create_invite(
            session,
            TEST_SECRET.encode(),
            role,
            now=utcnow(),
            **scope,  # type: ignore[arg-type]
        )
    return created.code


async def test_register_and_duty_work_in_wecom_through_the_worker(live: WeCom) -> None:
    staff, unit = "LiSi", "WangWu"
    staff_code = await _code(live, "staff", township="zbp")
    (bound,) = await _said(live, staff, f"bind {staff_code}")
    assert "绑定成功" in bound and "register" in bound

    villages = "\n".join(await _said(live, staff, "register"))
    # the township's villages with their counts and targets, and no other township's
    assert "镇北堡村" in villages and "昊苑村" in villages
    assert "兴泾村" not in villages

    unit_code = await _code(live, "unit", unit="司法局")
    (bound,) = await _said(live, unit, f"bind {unit_code}")
    assert "司法局" in bound and "duty" in bound
    duty = "\n".join(await _said(live, unit, "duty"))
    assert "司法局" in duty

    stranger = await _said(live, "ZhaoLiu", "register")
    assert any("仅限镇街工作人员" in text for text in stranger)

    # every reply went through the outbox and the worker sent each exactly once
    async with transaction(live.sessions) as session:
        rows = (
            await session.execute(select(col(OutboxMessage.status), col(OutboxMessage.attempts)))
        ).all()
    delivered = sum(len(live.fake.messages_to(u)) for u in (staff, unit, "ZhaoLiu"))
    assert rows and {status for status, _ in rows} == {"sent"}
    assert all(attempts == 1 for _, attempts in rows)
    assert delivered >= len(rows)


async def test_a_liaison_registered_in_wecom_leaves_no_plain_text_behind(
    live: WeCom, engine: AsyncEngine, db_url: str
) -> None:
    """Replies repeat what staff typed (the summary before saving): in WeCom they go through
    the outbox, so they are stored sealed there — no name or number in the database bytes."""
    staff = "QianQi"
    staff_code = await _code(live, "staff", township="zbp")
    await _said(live, staff, f"bind {staff_code}")
    await _said(live, staff, "register 华西村")
    await _said(live, staff, "登记新的法律明白人")
    await _said(live, staff, "欧阳娜娜")
    await _said(live, staff, "女")
    await _said(live, staff, "13971234567")
    summary = "\n".join(await _said(live, staff, "网格员"))
    assert "欧阳娜娜" in summary and "13971234567" in summary  # the person sees what they typed
    saved = "\n".join(await _said(live, staff, "确认保存"))
    assert "欧阳娜娜" in saved
    async with transaction(live.sessions) as session:
        rows = (await session.execute(select(OutboxMessage))).scalars().all()
    assert rows and all(is_private(row.body) for row in rows if row.kind == "reply")
    assert {row.status for row in rows} == {"sent"}
    data = await _scan_postgres(engine) if POSTGRES_URL else await _scan_sqlite(db_url)
    for value in ("欧阳娜娜", "13971234567"):
        for form in _forms(value):
            assert form not in data, (value, form)
