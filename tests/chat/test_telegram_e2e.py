"""End to end: the real python-telegram-bot stack inside pufa's aiohttp app, over real HTTP,
against the fake Bot API server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app import create_app
from bot.channels.telegram import TELEGRAM, WEBHOOK_PATH
from bot.dialogs.runtime import UNSTORABLE
from core.i18n import translator
from core.messages import Button, Reply
from core.settings import Settings
from storage.db import transaction
from storage.models import ChatIdentity
from storage.models_dialogs import Conversation
from storage.models_surveys import SurveyAnswer, SurveyResponse
from surveys.dialog import respondent_for
from tests.fakes.telegram_api import FakeBotApi
from tests.helpers import TEST_SECRET
from tests.telegram_webhook import WEBHOOK_SECRET, Webhook, serve_webhook, webhook_settings

SECRET = WEBHOOK_SECRET
Bot = Webhook


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


@pytest.fixture
def tg_settings(make_settings: Callable[..., Settings], fake: FakeBotApi) -> Settings:
    return webhook_settings(make_settings, fake)


@pytest.fixture
async def bot(tg_settings: Settings, fake: FakeBotApi) -> AsyncIterator[Bot]:
    async with serve_webhook(tg_settings, fake) as served:
        yield served


async def test_startup_sets_webhook_and_commands_in_both_languages(bot: Bot) -> None:
    assert bot.fake.webhook is not None
    assert bot.fake.webhook["url"].endswith(WEBHOOK_PATH)
    assert bot.fake.webhook["secret_token"] == SECRET
    zh = bot.fake.commands_for("zh")
    en = bot.fake.commands_for("en")
    assert zh and en and {c["command"] for c in zh} == {c["command"] for c in en}
    assert any("问卷" in c["description"] for c in zh)
    assert any("survey" in c["description"] for c in en)


async def test_full_survey_with_inline_buttons_is_stored(bot: Bot) -> None:
    user = 4242
    assert await bot.text(user, "/start s_fazhi-2026_zbp") == 200
    # one message opens the survey: title, intro and the first question with its buttons
    opening = bot.fake.sent_messages(user)
    assert len(opening) == 1 and "reply_markup" in opening[0]
    title, intro, first = opening[0]["text"].split("\n\n")
    assert title.startswith("2026年") and "调查" in intro and first.startswith("(1/10) ")
    for n in range(8):  # eight 好差评 questions
        question = bot.last_with_keyboard(user)
        assert question["text"].startswith(f"({n + 1}/" if n else f"{title}\n\n{intro}\n\n(1/")
        assert await bot.press(user, question, 1) == 200  # 满意
        edited = bot.fake.message(user, question["message_id"])
        assert edited is not None and "reply_markup" not in edited
        assert edited["text"].endswith("✓ 满意")
        # the opening message keeps its intro when the answer replaces it; later ones have none
        assert (intro in edited["text"]) == (n == 0)
    multiple = bot.last_with_keyboard(user)
    await bot.press(user, multiple, 0)
    ticked = bot.fake.message(user, multiple["message_id"])
    assert ticked is not None
    await bot.press(user, ticked, 3)
    ticked = bot.fake.message(user, multiple["message_id"])
    assert ticked is not None
    await bot.press(user, ticked, len(ticked["reply_markup"]["inline_keyboard"]) - 1)  # Done
    done = bot.fake.message(user, multiple["message_id"])
    assert done is not None and "reply_markup" not in done and "12345" in done["text"]
    assert await bot.text(user, "希望执法更文明") == 200
    assert "感谢" in bot.fake.last_sent(user)["text"]
    # every button press was answered (through the webhook answer)
    assert all(v is not None for v in bot.fake.callback_queries.values())
    async with transaction(bot.sessions) as session:
        mine = respondent_for(TEST_SECRET.encode(), "telegram", str(user))
        query = select(SurveyResponse).where(SurveyResponse.respondent == mine)
        response = (await session.execute(query)).scalar_one()
        answers = (
            (
                await session.execute(
                    select(SurveyAnswer).where(SurveyAnswer.response_id == response.id)
                )
            )
            .scalars()
            .all()
        )
    assert (response.survey, response.channel, response.township) == (
        "fazhi-2026",
        "telegram",
        "zbp",
    )
    assert str(user) not in response.respondent
    assert len(answers) >= 10


async def test_same_update_twice_is_answered_once(bot: Bot) -> None:
    update = bot.fake.make_message_update(None, 77, None, "/help")
    assert await bot.post(update) == 200
    assert await bot.post(update) == 200
    assert len(bot.fake.sent_messages(77)) == 1


async def test_wrong_or_missing_secret_gets_403(bot: Bot) -> None:
    update = bot.fake.make_message_update(None, 78, None, "/help")
    assert await bot.post(update, secret="nope") == 403
    assert await bot.post(update, secret=None) == 403
    assert bot.fake.sent_messages(78) == []


async def test_malformed_json_gets_400_and_bot_keeps_serving(bot: Bot) -> None:
    assert await bot.post(b"{not json") == 400
    assert await bot.post(b"[1, 2]") == 400
    assert await bot.post(b'{"update_id": "x"}') == 400
    assert await bot.text(79, "/help") == 200
    assert "/survey" in bot.fake.last_sent(79)["text"]


async def test_stale_or_forged_callback_is_polite_and_changes_nothing(bot: Bot) -> None:
    user = 80
    await bot.text(user, "/survey fazhi-2026")
    first = bot.last_with_keyboard(user)
    await bot.press(user, first, 0)  # answer question 1

    async def snapshot() -> tuple[int, dict[str, Any]]:
        async with transaction(bot.sessions) as session:
            row = (await session.execute(select(Conversation))).scalar_one()
            return row.version, row.state

    before = await snapshot()
    sent_before = len(bot.fake.sent_messages(user))
    # stale: the keyboard of question 1 as it was before the answer
    stale = bot.fake.make_callback_update(
        None,
        user,
        user,
        first["message_id"],
        first["reply_markup"]["inline_keyboard"][2][0]["callback_data"],
        message=first,
    )
    assert await bot.post(stale) == 200
    assert "最新" in bot.fake.last_sent(user)["text"]
    forged = bot.fake.make_callback_update(
        None, user, user, first["message_id"], "1.a.0.AAAAAAAAAA", message=first
    )
    assert await bot.post(forged) == 200
    assert "无法识别" in bot.fake.last_sent(user)["text"]
    assert len(bot.fake.sent_messages(user)) == sent_before + 2
    assert await snapshot() == before


async def test_language_of_the_client_is_used(bot: Bot) -> None:
    await bot.text(90, "/start", lang="zh-hans")
    await bot.text(91, "/start", lang="en")
    await bot.text(92, "/start", lang="zh-hant")
    assert "您好" in bot.fake.last_sent(90)["text"]
    assert bot.fake.last_sent(91)["text"].startswith("Hello")
    assert "您好" in bot.fake.last_sent(92)["text"]


async def test_in_groups_only_commands_for_this_bot_are_answered(bot: Bot) -> None:
    group = -100500
    await bot.text(93, "大家好", chat_id=group, chat_type="supergroup")
    await bot.text(93, "/help@other_bot", chat_id=group, chat_type="supergroup", address_bot=False)
    assert bot.fake.sent_messages(group) == []
    await bot.text(93, "/help", chat_id=group, chat_type="supergroup")  # → /help@pufa_test_bot
    assert "/survey" in bot.fake.last_sent(group)["text"]


async def test_failure_is_logged_and_answered_with_an_apology(bot: Bot) -> None:
    bot.fake.fail_next("sendMessage", error_code=400, description="Bad Request: chat not found")
    assert await bot.text(94, "/help", lang="en") == 200
    texts = [m["text"] for m in bot.fake.sent_messages(94)]
    assert texts and texts[-1].startswith("Sorry, something went wrong")


async def test_bind_with_deep_link_gives_the_role(bot: Bot) -> None:
    from bot.binding.invites import create_invite
    from storage.types import utcnow

    async with transaction(bot.sessions) as session:
        created = await create_invite(
            session,
            TEST_SECRET.encode(),
            "staff",
            now=utcnow(),
            township="zbp",
        )
    await bot.text(95, f"/start b_{created.code}")
    assert "镇北堡" in bot.fake.last_sent(95)["text"]
    await bot.text(96, f"/bind {created.code}")
    assert "已被使用" in bot.fake.last_sent(96)["text"]
    async with transaction(bot.sessions) as session:
        roles = dict(
            (await session.execute(select(ChatIdentity.external_id, ChatIdentity.role))).all()
        )
    assert roles == {"95": "staff", "96": "resident"}


async def test_restart_in_the_middle_of_a_survey_resumes_at_the_next_question(
    tg_settings: Settings, fake: FakeBotApi
) -> None:
    user = 97
    async with serve_webhook(tg_settings, fake) as bot1:
        await bot1.text(user, "/survey fazhi-2026")
        for _ in range(3):
            await bot1.press(user, bot1.last_with_keyboard(user), 0)
        pending = bot1.last_with_keyboard(user)
        assert pending["text"].startswith("(4/")
    # the process went away; a new one on the same database takes the next answer
    async with serve_webhook(tg_settings, fake) as bot2:
        assert await bot2.press(user, pending, 0) == 200
        assert bot2.last_with_keyboard(user)["text"].startswith("(5/")


@pytest.fixture
async def polling(
    make_settings: Callable[..., Settings], fake: FakeBotApi
) -> AsyncIterator[FakeBotApi]:
    """pufa's app in polling mode against the fake Bot API; yields the fake."""
    settings = make_settings(
        telegram_token=fake.token, telegram_mode="polling", telegram_api_base=fake.api_base
    )
    client = TestClient(TestServer(create_app(settings), host="127.0.0.1"))
    await client.start_server()
    try:
        yield fake
    finally:
        await client.close()
    await asyncio.sleep(0)


