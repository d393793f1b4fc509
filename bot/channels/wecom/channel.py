"""The WeCom channel of a self-built app: the callback, the dialog runtime, the outbox.

``GET /wecom/callback`` is WeCom's URL check: the ``echostr`` is verified and decrypted and its
plaintext answered. ``POST /wecom/callback`` carries an encrypted message or event:

1. the body is at most 64 KiB (413), the query has ``msg_signature``, ``timestamp`` and
   ``nonce`` (400), the envelope is XML with an ``Encrypt`` field (400, parsed with
   ``defusedxml``);
2. the signature must match (403) and the timestamp be within :data:`MAX_SKEW` seconds of
   now (403: an old request replayed); the ciphertext must decrypt, with good padding and our
   corp id as receive id (400 / 403);
3. the message becomes an :class:`~core.messages.Inbound` (:mod:`bot.channels.wecom.events`)
   and the request is answered at once with an empty 200 — WeCom retries a callback not
   answered within 5 seconds — while the step runs in a background task. A press of a template
   card button is answered with an encrypted passive reply that greys the card's buttons out.

The background task hands the Inbound to the dialog runtime with ``within=``: the replies are
queued in the outbox (channel ``wecom``, kind ``reply``) in the same transaction as the
conversation state and the event id, so a redelivered ``MsgId`` is answered once and a reply
is never lost or sent for a step that rolled back. The outbox worker delivers them with
:class:`~bot.channels.wecom.senders.WeComSender`. Steps of one member run in the order their
messages arrived. Shutdown waits for the running steps.

WeCom being unreachable never stops the service: nothing at start waits for it, and sending
failures are the outbox's to retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from bot.channels.wecom.api import WeComApi, WeComError, WeComUnreachable
from bot.channels.wecom.choices import remember, resolve
from bot.channels.wecom.crypto import (
    BadSignature,
    MalformedCiphertext,
    WeComCrypto,
    WrongReceiveId,
    decode_aes_key,
)
from bot.channels.wecom.events import (
    CHANNEL,
    MalformedXml,
    parse_envelope,
    parse_message,
    to_inbound,
    update_button_xml,
)
from bot.channels.wecom.senders import ROBOT_CHANNEL, RobotSender, WeComSender
from bot.dialogs import DialogRuntime, apology
from bot.outbox.queue import Outgoing, Recipient, enqueue
from bot.outbox.sender import Sender
from core.health import ChannelHealth
from core.http import MAX_BODY, json_error
from core.i18n import N_, translator
from core.messages import Inbound, Reply, separate_leads
from core.settings import Settings
from storage.db import transaction
from storage.models import ChatIdentity

__all__ = [
    "CALLBACK_PATH",
    "MAX_SKEW",
    "WeComChannel",
    "WeComConfig",
    "config_problems",
]

log = logging.getLogger(__name__)

CALLBACK_PATH = "/wecom/callback"
MAX_SKEW = 300
"""Seconds a callback's timestamp may be off from now; older requests are refused as replays."""
MAX_PENDING = 512
"""Steps waiting to run; beyond this a callback gets 503 and WeCom delivers it again later."""
SHUTDOWN_WAIT = 10.0
RECEIVED = N_("Received")
"""What a pressed template card shows instead of its buttons."""
_VARIABLES = (
    ("PUFA_WECOM_CORP_ID", "wecom_corp_id"),
    ("PUFA_WECOM_AGENT_ID", "wecom_agent_id"),
    ("PUFA_WECOM_SECRET", "wecom_secret"),
    ("PUFA_WECOM_TOKEN", "wecom_token"),
    ("PUFA_WECOM_AES_KEY", "wecom_aes_key"),
)


def _value(settings: Settings, field: str) -> str | None:
    raw = getattr(settings, field)
    if raw is None:
        return None
    value = raw.get_secret_value() if hasattr(raw, "get_secret_value") else str(raw)
    return value.strip() or None


