"""The fake Bot API driven by the real python-telegram-bot stack over HTTP."""

from __future__ import annotations

import asyncio
import datetime as dtm
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllPrivateChats,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, RetryAfter
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.fakes.telegram_api import DEFAULT_TOKEN, Call, FakeBotApi

USER = 1001
GROUP = -1002003004005


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


@pytest.fixture
async def bot(fake: FakeBotApi) -> AsyncIterator[Bot]:
    async with Bot(fake.token, base_url=fake.api_base, base_file_url=fake.file_base) as b:
        yield b


def keyboard(*pairs: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(t, callback_data=d)] for t, d in pairs])


def seconds(value: int | float | dtm.timedelta) -> float:
    """RetryAfter.retry_after is an int or a timedelta depending on PTB_TIMEDELTA."""
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


# ------------------------------------------------------------------- (a) telegram.Bot round trip


async def test_bot_send_and_edit_round_trip(fake: FakeBotApi, bot: Bot) -> None:
    me = await bot.get_me()
    assert me.username == "pufa_test_bot"
    assert me.id == int(DEFAULT_TOKEN.split(":")[0])

    sent = await bot.send_message(USER, "请评价本次服务", reply_markup=keyboard(("满意", "s:5")))
    assert sent.message_id == 1
    assert sent.chat.id == USER
    assert sent.from_user is not None and sent.from_user.id == me.id
    assert sent.reply_markup == keyboard(("满意", "s:5"))

    call = fake.calls_to("sendMessage")[0]
    # PTB v22 sends urlencoded forms with every non-string value JSON-encoded; the fake decodes.
    assert call.content_type == "application/x-www-form-urlencoded"
    assert call.raw["chat_id"] == str(USER)
    assert isinstance(call.raw["reply_markup"], str)
    assert call.params["chat_id"] == USER
    assert call.params["text"] == "请评价本次服务"
    assert call.params["reply_markup"] == {
        "inline_keyboard": [[{"text": "满意", "callback_data": "s:5"}]]
    }

    edited = await bot.edit_message_text("谢谢", chat_id=USER, message_id=sent.message_id)
    assert isinstance(edited, type(sent))
    assert edited.text == "谢谢"
    assert edited.edit_date is not None
    assert edited.reply_markup is None  # editing text without reply_markup drops the keyboard
    assert fake.calls_to("editMessageText")[0].params == {
        "chat_id": USER,
        "message_id": 1,
        "text": "谢谢",
    }
    current = fake.message(USER, 1)
    assert current is not None and current["text"] == "谢谢"
    assert [m["text"] for m in fake.sent_messages(USER)] == ["请评价本次服务"]

    second = await bot.send_message(USER, "123")
    assert second.message_id == 2
    assert fake.last_sent(USER)["text"] == "123"  # a numeric text stays a string


async def test_bot_errors_like_telegram(fake: FakeBotApi, bot: Bot) -> None:
    sent = await bot.send_message(USER, "x", reply_markup=keyboard(("a", "a")))
    with pytest.raises(BadRequest, match=r"(?i)not modified"):
        await bot.edit_message_reply_markup(
            USER, sent.message_id, reply_markup=keyboard(("a", "a"))
        )
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("y", chat_id=USER, message_id=99)
    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):  # 22 × 3 UTF-8 bytes > 64
        await bot.send_message(USER, "x", reply_markup=keyboard(("a", "满" * 22)))
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(USER, "1 < 2 <b>bold", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)too long"):
        await bot.send_message(USER, "字" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)reserved"):
        await bot.send_message(USER, "版本 1.0", parse_mode="MarkdownV2")
    fake.block(USER)
    with pytest.raises(Forbidden, match=r"(?i)blocked"):
        await bot.send_message(USER, "x")
    assert await bot.delete_message(USER, sent.message_id)
    with pytest.raises(BadRequest, match=r"(?i)not found"):
        await bot.delete_message(USER, sent.message_id)
    statuses = [c.status for c in fake.calls if c.method != "getMe"]
    assert statuses == [200, 400, 400, 400, 400, 400, 400, 403, 200, 400]


async def test_bot_html_entities_use_utf16_offsets(fake: FakeBotApi, bot: Bot) -> None:
    sent = await bot.send_message(
        USER,
        '👍 <b>满意</b> &amp; <a href="https://e.x/?a=1&amp;b=2">链接</a>',
        parse_mode="HTML",
    )
    assert sent.text == "👍 满意 & 链接"
    bold, link = sent.entities
    assert (bold.type, bold.offset, bold.length) == ("bold", 3, 2)  # 👍 is 2 UTF-16 units
    assert (link.type, link.offset, link.length, link.url) == (
        "text_link",
        8,
        2,
        "https://e.x/?a=1&b=2",
    )
    assert sent.parse_entity(bold) == "满意"


