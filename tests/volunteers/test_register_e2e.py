"""/register end to end: the real python-telegram-bot stack inside pufa's aiohttp app, over
real HTTP, against the fake Bot API — from the bind code to a stored (sealed) liaison."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlmodel import col

from bot.binding.invites import create_invite
from bot.volunteers.store import Keys, list_liaisons
from storage.db import transaction
from storage.models import AuditLog
from storage.models_volunteers import Volunteer
from storage.types import utcnow
from tests.helpers import TEST_SECRET
from tests.volunteers.conftest import TelegramBot

USER = 5150


async def _count(bot: TelegramBot) -> int:
    async with transaction(bot.sessions) as session:
        return int(
            (await session.execute(select(func.count()).select_from(Volunteer))).scalar_one()
        )


async def test_staff_registers_a_liaison_over_telegram(telegram: TelegramBot) -> None:
    bot = telegram
    async with transaction(bot.sessions) as session:
        invite = await create_invite(
            session, TEST_SECRET.encode(), "staff", now=utcnow(), township="zbp"
        )
    await bot.text(USER, f"/bind {invite.code}")
    assert "/register" in bot.fake.last_sent(USER)["text"]
    before = await _count(bot)

    await bot.text(USER, "/register")
    villages = bot.last_with_keyboard(USER)
    labels = [b["text"] for row in villages["reply_markup"]["inline_keyboard"] for b in row]
    # the township's villages with count/target, short ones marked; no other township's
    assert "昊苑村 1/3 ⚠" in labels and "镇北堡村 2/2 ✓" in labels
    assert not any("兴泾" in label or "社区" in label for label in labels)

    await bot.press(USER, villages, "昊苑村")
    menu = bot.last_with_keyboard(USER)
    assert "昊苑村" in menu["text"] and "贫困村" in menu["text"] and "还差 2 名" in menu["text"]
    await bot.press(USER, menu, "登记新的法律明白人")
    assert "姓名" in bot.fake.last_sent(USER)["text"]
    await bot.text(USER, "马秀兰")
    await bot.press(USER, bot.last_with_keyboard(USER), "女")
    assert "手机号码" in bot.fake.last_sent(USER)["text"]

    # a bad number: a clear message, and the question stays open
    mark = len(bot.fake.sent_messages(USER))
    await bot.text(USER, "0951-5012345")
    answer = bot.texts_since(USER, mark)
    assert len(answer) == 1
    assert "固定电话" in answer[0] and "请重新输入手机号码" in answer[0]
    mark = len(bot.fake.sent_messages(USER))
    await bot.text(USER, "1391234567")
    assert "11位" in bot.texts_since(USER, mark)[0] and "10 位" in bot.texts_since(USER, mark)[0]

    await bot.text(USER, "139 5100 2233")
    background = bot.last_with_keyboard(USER)
    assert "身份" in background["text"]
    mark = len(bot.fake.sent_messages(USER))
    await bot.press(USER, background, "人民调解员")

    # before anything is stored: the notice, then the summary with Save
    notice, summary = bot.texts_since(USER, mark)[-2:]
    assert notice.startswith("个人信息告知") and "加密" in notice and "区司法局" in notice
    assert "马秀兰" in summary and "13951002233" in summary and "人民调解员" in summary
    assert await _count(bot) == before

    await bot.press(USER, bot.last_with_keyboard(USER), "确认保存")
    assert await _count(bot) == before + 1
    saved = bot.last_with_keyboard(USER)
    assert "已登记法律明白人 2 名" in saved["text"] and "还差 1 名" in saved["text"]

    # the list masks the number
    await bot.press(USER, saved, "查看名单")
    listing = bot.last_with_keyboard(USER)["text"]
    assert "马秀兰" in listing and "139****2233" in listing and "13951002233" not in listing

    async with transaction(bot.sessions) as session:
        stored = (
            (await session.execute(select(Volunteer).order_by(col(Volunteer.id).desc())))
            .scalars()
            .first()
        )
        assert stored is not None
        assert "马秀兰" not in stored.name_sealed and "13951002233" not in stored.mobile_sealed
        opened = await list_liaisons(session, Keys(TEST_SECRET.encode()), ids=[stored.id or 0])
        audit = (
            (
                await session.execute(
                    select(AuditLog).where(col(AuditLog.action) == "volunteer.create")
                )
            )
            .scalars()
            .all()
        )
    assert opened[0].data.name == "马秀兰" and opened[0].data.mobile == "13951002233"
    assert (opened[0].data.gender, opened[0].data.background) == ("f", "mediator")
    mine = [a for a in audit if a.actor.startswith("identity:")]
    assert mine and mine[-1].detail["after"]["mobile"] == "139****2233"
    assert mine[-1].detail["after"]["name"] == "马*兰"


async def test_residents_get_a_polite_refusal(telegram: TelegramBot) -> None:
    await telegram.text(5151, "/register")
    text = telegram.fake.last_sent(5151)["text"]
    assert "仅限镇街工作人员" in text and "/bind" in text
    await telegram.text(5152, "/register", lang="en")
    assert "township staff" in telegram.fake.last_sent(5152)["text"]