def config_problems(settings: Settings) -> list[str]:
    """What keeps WeCom off: variables not set, or set to something unusable. Empty when
    WeCom can run; a list naming every missing variable when none is set is the normal
    "WeCom not configured" case (see :func:`bot.channels.wecom.status_line`)."""
    missing = [name for name, field in _VARIABLES if _value(settings, field) is None]
    if missing:
        return [f"{', '.join(missing)} not set"]
    problems = []
    agent = _value(settings, "wecom_agent_id") or ""
    if not agent.isdigit():
        problems.append(f"PUFA_WECOM_AGENT_ID must be a number (got {agent!r})")
    try:
        decode_aes_key(_value(settings, "wecom_aes_key") or "")
    except ValueError as exc:
        problems.append(f"PUFA_WECOM_AES_KEY: {exc}")
    return problems


@dataclass(frozen=True, slots=True)
class WeComConfig:
    """The WeCom settings of a self-built app, checked."""

    corp_id: str
    agent_id: int
    secret: str
    token: str
    aes_key: str
    api_base: str

    @classmethod
    def from_settings(cls, settings: Settings) -> WeComConfig:
        """Read and check the ``PUFA_WECOM_*`` settings; ``ValueError`` says what is wrong."""
        problems = config_problems(settings)
        if problems:
            raise ValueError("; ".join(problems))
        return cls(
            corp_id=_value(settings, "wecom_corp_id") or "",
            agent_id=int(_value(settings, "wecom_agent_id") or "0"),
            secret=_value(settings, "wecom_secret") or "",
            token=_value(settings, "wecom_token") or "",
            aes_key=_value(settings, "wecom_aes_key") or "",
            api_base=settings.wecom_api_base,
        )