async def test_bad_token_and_unknown_method(fake: FakeBotApi) -> None:
    async with Bot(fake.token, base_url=fake.api_base) as good:
        with pytest.raises(Exception, match=r"(?i)Not Found"):
            await good.do_api_request("noSuchMethod")
    wrong = Bot("7000000001:AAWrongTokenxxxxxxxxxxxxxxxxxxxxxxx", base_url=fake.api_base)
    with pytest.raises(InvalidToken):
        await wrong.initialize()

    async with aiohttp.ClientSession() as http:
        async with http.post(f"{fake.api_base}{fake.token}/noSuchMethod") as r:
            assert r.status == 404
            assert await r.json() == {
                "ok": False,
                "error_code": 404,
                "description": "Not Found: method not found",
            }
        async with http.get(f"{fake.api_base}123:bad/getMe") as r:
            assert r.status == 401
            assert (await r.json())["description"] == "Unauthorized"


async def test_json_body_query_string_and_multipart(fake: FakeBotApi, bot: Bot) -> None:
    base = f"{fake.api_base}{fake.token}"
    markup = '{"inline_keyboard": [[{"text": "好", "callback_data": "ok"}]]}'
    async with aiohttp.ClientSession() as http:
        # JSON body where reply_markup itself is a JSON string, as some clients send it
        body = {"chat_id": USER, "text": "42", "reply_markup": markup}
        async with http.post(f"{base}/sendMessage", json=body) as r:
            payload = await r.json()
        async with http.get(f"{base}/sendMessage", params={"chat_id": "-5", "text": "q"}) as r:
            assert (await r.json())["result"]["chat"]["type"] == "group"
    assert payload["ok"] is True
    assert payload["result"]["text"] == "42"
    assert payload["result"]["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "ok"
    json_call, get_call = fake.calls_to("sendMessage")
    assert json_call.content_type == "application/json"
    assert json_call.params["reply_markup"] == {
        "inline_keyboard": [[{"text": "好", "callback_data": "ok"}]]
    }
    assert get_call.http_method == "GET" and get_call.params == {"chat_id": -5, "text": "q"}

    photo = await bot.send_photo(USER, b"\x89PNG fake", caption="二维码")
    document = await bot.send_document(USER, b"a,b\n1,2\n", filename="结果.csv", caption="导出")
    assert photo.caption == "二维码" and photo.photo[-1].file_size == 9
    assert document.document is not None and document.document.file_name == "结果.csv"
    upload = fake.calls_to("sendDocument")[0]
    assert upload.content_type == "multipart/form-data"
    assert upload.files["document"].data == b"a,b\n1,2\n"
    downloaded = await (await bot.get_file(document.document.file_id)).download_as_bytearray()
    assert bytes(downloaded) == b"a,b\n1,2\n"


async def test_commands_recorded_per_scope_and_language(fake: FakeBotApi, bot: Bot) -> None:
    await bot.set_my_commands([BotCommand("start", "开始"), BotCommand("help", "帮助")])
    await bot.set_my_commands([BotCommand("start", "Start")], language_code="en")
    await bot.set_my_commands(
        [BotCommand("survey", "问卷")], scope=BotCommandScopeAllPrivateChats(), language_code="zh"
    )
    assert [c["command"] for c in fake.commands_for()] == ["start", "help"]
    assert fake.commands_for("en") == [{"command": "start", "description": "Start"}]
    assert fake.commands_for("zh", {"type": "all_private_chats"}) == [
        {"command": "survey", "description": "问卷"}
    ]
    assert fake.commands_for("zh") is None
    assert [c.command for c in await bot.get_my_commands(language_code="en")] == ["start"]
    await bot.delete_my_commands(language_code="en")
    assert fake.commands_for("en") is None
    assert await bot.get_my_commands(language_code="en") == ()
    with pytest.raises(BadRequest, match=r"(?i)language code"):
        await bot.set_my_commands([BotCommand("start", "开始")], language_code="zh_CN")


# ------------------------------------------------------------------- (b) Application, no updater


def build_app(fake: FakeBotApi, **kwargs: Any) -> tuple[Application, list[BaseException]]:
    builder = ApplicationBuilder().token(fake.token).base_url(fake.api_base)
    for name, value in kwargs.items():
        builder = getattr(builder, name)(value)
    app = builder.build()
    errors: list[BaseException] = []

    async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert context.error is not None
        errors.append(context.error)

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None and update.effective_user is not None
        lang = update.effective_user.language_code
        await update.effective_message.reply_text(
            f"欢迎 args={context.args} lang={lang}",
            reply_markup=keyboard(("满意", "rate:5"), ("不满意", "rate:1")),
        )

    async def rate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("已记录")
        await query.edit_message_text(f"您选择了 {query.data}")

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(update.effective_message.text or "")

    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(rate, pattern=r"^rate:"))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    app.add_error_handler(on_error)
    return app, errors


