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
``AIORateLimiter`` and its public ``Bot.do_api_request``. In groups only commands (``/cmd`` or
``/cmd@thisbot``) and the bot's own buttons are answered. Errors are logged and answered with a
localized apology. Every update is counted in ``pufa_chat_updates_total``.

**An unreachable Telegram never stops the service.** In mainland China api.telegram.org is
often blocked. :func:`telegram_ctx` makes one attempt to start (``getMe``, the command menu,
``setWebhook`` or polling); if it fails, pufa serves the mobile pages, the API and the other
channels as usual, logs it once, keeps trying in the background and shows the channel's state
in ``/healthz``.

:class:`TelegramSender` is the outbox's sender for Telegram: it sends a queued message with
the channel's bot and maps PTB's errors to transient (flood control, 5xx, timeouts, dropped
connections) or permanent ones (chat not found, bot blocked).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hmac
import logging
import random
import warnings
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import timedelta
from typing import Any

from aiohttp import web
from telegram import Bot, BotCommand, CallbackQuery, Update
from telegram.error import (
    BadRequest,
    ChatMigrated,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, ContextTypes, TypeHandler
from telegram.request import BaseRequest
from telegram.warnings import PTBDeprecationWarning, PTBUserWarning

from bot.channels.telegram_request import AiohttpRequest
from bot.dialogs import DIALOGS, DialogRuntime, apology
from bot.outbox.sender import (
    OutboundItem,
    PermanentSendError,
    TransientSendError,
    send_pieces,
)
from bot.outbox.worker import SENDERS
from core.appkeys import CHANNEL_HEALTH, METRICS, SETTINGS
from core.health import ChannelHealth, ChannelState
from core.http import parse_json
from core.i18n import negotiate, translator
from core.messages import Attachment, Inbound, Reply, split_text
from core.metrics import Metrics
from core.settings import SHIPPED_LOCALES, Settings

__all__ = [
    "ALLOWED_UPDATES",
    "CHANNEL",
    "SECRET_HEADER",
    "TELEGRAM",
    "TEXT_LIMIT",
    "WEBHOOK_PATH",
    "TelegramChannel",
    "TelegramSender",
    "send_requests",
    "to_inbound",
]

log = logging.getLogger(__name__)

CHANNEL = "telegram"
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ("message", "callback_query")
FIRST_START_WAIT = 10.0
"""Seconds ``pufa serve`` waits for the first attempt to reach Telegram before serving."""
TEXT_LIMIT = 4096
"""The longest message text the Bot API takes, in UTF-16 code units (as it counts)."""

# pufa calls sendMessage and editMessageText through Bot.do_api_request on purpose: their
# results are not used, and turning them into PTB Message objects cost a large share of a
# survey step's CPU. PTB warns that those methods have dedicated functions; that is known.
warnings.filterwarnings(
    "ignore",
    message=r"Please use 'Bot\.(sendMessage|editMessageText)' instead of",
    category=PTBUserWarning,
)
# ``RetryAfter.retry_after`` becomes a timedelta in PTB's next major version; :func:`_seconds`
# takes either, so the announcement needs no action here.
warnings.filterwarnings(
    "ignore",
    message=r".*In a future major version attribute `retry_after`",
    category=PTBDeprecationWarning,
)

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


def _utf16_length(text: str) -> int:
    """Length of ``text`` in UTF-16 code units, as the Bot API counts a message's length."""
    return len(text.encode("utf-16-le")) // 2


def send_requests(chat_id: int, reply: Reply) -> list[dict[str, Any]]:
    """The ``sendMessage`` parameters of ``reply``: one message, or several when its text is
    over the Bot API's :data:`TEXT_LIMIT` (cut at line ends; the keyboard under the last).
    A reply's lead is in the same message, above its text."""
    pieces = split_text(reply.full_text, TEXT_LIMIT, _utf16_length)
    requests: list[dict[str, Any]] = [{"chat_id": chat_id, "text": piece} for piece in pieces]
    markup = _markup(reply)
    if markup is not None:
        requests[-1]["reply_markup"] = markup
    return requests


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
        metrics: Where updates are counted (by outcome).
    """

    def __init__(
        self,
        settings: Settings,
        runtime: DialogRuntime,
        *,
        request: BaseRequest | None = None,
        metrics: Metrics | None = None,
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
        self.metrics = metrics
        self.health = ChannelHealth()
        """The channel's state for ``/healthz``."""
        self._running = False

    @property
    def running(self) -> bool:
        """Whether the channel reached Telegram and is answering updates."""
        return self._running

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
            await app.bot.shutdown()  # a half-initialised bot keeps its HTTP session open
            raise
        self._running = True
        self.health.update("up")
        log.info(
            "telegram channel started",
            extra={"mode": self.settings.telegram_mode, "bot": self.bot_username},
        )

    async def keep_starting(
        self,
        *,
        first_retry: float = 1.0,
        max_retry: float = 60.0,
        attempted: asyncio.Event | None = None,
    ) -> None:
        """Try :meth:`start` until it succeeds, waiting longer between attempts (with jitter,
        up to ``max_retry`` seconds). The first failure is logged once as a warning; the
        channel's :attr:`health` says what happens. ``attempted`` is set after the first
        attempt, whatever its outcome."""
        delay = first_retry
        failed_before = False
        while True:
            try:
                await self.start()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                refused = isinstance(exc, InvalidToken | BadRequest)  # token, webhook URL…
                state: ChannelState = "rejected" if refused else "unreachable"
                detail = f"{type(exc).__name__}: {exc}"
                self.health.update(state, detail)
                if not failed_before:
                    log.warning(
                        "telegram cannot be reached; serving everything else and retrying "
                        "in the background",
                        extra={"error": detail, "api": self.settings.telegram_api_base},
                    )
                failed_before = True
            else:
                if failed_before:
                    log.info("telegram reached; the channel is up")
                return
            finally:
                if attempted is not None:
                    attempted.set()
            await asyncio.sleep(random.uniform(delay / 2, delay))
            delay = min(max_retry, delay * 2)

    async def stop(self) -> None:
        """Stop polling (if any) and shut PTB down."""
        self.health.update("stopped")
        if not self._running:
            await self.application.bot.shutdown()
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
            self._count("rejected")
            return web.Response(status=403, text="forbidden")
        if not self._running:
            self._count("unavailable")
            return web.Response(status=503, text="starting")
        try:
            data = parse_json(await request.read())
            if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
                raise ValueError("not an update")
            _drop_pressed_keyboard(data)
            update = Update.de_json(data, self.application.bot)
        except (ValueError, TypeError, KeyError, AttributeError):
            self._count("invalid")
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

    def _count(self, outcome: str) -> None:
        """Count one inbound update: ``answered``, ``duplicate`` (a redelivery, answered
        before), ``ignored`` (not for pufa), ``failed``, ``rejected`` (wrong secret),
        ``invalid`` (not an update) or ``unavailable`` (channel not started)."""
        if self.metrics is not None:
            self.metrics.chat_updates.labels(CHANNEL, outcome).inc()

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        inbound = to_inbound(update, self.bot_username)
        query = update.callback_query
        if inbound is None:
            self._count("ignored")
            if query is not None:
                await self._answer_query(query)
            return
        replies = await self.runtime.handle(inbound)
        self._count("answered" if replies else "duplicate")
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

        Goes through the public ``Bot.do_api_request``, so PTB's rate limiter, request backend
        and error mapping (``BadRequest``, ``RetryAfter``…) all apply, but the returned
        ``Message`` is not turned into PTB objects: that parsing was a large share of a survey
        step's CPU, and nothing reads it.
        """
        await self.application.bot.do_api_request(endpoint, api_kwargs=data)

    async def _send(self, chat_id: str, reply: Reply) -> None:
        for data in send_requests(int(chat_id), reply):
            await self._call("sendMessage", data)

    async def _edit(self, chat_id: str, reply: Reply, message_id: str) -> None:
        data: dict[str, Any] = {
            "chat_id": int(chat_id),
            "message_id": int(message_id),
            "text": reply.full_text,
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
        if isinstance(update, Update):
            self._count("failed")
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


class TelegramSender:
    """The outbox's sender for Telegram: one ``sendMessage`` per queued message.

    Args:
        bot: The bot to send with (the channel's, so PTB's rate limiter and HTTP session are
            shared with the answers to updates).
        ready: Whether the bot can send now (the channel reached Telegram); while it cannot,
            the worker leaves Telegram messages queued.
    """

    GROUP_INTERVAL = 3.0
    """Seconds between two messages to one group: Telegram allows 20 a minute."""
    CHAT_INTERVAL = 1.0
    """Seconds between two messages to one private chat: about one a second."""
    INVALID_TOKEN_WAIT = 300.0
    """Seconds to hold Telegram messages back when the token is refused."""

    def __init__(self, bot: Bot, ready: Callable[[], bool] = lambda: True) -> None:
        self.bot = bot
        self._ready = ready

    @property
    def ready(self) -> bool:
        """Whether the channel can send now."""
        return self._ready()

    def min_interval(self, recipient: str) -> float:
        """Groups (negative chat ids) get 20 messages a minute; private chats one a second."""
        return self.GROUP_INTERVAL if recipient.startswith("-") else self.CHAT_INTERVAL

    async def send(self, item: OutboundItem) -> None:
        """Send ``item`` as a text message with its inline keyboard, or raise
        :class:`TransientSendError` / :class:`PermanentSendError`.

        A text over the Bot API's limit goes as several messages (:func:`send_requests`); a
        retry after one of them failed sends only those not delivered yet."""
        try:
            chat_id = int(item.recipient)
        except ValueError:
            raise PermanentSendError(f"not a Telegram chat id: {item.recipient!r}") from None
        await send_pieces(item, send_requests(chat_id, item.reply), self._send_message)

    async def _send_message(self, data: dict[str, Any]) -> None:
        """One ``sendMessage``, its errors as :class:`SendError`."""
        try:
            await self.bot.do_api_request("sendMessage", api_kwargs=data)
        except RetryAfter as exc:
            raise TransientSendError(exc.message, retry_after=_seconds(exc.retry_after)) from exc
        except ChatMigrated as exc:
            raise PermanentSendError(
                f"the group became a supergroup ({exc.new_chat_id}); bind it again"
            ) from exc
        except (Forbidden, BadRequest) as exc:  # blocked, kicked, chat not found, bad message
            raise PermanentSendError(exc.message) from exc
        except (InvalidToken, EndPointNotFound) as exc:  # 401/404: sendMessage always exists
            raise TransientSendError(
                f"the bot token was refused: {exc.message}", retry_after=self.INVALID_TOKEN_WAIT
            ) from exc
        except NetworkError as exc:  # 5xx, timeouts, dropped connections
            raise TransientSendError(exc.message) from exc
        except TelegramError as exc:
            raise TransientSendError(exc.message) from exc


def _seconds(value: int | float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


TELEGRAM = web.AppKey("telegram", TelegramChannel)


async def telegram_ctx(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: start the Telegram channel with the app (in the background when
    Telegram cannot be reached), offer the outbox its sender, stop it on shutdown."""
    settings = app[SETTINGS]
    channel = TelegramChannel(settings, app[DIALOGS], metrics=app[METRICS])
    app[TELEGRAM] = channel
    app[CHANNEL_HEALTH][CHANNEL] = channel.health
    app[SENDERS][CHANNEL] = TelegramSender(channel.application.bot, lambda: channel.running)
    attempted = asyncio.Event()
    starting = asyncio.create_task(channel.keep_starting(attempted=attempted), name="telegram")
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(attempted.wait(), FIRST_START_WAIT)
    try:
        yield
    finally:
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        await channel.stop()


async def webhook_view(request: web.Request) -> web.Response:
    """``POST /telegram/webhook`` handled by the running channel."""
    channel = request.app.get(TELEGRAM)
    if channel is None:
        return web.Response(status=503, text="starting")
    return await channel.handle_webhook(request)