class WeComChannel:
    """The WeCom callback, its background steps and the WeCom senders.

    Args:
        settings: The configuration (every ``PUFA_WECOM_*`` value set and valid).
        wall_clock: Seconds since the epoch, for the timestamp window (tests may pass another).
        on_queued: Called after a step queued replies (the outbox worker's wake-up, if any).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        wall_clock: Callable[[], float] = time.time,
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        self.config = WeComConfig.from_settings(settings)
        self.crypto = WeComCrypto(self.config.token, self.config.aes_key, self.config.corp_id)
        self.default_locale = settings.default_locale
        self._secret = settings.secret()
        self._wall_clock = wall_clock
        self.on_queued = on_queued
        self.runtime: DialogRuntime | None = None
        self.sessions: async_sessionmaker[AsyncSession] | None = None
        self.api: WeComApi | None = None
        self.app_sender: WeComSender | None = None
        self.robot_sender: RobotSender | None = None
        self._http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._starting = ChannelHealth()
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._probe: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(
        self, runtime: DialogRuntime, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        """Open the HTTP session and the senders; check the credentials in the background."""
        self.runtime = runtime
        self.sessions = sessions
        self._http = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        self.api = WeComApi(
            self.config.api_base, self.config.corp_id, self.config.secret, self._http
        )
        self.app_sender = WeComSender(self.api, self.config.agent_id)
        self.robot_sender = RobotSender(self.api, sessions, self._secret)
        self._probe = asyncio.create_task(self._check_credentials(), name="wecom.probe")
        log.info("wecom channel started", extra={"agent_id": self.config.agent_id})

    async def _check_credentials(self) -> None:
        assert self.api is not None
        try:
            await self.api.access_token()
        except WeComUnreachable as exc:
            log.warning(
                "WeCom is unreachable for now; messages wait in the outbox",
                extra={"error": str(exc)},
            )
        except WeComError as exc:
            log.error(
                "WeCom refused the app's credentials (check PUFA_WECOM_CORP_ID and "
                "PUFA_WECOM_SECRET)",
                extra={"errcode": exc.errcode, "errmsg": exc.errmsg},
            )
        except Exception:
            log.exception("checking the WeCom credentials failed")
        else:
            log.info("WeCom access token fetched")

    async def stop(self) -> None:
        """Wait for the running steps (then cancel stragglers) and close the HTTP session."""
        await self.idle(SHUTDOWN_WAIT)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def idle(self, timeout: float | None = None) -> bool:
        """Wait until no step is running (at most ``timeout`` seconds); whether it is so."""
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        while self._tasks:
            left = None if deadline is None else deadline - asyncio.get_running_loop().time()
            if left is not None and left <= 0:
                return False
            await asyncio.wait(set(self._tasks), timeout=left)
        return True

    @property
    def health(self) -> ChannelHealth:
        """The channel's state for ``/healthz`` (``starting`` until the first API call)."""
        return self.api.health if self.api is not None else self._starting

    @property
    def state(self) -> str:
        """For ``/healthz``: ``ok``, ``unreachable``, ``error <code>`` or ``unknown``."""
        return self.api.state if self.api is not None else "starting"

    def senders(self) -> dict[str, Sender]:
        """The outbox senders of this channel by channel name (after :meth:`start`)."""
        if self.app_sender is None or self.robot_sender is None:
            return {}
        return {CHANNEL: self.app_sender, ROBOT_CHANNEL: self.robot_sender}

    # ------------------------------------------------------------------ the callback

    def _refuse(self, request: web.Request, status: int, reason: str) -> web.Response:
        log.warning(
            "wecom callback refused",
            extra={"status": status, "reason": reason, "remote": request.remote},
        )
        return json_error(request, status)

    def _stale(self, timestamp: str) -> bool | None:
        """``None`` if not a number, else whether it is outside the window."""
        try:
            stamp = int(timestamp)
        except ValueError:
            return None
        return abs(self._wall_clock() - stamp) > MAX_SKEW

    @staticmethod
    def _params(request: web.Request, names: Sequence[str]) -> list[str] | None:
        values = [request.query.get(name, "") for name in names]
        if not all(values):
            return None
        # A "+" of base64 left unencoded in the query string arrives as a space.
        return [value.replace(" ", "+") for value in values]

    async def handle_get(self, request: web.Request) -> web.Response:
        """The URL check: answer the decrypted ``echostr``."""
        params = self._params(request, ("msg_signature", "timestamp", "nonce", "echostr"))
        if params is None:
            return self._refuse(request, 400, "missing parameters")
        msg_signature, timestamp, nonce, echostr = params
        try:
            self.crypto.check_signature(msg_signature, timestamp, nonce, echostr)
        except BadSignature:
            return self._refuse(request, 403, "bad signature")
        stale = self._stale(timestamp)
        if stale is None:
            return self._refuse(request, 400, "timestamp is not a number")
        if stale:
            return self._refuse(request, 403, "timestamp outside the window")
        try:
            plain = self.crypto.decrypt(echostr)
        except WrongReceiveId:
            return self._refuse(request, 403, "wrong receive id")
        except MalformedCiphertext as exc:
            return self._refuse(request, 400, f"bad ciphertext: {exc}")
        return web.Response(text=plain)

    async def _read_body(self, request: web.Request) -> bytes | None:
        if request.content_length is not None and request.content_length > MAX_BODY:
            return None
        body = bytearray()
        async for chunk in request.content.iter_chunked(16384):
            body.extend(chunk)
            if len(body) > MAX_BODY:
                return None
        return bytes(body)

    async def handle_post(self, request: web.Request) -> web.Response:
        """An encrypted message or event: checked, answered at once, handled after."""
        params = self._params(request, ("msg_signature", "timestamp", "nonce"))
        if params is None:
            return self._refuse(request, 400, "missing parameters")
        msg_signature, timestamp, nonce = params
        body = await self._read_body(request)
        if body is None:
            return self._refuse(request, 413, "body too large")
        try:
            encrypted = parse_envelope(body)
        except MalformedXml as exc:
            return self._refuse(request, 400, f"bad envelope: {exc}")
        try:
            self.crypto.check_signature(msg_signature, timestamp, nonce, encrypted)
        except BadSignature:
            return self._refuse(request, 403, "bad signature")
        stale = self._stale(timestamp)
        if stale is None:
            return self._refuse(request, 400, "timestamp is not a number")
        if stale:
            return self._refuse(request, 403, "timestamp outside the window")
        try:
            fields = parse_message(self.crypto.decrypt(encrypted))
        except WrongReceiveId:
            return self._refuse(request, 403, "wrong receive id")
        except (MalformedCiphertext, MalformedXml) as exc:
            return self._refuse(request, 400, f"bad message: {exc}")
        inbound = to_inbound(fields)
        if inbound is None:
            return web.Response()
        if self.runtime is None or len(self._tasks) >= MAX_PENDING:
            return json_error(request, 503)
        self._spawn(inbound)
        if inbound.payload is not None:
            return self._card_pressed_reply(inbound.external_id, nonce)
        return web.Response()

    def _card_pressed_reply(self, user: str, nonce: str) -> web.Response:
        replace = translator(self.default_locale)._(RECEIVED)
        xml = update_button_xml(user, self.config.corp_id, replace, self._wall_clock())
        reply = self.crypto.encrypt_reply(xml, nonce=nonce, timestamp=str(int(self._wall_clock())))
        return web.Response(text=reply.to_xml(), content_type="application/xml")

    # ------------------------------------------------------------------ steps

    def _spawn(self, inbound: Inbound) -> None:
        task = asyncio.create_task(self._run_in_order(inbound), name="wecom.step")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_in_order(self, inbound: Inbound) -> None:
        user = inbound.external_id
        lock, waiting = self._locks.get(user, (asyncio.Lock(), 0))
        self._locks[user] = (lock, waiting + 1)
        try:
            async with lock:
                await self.process(inbound)
        finally:
            lock, waiting = self._locks[user]
            if waiting <= 1:
                del self._locks[user]
            else:
                self._locks[user] = (lock, waiting - 1)

    async def process(self, inbound: Inbound) -> None:
        """Run one step for ``inbound`` and queue its replies (an apology if it fails)."""
        runtime, sessions = self.runtime, self.sessions
        assert runtime is not None and sessions is not None
        try:
            if inbound.payload is None and inbound.text:
                async with transaction(sessions) as session:
                    payload = await resolve(
                        session, self._secret, CHANNEL, inbound.external_id, inbound.text
                    )
                if payload is not None:
                    inbound = dataclasses.replace(inbound, text=None, payload=payload)

            async def within(session: AsyncSession, replies: list[Reply]) -> None:
                await self._queue(session, inbound, replies, runtime)

            replies = await runtime.handle(inbound, within=within)
        except Exception:
            log.exception(
                "wecom step failed",
                extra={"event_id": inbound.event_id, "user": inbound.external_id},
            )
            await self._queue_apology(inbound)
            return
        if replies and self.on_queued is not None:
            self.on_queued()

    async def _queue(
        self,
        session: AsyncSession,
        inbound: Inbound,
        replies: Sequence[Reply],
        runtime: DialogRuntime,
    ) -> None:
        if not replies:
            return
        # WeCom cannot edit a message: an edit arrives as a new one, below the lead
        replies = separate_leads(replies)
        now = runtime.clock()
        user = inbound.external_id
        locale = (
            await session.execute(
                select(col(ChatIdentity.locale)).where(
                    col(ChatIdentity.channel) == CHANNEL, col(ChatIdentity.external_id) == user
                )
            )
        ).scalar_one_or_none() or self.default_locale
        # Only options people answer by number are remembered (a free-text question's Skip
        # button is not: a typed "1" there is the answer, not the first button).
        with_buttons = [reply for reply in replies if reply.buttons and reply.numbered]
        if with_buttons:
            await remember(session, user, with_buttons[-1], now)
        recipient = Recipient(CHANNEL, user, locale)
        await enqueue(
            session,
            [
                Outgoing(
                    f"wecom:{inbound.event_id}:{i}", recipient, reply, kind="reply", private=True
                )
                for i, reply in enumerate(replies)
            ],
            now,
            secret=self._secret,
        )

    async def _queue_apology(self, inbound: Inbound) -> None:
        assert self.sessions is not None and self.runtime is not None
        reply = Reply(apology(self.default_locale))
        recipient = Recipient(CHANNEL, inbound.external_id, self.default_locale)
        try:
            async with transaction(self.sessions) as session:
                await enqueue(
                    session,
                    [Outgoing(f"wecom:{inbound.event_id}:apology", recipient, reply, kind="reply")],
                    self.runtime.clock(),
                )
        except Exception:
            log.exception("could not queue the apology", extra={"event_id": inbound.event_id})
            return
        if self.on_queued is not None:
            self.on_queued()
