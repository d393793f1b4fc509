"""The Telegram channel on python-telegram-bot v22: transport only, no business rules.

- **Webhook mode** (``PUFA_TELEGRAM_MODE=webhook``): pufa's own aiohttp app serves
  ``POST /telegram/webhook``. The ``X-Telegram-Bot-Api-Secret-Token`` header must match
  ``PUFA_TELEGRAM_WEBHOOK_SECRET`` (403 otherwise); a body that is not a JSON update gets 400.
  The update is processed before the answer, so a 200 means the step is committed; the
  ``answerCallbackQuery`` of a button press rides in the webhook answer itself, as the Bot API
  allows, saving a round trip.
- **Polling mode** (development): ``Updater.start_polling``.

Each update becomes one :class:`~core.messages.Inbound` for the dialog runtime, which
records the ``update_id`` in the step's transaction, so a redelivered update is answered once.
Replies are rendered as plain text with inline keyboards; an ``edit_source`` reply replaces the
message whose button was pressed (its keyboard disappears). Outgoing calls go through PTB's
``AIORateLimiter``. In groups only commands (``/cmd`` or ``/cmd@thisbot``) and the bot's own
buttons are answered. Errors are logged and answered with a localized apology.
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiohttp import web
from telegram import BotCommand, CallbackQuery, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, ContextTypes, TypeHandler
from telegram.request import BaseRequest

from bot.channels.telegram_request import AiohttpRequest
from bot.dialogs import DIALOGS, DialogRuntime, apology
from core.appkeys import SETTINGS
from core.i18n import negotiate, translator
from core.messages import Attachment, Inbound, Reply
from core.settings import SHIPPED_LOCALES, Settings

__all__ = [
    "ALLOWED_UPDATES",
    "CHANNEL",
    "SECRET_HEADER",
    "TELEGRAM",
    "WEBHOOK_PATH",
    "TelegramChannel",
    "to_inbound",
]

log = logging.getLogger(__name__)

CHANNEL = "telegram"
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ("message", "callback_query")

# Set by the webhook view while it processes one update: Bot API calls that may ride in the
# webhook answer (one at most, as Telegram allows) are put here instead of being sent.
_webhook_answer: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar(
    "pufa_webhook_answer", default=None
)


def to_inbound(update: Update, bot_username: str) -> Inbound | None:
    """The :class:`Inbound` for an update, or ``None`` when pufa should not answer it
    (group chatter, a command addressed to another bot, an update kind it does not handle)."""
    query = update.callback_query
    if query is not None:
        message = query.message
        if message is None or query.data is None:
            return None
        user = query.from_user
        return Inbound(
            channel=CHANNEL,
            external_id=str(user.id),
            chat_id=str(message.chat.id),
            payload=query.data,
            language=user.language_code,
            event_id=str(update.update_id),
            source_message_id=str(message.message_id),
        )
    message = update.message
    if message is None or message.from_user is None:
        return None
    document = message.document
    attachment = (
        Attachment(document.file_id, document.file_name or "", document.mime_type or "")
        if document is not None
        else None
    )
    text: str | None = message.text or message.caption or ""
    if message.chat.type != "private":
        text = _addressed_command(text or "", bot_username)
        if text is None:
            return None
    return Inbound(
        channel=CHANNEL,
        external_id=str(message.from_user.id),
        chat_id=str(message.chat.id),
        text=text,
        language=message.from_user.language_code,
        event_id=str(update.update_id),
        attachment=attachment,
    )


def _addressed_command(text: str, bot_username: str) -> str | None:
    """In a group: the command text with ``@thisbot`` removed, or ``None`` if not for us."""
    if not text.startswith("/"):
        return None
    head, sep, rest = text.partition(" ")
    name, at, target = head.partition("@")
    if at and target.lower() != bot_username.lower():
        return None
    return f"{name}{sep}{rest}"


def _drop_pressed_keyboard(data: dict[str, Any]) -> None:
    """Leave the inline keyboard of a pressed message out of ``data`` before PTB parses it.

    The keyboard is pufa's own (the buttons it sent) and nothing reads it back — the pressed
    button arrives as ``callback_query.data`` — but turning it into PTB objects was a sizeable
    part of parsing every button press.
    """
    query = data.get("callback_query")
    message = query.get("message") if isinstance(query, dict) else None
    if isinstance(message, dict) and "reply_markup" in message:
        query["message"] = {k: v for k, v in message.items() if k != "reply_markup"}  # type: ignore[index]


def _markup(reply: Reply) -> dict[str, Any] | None:
    """The ``reply_markup`` of a reply as the Bot API's JSON (an inline keyboard), or ``None``.

    Plain dicts rather than PTB's ``InlineKeyboardButton`` objects: the keyboard is only ever
    serialised, and building PTB objects for every option of every question costs more.
    """
    rows: list[list[dict[str, str]]] = [
        [{"text": button.label, "callback_data": button.payload} for button in row]
        for row in reply.buttons
    ]
    rows.extend([{"text": link.label, "url": link.url}] for link in reply.links)
    return {"inline_keyboard": rows} if rows else None


class TelegramChannel:
    """A PTB :class:`~telegram.ext.Application` wired to the dialog runtime.

    Args:
        settings: Token, API base, mode, webhook secret and send rate.
        runtime: The dialog runtime that answers every update.
        request: PTB request backend for Bot API calls (default: :class:`AiohttpRequest`,
            cheaper per call than PTB's httpx default; ``getUpdates`` keeps PTB's own).
    """

    def __init__(
        self, settings: Settings, runtime: DialogRuntime, *, request: BaseRequest | None = None
    ) -> None:
        if settings.telegram_token is None:
            raise ValueError("PUFA_TELEGRAM_TOKEN is not set")
        self.settings = settings
        self.runtime = runtime
        api_base = settings.telegram_api_base
        builder = (
            ApplicationBuilder()
            .token(settings.telegram_token.get_secret_value())
            .base_url(api_base)
            .rate_limiter(AIORateLimiter(overall_max_rate=settings.send_rate, max_retries=2))
        )
        if api_base.endswith("/bot"):
            builder = builder.base_file_url(api_base[: -len("/bot")] + "/file/bot")
        builder = builder.request(request if request is not None else AiohttpRequest())
        if settings.telegram_mode == "webhook":
            builder = builder.updater(None)
        self.application: Application[Any, Any, Any, Any, Any, Any] = builder.build()
        self.application.add_handler(TypeHandler(Update, self._on_update))
        self.application.add_error_handler(self._on_error)
        self._running = False

    @property
    def bot_username(self) -> str:
        """The bot's username (known after :meth:`start`)."""
        return self.application.bot.username or ""

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Initialise PTB (``getMe``), register commands, then set the webhook or poll."""
        app = self.application
        await app.initialize()
        try:
            await self.register_commands()
            if self.settings.telegram_mode == "webhook":
                secret = self.settings.telegram_webhook_secret
                await app.bot.set_webhook(
                    url=self.settings.public_url.rstrip("/") + WEBHOOK_PATH,
                    secret_token=secret.get_secret_value() if secret else None,
                    allowed_updates=list(ALLOWED_UPDATES),
                )
            else:
                assert app.updater is not None
                await app.updater.start_polling(allowed_updates=list(ALLOWED_UPDATES))
                await app.start()
        except BaseException:
            await app.shutdown()
            raise
        self._running = True
        log.info(
            "telegram channel started",
            extra={"mode": self.settings.telegram_mode, "bot": self.bot_username},
        )

    async def stop(self) -> None:
        """Stop polling (if any) and shut PTB down."""
        if not self._running:
            return
        self._running = False
        app = self.application
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()

    async def register_commands(self) -> None:
        """The command menu in every shipped language (and the default locale for others)."""
        bot = self.application.bot

        def commands(locale: str) -> list[BotCommand]:
            t = translator(locale)
            return [BotCommand(name, t._(description)) for name, description in self.runtime.menu]

        await bot.set_my_commands(commands(self.settings.default_locale))
        for locale in SHIPPED_LOCALES:
            await bot.set_my_commands(commands(locale), language_code=locale.split("_")[0])

    # ------------------------------------------------------------------ webhook

    async def handle_webhook(self, request: web.Request) -> web.Response:
        """``POST /telegram/webhook``: 403 wrong secret, 400 not an update, 200 processed."""
        secret = self.settings.telegram_webhook_secret
        given = request.headers.get(SECRET_HEADER, "")
        if secret is None or not hmac.compare_digest(
            given.encode(), secret.get_secret_value().encode()
        ):
            return web.Response(status=403, text="forbidden")
        if not self._running:
            return web.Response(status=503, text="starting")
        try:
            data = json.loads(await request.read())
            if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
                raise ValueError("not an update")
            _drop_pressed_keyboard(data)
            update = Update.de_json(data, self.application.bot)
        except (ValueError, TypeError, KeyError, AttributeError):
            return web.Response(status=400, text="not a Telegram update")
        answer: list[dict[str, Any]] = []
        token = _webhook_answer.set(answer)
        try:
            await self.application.process_update(update)
        finally:
            _webhook_answer.reset(token)
        if answer:
            return web.json_response(answer[0])
        return web.Response()

    # ------------------------------------------------------------------ handling

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        inbound = to_inbound(update, self.bot_username)
        query = update.callback_query
        if inbound is None:
            if query is not None:
                await self._answer_query(query)
            return
        replies = await self.runtime.handle(inbound)
        if query is not None:
            await self._answer_query(query)
        await self.deliver(inbound.chat_id, replies, source_message_id=inbound.source_message_id)

    async def _answer_query(self, query: CallbackQuery) -> None:
        pending = _webhook_answer.get()
        if pending is not None and not pending:
            pending.append({"method": "answerCallbackQuery", "callback_query_id": query.id})
            return
        try:
            await query.answer()
        except TelegramError as exc:  # an old query: nothing the person would see
            log.info("callback query not answered", extra={"error": str(exc)})

    async def deliver(
        self, chat_id: str, replies: Sequence[Reply], *, source_message_id: str | None = None
    ) -> None:
        """Send (or, for ``edit_source``, edit) each reply in ``chat_id``.

        New messages go out in order; an edit of the pressed message runs alongside the first
        of them (they touch different messages, so their order does not matter).
        """
        edits = [r for r in replies if r.kind == "edit_source" and source_message_id]
        sends = [r for r in replies if r not in edits]
        if not edits:
            for reply in sends:
                await self._send(chat_id, reply)
            return
        if not sends:
            for reply in edits:
                await self._edit(chat_id, reply, source_message_id or "")
            return

        async def edit_all() -> None:
            for reply in edits:
                await self._edit(chat_id, reply, source_message_id or "")

        async def send_all() -> None:
            for reply in sends:
                await self._send(chat_id, reply)

        await asyncio.gather(edit_all(), send_all())

    async def _call(self, endpoint: str, data: dict[str, Any]) -> None:
        """One Bot API call whose result pufa does not use.

        Goes through ``Bot._post`` (what ``send_message`` and friends call), so PTB's rate
        limiter, request backend and error mapping (``BadRequest``, ``RetryAfter``…) all apply,
        but the returned ``Message`` is not turned into PTB objects: that parsing was a large
        share of a survey step's CPU, and nothing reads it.
        """
        await self.application.bot._post(endpoint, data)

    async def _send(self, chat_id: str, reply: Reply) -> None:
        data: dict[str, Any] = {"chat_id": int(chat_id), "text": reply.text}
        markup = _markup(reply)
        if markup is not None:
            data["reply_markup"] = markup
        await self._call("sendMessage", data)

    async def _edit(self, chat_id: str, reply: Reply, message_id: str) -> None:
        data: dict[str, Any] = {
            "chat_id": int(chat_id),
            "message_id": int(message_id),
            "text": reply.text,
        }
        markup = _markup(reply)
        if markup is not None:
            data["reply_markup"] = markup
        try:
            await self._call("editMessageText", data)
        except BadRequest as exc:
            if "not modified" in exc.message.lower():
                return
            log.info("could not edit; sending instead", extra={"error": exc.message})
            await self._send(chat_id, reply)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        error = context.error
        update_id = update.update_id if isinstance(update, Update) else None
        log.error(
            "telegram update failed",
            exc_info=(type(error), error, error.__traceback__) if error else None,
            extra={"update_id": update_id},
        )
        if not isinstance(update, Update) or update.effective_chat is None:
            return
        user = update.effective_user
        locale = negotiate(user.language_code if user else None, self.settings.default_locale)
        try:
            if update.callback_query is not None:
                await self._answer_query(update.callback_query)
            await self.application.bot.send_message(update.effective_chat.id, apology(locale))
        except TelegramError as exc:
            log.warning("could not send the apology", extra={"error": str(exc)})


TELEGRAM = web.AppKey("telegram", TelegramChannel)


async def telegram_ctx(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: start the Telegram channel with the app and stop it on shutdown."""
    settings = app[SETTINGS]
    channel = TelegramChannel(settings, app[DIALOGS])
    app[TELEGRAM] = channel
    await channel.start()
    try:
        yield
    finally:
        await channel.stop()


async def webhook_view(request: web.Request) -> web.Response:
    """``POST /telegram/webhook`` handled by the running channel."""
    channel = request.app.get(TELEGRAM)
    if channel is None:
        return web.Response(status=503, text="starting")
    return await channel.handle_webhook(request)