async def test_application_process_update_command_and_callback(fake: FakeBotApi) -> None:
    app, errors = build_app(fake, updater=None)
    async with app:
        update = fake.make_message_update(None, USER, None, "/start s_sat2026")
        await app.process_update(Update.de_json(update, app.bot))
        welcome = fake.last_sent(USER)
        assert welcome["text"] == "欢迎 args=['s_sat2026'] lang=zh-hans"
        assert welcome["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "rate:5"
        # The user's /start took message_id 1, the bot's reply 2: one counter per chat.
        assert welcome["message_id"] == 2

        click = fake.make_callback_update(None, USER, USER, welcome["message_id"], "rate:5")
        await app.process_update(Update.de_json(click, app.bot))
    assert errors == []
    answer = fake.calls_to("answerCallbackQuery")[0]
    assert answer.params == {
        "callback_query_id": click["callback_query"]["id"],
        "text": "已记录",
    }
    assert fake.callback_queries[click["callback_query"]["id"]] is not None
    edited = fake.message(USER, welcome["message_id"])
    assert edited is not None and edited["text"] == "您选择了 rate:5"
    assert "reply_markup" not in edited


async def test_application_update_queue_and_group_command(fake: FakeBotApi) -> None:
    app, errors = build_app(fake, updater=None)
    async with app:
        await app.start()
        try:
            mark = fake.mark()
            update = fake.make_message_update(
                None, USER, GROUP, "/start", chat_type="supergroup", language_code="en"
            )
            assert update["message"]["text"] == "/start@pufa_test_bot"
            assert update["message"]["entities"] == [
                {"type": "bot_command", "offset": 0, "length": 20}
            ]
            await app.update_queue.put(Update.de_json(update, app.bot))
            call = await fake.wait_for("sendMessage", since=mark, chat_id=GROUP)
            assert call.result["text"] == "欢迎 args=[] lang=en"
            assert call.params["reply_parameters"]["message_id"] == 1

            mark = fake.mark()
            other = fake.make_message_update(
                None, USER, GROUP, "/start@other_bot", chat_type="group"
            )
            await app.update_queue.put(Update.de_json(other, app.bot))
            text = fake.make_message_update(None, USER, None, "你好")
            await app.update_queue.put(Update.de_json(text, app.bot))
            echoed = await fake.wait_for("sendMessage", since=mark, chat_id=USER)
            assert echoed.result["text"] == "你好"
        finally:
            await app.stop()
    assert errors == []
    # the command addressed to another bot was ignored
    assert [m["chat"]["id"] for m in fake.sent_messages()] == [GROUP, USER]


async def test_callback_for_unknown_message_and_unknown_query(fake: FakeBotApi, bot: Bot) -> None:
    with pytest.raises(LookupError):
        fake.make_callback_update(None, USER, USER, 77, "x")
    with pytest.raises(BadRequest, match=r"(?i)query ID is invalid"):
        await bot.answer_callback_query("123")


# ------------------------------------------------------------------- (c) polling


async def test_polling_answers_queued_update(fake: FakeBotApi) -> None:
    fake.webhook = {"url": "http://127.0.0.1:9/telegram/webhook"}  # start_polling removes it
    app, errors = build_app(fake)
    async with app:
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0.0, timeout=dtm.timedelta(seconds=5))
        await app.start()
        try:
            fake.queue_update(fake.make_message_update(None, USER, None, "/start"))
            reply = await fake.wait_for("sendMessage", timeout=5)
            assert reply.result["text"].startswith("欢迎")
            poll = await fake.wait_for(lambda c: c.method == "getUpdates" and bool(c.result))
            assert poll.params["timeout"] == 5
            assert poll.result[0]["message"]["text"] == "/start"
        finally:
            await app.updater.stop()
            await app.stop()
    assert errors == []
    assert fake.calls_to("deleteWebhook"), "start_polling bootstraps with deleteWebhook"
    assert fake.webhook is None
    # The updater's final getUpdates confirmed the processed update.
    assert fake.pending_updates == []
    offsets = [c.params.get("offset") for c in fake.calls_to("getUpdates")]
    assert offsets[-1] == 2