async def test_polling_mode_answers_updates(polling: FakeBotApi) -> None:
    polling.queue_update(polling.make_message_update(None, 98, None, "/help", language_code="en"))
    call = await polling.wait_for("sendMessage", timeout=10, chat_id=98)
    assert "survey" in call.params["text"]


async def test_polling_mode_refuses_text_with_a_lone_surrogate_in_words(
    polling: FakeBotApi,
) -> None:
    """JSON may escape half of a surrogate pair (``"\\ud83d"``); the webhook refuses such a
    body, but in polling mode python-telegram-bot decodes it into a string no database or
    HTTP body can carry. The person is told in words, as for a NUL."""
    broken = polling.make_message_update(None, 97, None, "/start s_\ud83d", language_code="en")
    polling.queue_update(broken)
    call = await polling.wait_for("sendMessage", timeout=10, chat_id=97)
    assert call.params["text"] == translator("en")._(UNSTORABLE)


async def test_a_reply_over_the_bot_api_limit_is_sent_in_pieces(bot: Bot) -> None:
    """Answers to updates go through the channel's own sending, cut like the outbox's pushes:
    a long list (a township's villages short of liaisons, say) is never refused as too long."""
    channel = bot.client.server.app[TELEGRAM]
    await channel.deliver("4343", [Reply("请选择", ((Button("查看", "v.ok"),),))])
    pressed = bot.fake.last_sent(4343)
    lines = [f"{n}. 第{n}村：还需登记 2 名法律明白人" for n in range(1, 401)]
    reply = Reply("\n".join(lines), ((Button("知道了", "v.ok"),),))
    await channel.deliver("4343", [reply])
    sent = bot.fake.sent_messages(4343)[1:]
    assert len(sent) > 1
    assert [line for message in sent for line in message["text"].split("\n")] == lines
    assert "reply_markup" in sent[-1] and all("reply_markup" not in m for m in sent[:-1])
    # An edit of the pressed message that no longer fits in one (the Bot API refuses it) is
    # sent anew, in the same pieces; the pressed message keeps its text.
    edit = Reply(reply.text, kind="edit_source")
    await channel.deliver("4343", [edit], source_message_id=str(pressed["message_id"]))
    again = bot.fake.sent_messages(4343)[1 + len(sent) :]
    assert [m["text"] for m in again] == [m["text"] for m in sent]
    assert bot.fake.message(4343, pressed["message_id"])["text"] == "请选择"