async def test_get_updates_long_poll_waits_and_conflicts(fake: FakeBotApi, bot: Bot) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=0) == ()
    assert time.monotonic() - started < 0.5

    first = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    assert not first.done()  # long poll is waiting
    fake.queue_update(fake.make_message_update(10, USER, None, "一"))
    updates = await asyncio.wait_for(first, 2)
    assert [u.update_id for u in updates] == [10]
    assert updates[0].message is not None and updates[0].message.text == "一"

    # a second bot instance polling terminates the first one's poll with 409, as Telegram does
    waiting = asyncio.create_task(bot.get_updates(offset=11, timeout=5))
    await asyncio.sleep(0.1)
    async with Bot(fake.token, base_url=fake.api_base) as other_instance:
        second = asyncio.create_task(other_instance.get_updates(offset=11, timeout=0.2))
        with pytest.raises(Conflict, match=r"(?i)terminated by other getUpdates"):
            await asyncio.wait_for(waiting, 2)
        assert await second == ()
    assert fake.pending_updates == []  # offset 11 confirmed update 10

    await bot.set_webhook("http://127.0.0.1:9/telegram/webhook", secret_token="s3cret")
    with pytest.raises(Conflict, match=r"(?i)webhook is active"):
        await bot.get_updates()
    info = await bot.get_webhook_info()
    assert info.url == "http://127.0.0.1:9/telegram/webhook"
    assert await bot.delete_webhook()
    assert (await bot.get_webhook_info()).url == ""


async def test_deliver_webhook_sends_secret(fake: FakeBotApi, bot: Bot) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(
            (request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json())
        )
        return web.Response()

    app = web.Application()
    app.router.add_post("/telegram/webhook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        await bot.set_webhook(f"http://127.0.0.1:{port}/telegram/webhook", secret_token="abc-1")
        update = fake.make_message_update(5, USER, None, "hi")
        assert await fake.deliver_webhook(update) == 200
    finally:
        await runner.cleanup()
    assert received == [("abc-1", update)]
    await bot.set_webhook("https://example.org/hook")
    with pytest.raises(ValueError, match="non-loopback"):
        await fake.deliver_webhook(update)


# ------------------------------------------------------------------- (d) 429 and retries


# RetryAfter.__init__ itself reads the deprecated int-valued `retry_after` (PTB 22.x).
ptb_retry_after_warning = pytest.mark.filterwarnings(
    "ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning"
)


@ptb_retry_after_warning
async def test_429_is_retried_by_aioratelimiter(fake: FakeBotApi) -> None:
    app, errors = build_app(fake, updater=None, rate_limiter=AIORateLimiter(max_retries=2))
    async with app:
        fake.inject_429("sendMessage", retry_after=1)
        started = time.monotonic()
        await app.process_update(
            Update.de_json(fake.make_message_update(None, USER, None, "重试"), app.bot)
        )
        elapsed = time.monotonic() - started
    assert errors == []
    first, second = fake.calls_to("sendMessage")
    assert (first.status, second.status) == (429, 200)
    assert first.response == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1},
    }
    assert second.time - first.time >= 1.0
    assert elapsed >= 1.0
    assert [m["text"] for m in fake.sent_messages(USER)] == ["重试"]


@ptb_retry_after_warning
async def test_429_without_rate_limiter_surfaces_as_retry_after(fake: FakeBotApi, bot: Bot) -> None:
    fake.inject_429(retry_after=7)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(USER, "x")
    assert seconds(caught.value.retry_after) == 7
    assert fake.sent_messages() == []  # the failed call had no effect
    await bot.send_message(USER, "x")  # the injection was for one call only
    assert len(fake.sent_messages()) == 1


async def test_latency_and_wait_for(fake: FakeBotApi, bot: Bot) -> None:
    fake.latency = 0.2
    started = time.monotonic()
    await bot.send_message(USER, "慢")
    assert time.monotonic() - started >= 0.2
    fake.latency = 0.0

    waiter = asyncio.create_task(fake.wait_for(lambda c: c.params.get("text") == "后"))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    await bot.send_message(USER, "后")
    call: Call = await asyncio.wait_for(waiter, 1)
    assert call.method == "sendMessage"
    with pytest.raises(TimeoutError, match="deleteMessage"):
        await fake.wait_for("deleteMessage", timeout=0.1)
    assert len(await fake.wait_for_count("sendMessage", 2, timeout=0.1)) == 2
    fake.clear()
    assert fake.calls == [] and fake.sent_messages() == []
