"""A fake Telegram Bot API server for end-to-end tests and benchmarks.

:class:`FakeBotApi` is an aiohttp server bound to ``127.0.0.1`` on a free port. It answers
``GET|POST /bot<token>/<method>`` the way ``api.telegram.org`` does, so the real
python-telegram-bot stack (``telegram.Bot``, ``Application``, ``Updater``, ``AIORateLimiter``)
can be pointed at it with ``base_url=fake.api_base``::

    async with FakeBotApi() as fake:
        bot = telegram.Bot(fake.token, base_url=fake.api_base)
        async with bot:
            await bot.send_message(42, "你好")
        assert fake.sent_messages(42)[0]["text"] == "你好"

What it models, beyond returning well-formed ``{"ok": true, "result": ...}`` payloads:

* request bodies in every encoding Telegram accepts: query string, urlencoded form (what PTB
  sends: every non-string value JSON-encoded), multipart with files, and JSON (where
  ``reply_markup`` and friends may themselves be JSON strings);
* per-chat ``message_id`` counters shared by the user's and the bot's messages, stored messages
  that can be edited, deleted, replied to and clicked on (:meth:`FakeBotApi.make_callback_update`);
* the errors a bot meets in production, with Telegram's descriptions: bad token (401), unknown
  method (404), malformed HTML, text too long, ``BUTTON_DATA_INVALID`` (callback data over 64
  bytes), "message is not modified", "message to edit not found", blocked users (403),
  ``getUpdates`` while a webhook is set (409), a second concurrent ``getUpdates`` (409), and
  injected failures such as ``429 Too Many Requests`` with ``retry_after``
  (:meth:`FakeBotApi.fail_next`);
* faults of a network and a server under load, for the outbox's retries: a random fraction of
  calls answered ``500`` (:meth:`FakeBotApi.inject_faults`), calls that hang until the client
  gives up (:meth:`FakeBotApi.stall_next`) and connections dropped without an answer
  (:meth:`FakeBotApi.drop_next`). A faulty call never takes effect (nothing is sent), and
  every fault is counted in :attr:`FakeBotApi.faults`, so a test can prove it happened;
* long polling (``getUpdates`` waits up to ``timeout`` seconds for :meth:`FakeBotApi.queue_update`)
  and webhook delivery (:meth:`FakeBotApi.deliver_webhook`).

Every request is recorded as a :class:`Call` in :attr:`FakeBotApi.calls`; tests wait for calls
with :meth:`FakeBotApi.wait_for`, which is event driven (no polling loops).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import random
import re
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

__all__ = [
    "DEFAULT_TOKEN",
    "ApiError",
    "Call",
    "FakeBotApi",
    "MethodHandler",
    "UploadedFile",
]

JSONDict = dict[str, Any]

#: A syntactically valid token (``<bot id>:<35 characters>``) accepted by default.
DEFAULT_TOKEN = "7000000001:AAFakeTokenForPufaTests_0123456789a"

#: Limits of the real Bot API.
MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_UPLOAD_BYTES = 50 * 1024 * 1024

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

# Parameters whose form value is a plain string and must never be JSON-decoded: "123" as a
# message text stays the string "123". Every other form value is JSON-decoded when it parses.
_STRING_PARAMS = frozenset(
    {
        "action",
        "animation",
        "audio",
        "business_connection_id",
        "callback_query_id",
        "caption",
        "certificate",
        "description",
        "document",
        "emoji",
        "file_id",
        "inline_message_id",
        "ip_address",
        "language_code",
        "message_effect_id",
        "name",
        "parse_mode",
        "photo",
        "query",
        "secret_token",
        "short_description",
        "sticker",
        "text",
        "thumbnail",
        "title",
        "url",
        "video",
        "voice",
    }
)

# Parameters that are JSON objects/arrays; in a JSON body they may still arrive as a JSON string.
_JSON_PARAMS = frozenset(
    {
        "allowed_updates",
        "caption_entities",
        "commands",
        "entities",
        "link_preview_options",
        "media",
        "menu_button",
        "reply_markup",
        "reply_parameters",
        "results",
        "rights",
        "scope",
    }
)

_DEFAULT_ALLOWED_UPDATES_EXCLUDED = frozenset(
    {"chat_member", "message_reaction", "message_reaction_count"}
)

_TOKEN_RE = re.compile(r"\d+:[A-Za-z0-9_-]+")
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
_LANGUAGE_RE = re.compile(r"[a-z]{2}")
_BOT_COMMAND_IN_TEXT_RE = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{1,64})?")

_ERROR_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


class ApiError(Exception):
    """An error answer of the Bot API, raised by method handlers.

    Args:
        error_code: Telegram's ``error_code``, also used as the HTTP status.
        description: Telegram's ``description``, e.g. ``"Bad Request: chat not found"``.
        parameters: Optional ``ResponseParameters`` (``retry_after``, ``migrate_to_chat_id``).
    """

    def __init__(
        self, error_code: int, description: str, parameters: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(f"{error_code} {description}")
        self.error_code = error_code
        self.description = description
        self.parameters = dict(parameters) if parameters else None

    def payload(self) -> JSONDict:
        """The JSON body Telegram sends for this error."""
        body: JSONDict = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def _bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart request.

    Attributes:
        field: Name of the multipart part.
        filename: File name sent by the client, if any.
        content_type: MIME type sent by the client, if any.
        data: The file's bytes.
    """

    field: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class Call:
    """One request received by the fake.

    Attributes:
        method: Canonical method name (``"sendMessage"``) or the name as requested if unknown.
        params: Decoded parameters: form values JSON-decoded where they are not plain strings,
            files as :class:`UploadedFile`.
        time: :func:`time.monotonic` when the request arrived.
        token: The token in the URL.
        http_method: ``"GET"`` or ``"POST"``.
        content_type: Content type of the request body (``""`` for an empty body).
        raw: The undecoded string values of query and form fields (empty for JSON bodies).
        files: File parts by part name.
        status: HTTP status of the answer.
        response: The JSON body of the answer.
        finished: :func:`time.monotonic` when the answer was ready (before artificial latency).
    """

    method: str
    params: JSONDict
    time: float
    token: str
    http_method: str
    content_type: str
    raw: dict[str, str] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)
    status: int = 0
    response: JSONDict | None = None
    finished: float | None = None

    @property
    def ok(self) -> bool:
        """Whether the answer was ``{"ok": true, ...}``."""
        return bool(self.response and self.response.get("ok"))

    @property
    def result(self) -> Any:
        """The ``result`` of a successful answer (``None`` otherwise)."""
        return self.response.get("result") if self.response else None


#: A method implementation: receives the fake and the decoded parameters, returns the ``result``
#: (or an awaitable of it), or raises :class:`ApiError`.
MethodHandler = Callable[["FakeBotApi", JSONDict], Any]


@dataclass
class _Failure:
    method: str | None  # lower-case canonical name, None = any method
    error: ApiError
    times: int
    after: int = 0  # calls of the method let through before the failures start


@dataclass
class _Disruption:
    method: str | None  # lower-case canonical name, None = any method
    kind: str  # "timeout" or "drop"
    times: int
    seconds: float = 0.0


def _clone(value: Any) -> Any:
    """Deep copy of JSON-like data (dicts, lists, scalars); much faster than copy.deepcopy."""
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clone(v) for v in value]
    return value


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


# --------------------------------------------------------------------------------------------
# Formatting: Telegram parses HTML into plain text plus entities and rejects malformed markup.
# --------------------------------------------------------------------------------------------

_HTML_TAG_RE = re.compile(
    r"<(/?)([A-Za-z][A-Za-z0-9-]*)((?:\s+[A-Za-z_:-]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>]+))?)*)"
    r"\s*/?>"
)
_HTML_ATTR_RE = re.compile(r"([A-Za-z_:-]+)(?:\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>]+))?")
_HTML_ENTITY_RE = re.compile(r"&(#[0-9]+|#[xX][0-9A-Fa-f]+|lt|gt|amp|quot);")
_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def parse_html(text: str) -> tuple[str, list[JSONDict]]:
    """Parse Telegram-flavoured HTML into ``(plain text, entities)`` or raise :class:`ApiError`.

    Offsets and lengths are in UTF-16 code units, as in the Bot API.
    """
    prefix = "can't parse entities: "
    out: list[str] = []
    pos16 = 0
    stack: list[tuple[str, JSONDict]] = []  # (tag name, entity being built)
    entities: list[JSONDict] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "<":
            m = _HTML_TAG_RE.match(text, i)
            if m is None:
                following = re.match(r"/?([^\s>]*)", text[i + 1 :])
                name = following.group(1) if following else ""
                raise _bad_request(
                    f'{prefix}Unsupported start tag "{name}" at byte offset {_byte_offset(text, i)}'
                )
            closing, name, attr_text = m.group(1) == "/", m.group(2).lower(), m.group(3)
            if name not in _HTML_TAGS:
                kind = "end" if closing else "start"
                raise _bad_request(
                    f'{prefix}Unsupported {kind} tag "{name}" at byte offset '
                    f"{_byte_offset(text, i)}"
                )
            if closing:
                if not stack or stack[-1][0] != name:
                    expected = f'"</{stack[-1][0]}>"' if stack else "no end tag"
                    raise _bad_request(
                        f"{prefix}Unmatched end tag at byte offset {_byte_offset(text, i)}, "
                        f'expected {expected}, found "</{name}>"'
                    )
                _tag, entity = stack.pop()
                entity["length"] = pos16 - entity["offset"]
                if entity["length"] > 0 and entity["type"]:
                    entities.append(entity)
            else:
                attrs = {
                    a.group(1).lower(): html.unescape((a.group(2) or "").strip("\"'"))
                    for a in _HTML_ATTR_RE.finditer(attr_text)
                }
                entity = {"type": _HTML_TAGS[name], "offset": pos16}
                if name == "span" and attrs.get("class") != "tg-spoiler":
                    raise _bad_request(
                        f'{prefix}Tag "span" must have class "tg-spoiler" at byte offset '
                        f"{_byte_offset(text, i)}"
                    )
                if name == "a":
                    entity["url"] = attrs.get("href", "")
                if name == "blockquote" and "expandable" in attrs:
                    entity["type"] = "expandable_blockquote"
                if name == "tg-emoji":
                    entity["custom_emoji_id"] = attrs.get("emoji-id", "")
                if name == "code" and stack and stack[-1][0] == "pre":
                    language = attrs.get("class", "")
                    if language.startswith("language-"):
                        stack[-1][1]["language"] = language.removeprefix("language-")
                        entity["type"] = ""  # folded into the enclosing pre entity
                stack.append((name, entity))
            i = m.end()
            continue
        if ch == "&":
            m = _HTML_ENTITY_RE.match(text, i)
            if m is not None:
                decoded = html.unescape(m.group(0))
                out.append(decoded)
                pos16 += _utf16_len(decoded)
                i = m.end()
                continue
        if ch == ">":
            raise _bad_request(
                f'{prefix}Unsupported start tag "" at byte offset {_byte_offset(text, i)}'
            )
        out.append(ch)
        pos16 += 2 if ord(ch) > 0xFFFF else 1
        i += 1
    if stack:
        raise _bad_request(
            f'{prefix}Can\'t find end tag corresponding to start tag "{stack[-1][0]}"'
        )
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


_MD2_ALWAYS_RESERVED = frozenset("#+-={}.!")


def parse_markdown_v2(text: str) -> str:
    """Check MarkdownV2 for unescaped reserved characters and return an approximate plain text.

    Only the most common production mistake is detected: a reserved character (``. ! - = + # {
    }``) outside code and link URLs that is not escaped with a backslash. Entities are not
    computed; markup characters are simply dropped from the returned text.
    """
    out: list[str] = []
    i, n = 0, len(text)
    in_code = in_pre = in_url = False
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n:
            out.append(text[i + 1])
            i += 2
            continue
        if text.startswith("```", i) and not in_code:
            in_pre = not in_pre
            i += 3
            continue
        if ch == "`" and not in_pre:
            in_code = not in_code
        elif in_code or in_pre:
            out.append(ch)
        elif in_url:
            if ch == ")":
                in_url = False
        elif ch == "]" and text.startswith("(", i + 1):
            in_url = True
            i += 2
            continue
        elif ch in _MD2_ALWAYS_RESERVED or (ch == ">" and i > 0 and text[i - 1] != "\n"):
            raise _bad_request(
                f"can't parse entities: Character '{ch}' is reserved and must be escaped "
                "with the preceding '\\'"
            )
        elif ch not in "*_~|[":
            out.append(ch)
        i += 1
    return "".join(out)


def _format_text(text: str, parse_mode: str | None, entities: Any) -> tuple[str, list[JSONDict]]:
    """Apply ``parse_mode`` like Telegram does; explicit ``entities`` win over parse mode."""
    if entities:
        if not isinstance(entities, list):
            raise _bad_request("can't parse entities JSON object")
        return text, entities
    mode = (parse_mode or "").lower()
    if mode == "html":
        return parse_html(text)
    if mode == "markdownv2":
        return parse_markdown_v2(text), []
    if mode not in ("", "markdown"):
        raise _bad_request(f"unsupported parse_mode {parse_mode!r}")
    return text, []


def _bot_command_entities(text: str) -> list[JSONDict]:
    entities = []
    for m in _BOT_COMMAND_IN_TEXT_RE.finditer(text):
        entities.append(
            {
                "type": "bot_command",
                "offset": _utf16_len(text[: m.start()]),
                "length": _utf16_len(m.group(0)),
            }
        )
    return entities


# --------------------------------------------------------------------------------------------
# Request decoding
# --------------------------------------------------------------------------------------------


def _decode_form_value(name: str, value: str) -> Any:
    if name in _STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _normalise_json_value(name: str, value: Any) -> Any:
    if name in _JSON_PARAMS and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise _bad_request(f"can't parse {name} JSON object") from exc
    return value


def _json_body(obj: Any) -> bytes:
    """``obj`` as a compact UTF-8 JSON body (a lone surrogate, which UTF-8 cannot carry, as
    its ``\\u`` escape, as JSON allows)."""
    try:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:
        return json.dumps(obj, separators=(",", ":")).encode()


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class FakeBotApi:
    """A fake Telegram Bot API server on ``127.0.0.1`` for the real python-telegram-bot stack.

    Args:
        token: The only token accepted; others get ``401 Unauthorized`` (``404`` if malformed,
            as Telegram does).
        bot_username: The bot's ``username`` (without ``@``) returned by ``getMe`` and used in
            group command mentions.
        bot_first_name: The bot's ``first_name``.
        latency: Seconds added before every answer (after the call took effect, so a client
            that times out has still caused the side effect, as with the real API).
        strict_chats: If true, sending to a chat never seen in an update built here or
            registered with :meth:`add_chat` fails with ``Bad Request: chat not found``.
        port: Port to listen on (default: a free one), e.g. to come up where a client was
            already pointed while nothing listened.

    Use as ``async with FakeBotApi() as fake:`` or call :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_username: str = "pufa_test_bot",
        bot_first_name: str = "普法测试机器人",
        latency: float = 0.0,
        strict_chats: bool = False,
        port: int = 0,
    ) -> None:
        if not _TOKEN_RE.fullmatch(token):
            raise ValueError("token must look like '<bot id>:<secret>'")
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_username = bot_username
        self.bot_user: JSONDict = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
        }
        #: Seconds added before every answer; may be changed at any time.
        self.latency = latency
        #: Per-method extra latency (canonical method name → seconds), added to :attr:`latency`.
        self.method_latency: dict[str, float] = {}
        self.strict_chats = strict_chats
        self.port = port

        #: Every request received, in the order their answers were ready (see :class:`Call`).
        self.calls: list[Call] = []
        #: Updates not yet confirmed by a ``getUpdates`` offset.
        self.pending_updates: list[JSONDict] = []
        #: Registered webhook (``setWebhook`` parameters) or ``None``.
        self.webhook: JSONDict | None = None
        #: Bot commands by ``(scope key, language_code)``; see :meth:`commands_for`.
        self.commands: dict[tuple[str, str], list[JSONDict]] = {}
        #: Chats whose user blocked the bot: sends fail with 403.
        self.blocked_chats: set[int] = set()
        #: Other simple settings (``setMyDescription``, ``setChatMenuButton``, …) by method name.
        self.settings: dict[str, JSONDict] = {}
        #: Callback query ids issued by :meth:`make_callback_update` → answer params (or None).
        self.callback_queries: dict[str, JSONDict | None] = {}
        #: Uploaded files by ``file_id``.
        self.files: dict[str, UploadedFile] = {}
        #: Faults that happened, by kind: the HTTP status of an injected error (``"500"``,
        #: ``"429"``…), ``"timeout"`` (a call left hanging) or ``"drop"`` (connection closed).
        self.faults: Counter[str] = Counter()

        self._chats: dict[int, JSONDict] = {}
        self._messages: dict[tuple[int, int], JSONDict] = {}
        self._next_message_id: dict[int, int] = {}
        self._sent: list[JSONDict] = []
        self._next_update_id = 1
        self._next_callback_id = 1
        self._next_file_id = 1
        self._failures: list[_Failure] = []
        self._disruptions: list[_Disruption] = []
        self._error_rate: dict[str | None, tuple[float, int]] = {}
        self._random = random.Random(0)
        self._methods: dict[str, tuple[str, MethodHandler]] = {}
        self._calls_event = asyncio.Event()
        self._updates_event = asyncio.Event()
        self._poll_generation = 0
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self._url: str | None = None
        self._register_builtin_methods()

    # ---------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` once started."""
        if self._url is None:
            raise RuntimeError("FakeBotApi is not started")
        return self._url

    @property
    def api_base(self) -> str:
        """``<url>/bot``: the ``base_url`` for PTB and ``PUFA_TELEGRAM_API_BASE``."""
        return f"{self.url}/bot"

    @property
    def file_base(self) -> str:
        """``<url>/file/bot``: the ``base_file_url`` for PTB."""
        return f"{self.url}/file/bot"

    async def start(self) -> str:
        """Start serving on a free port of ``127.0.0.1``; return :attr:`url`."""
        if self._runner is not None:
            return self.url
        app = web.Application(client_max_size=MAX_UPLOAD_BYTES + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None
        )
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        site = web.SockSite(runner, sock)
        await site.start()
        self._runner = runner
        self._closing = False
        port = sock.getsockname()[1]
        self._url = f"http://127.0.0.1:{port}"
        return self._url

    async def stop(self) -> None:
        """Wake pending long polls (they answer ``[]``) and shut the server down."""
        self._closing = True
        self._pulse_updates()
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBotApi:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ---------------------------------------------------------------- configuration

    def register_method(self, name: str, handler: MethodHandler) -> None:
        """Add or replace the implementation of a Bot API method (names are case-insensitive)."""
        self._methods[name.lower()] = (name, handler)

    def fail_next(
        self,
        method: str | None = None,
        *,
        error_code: int = 429,
        description: str | None = None,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
        times: int = 1,
        after: int = 0,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (any method if ``None``) fail, once
        ``after`` calls of it have gone through.

        The call is recorded but has no effect. ``429`` defaults to ``retry_after=1`` and the
        description ``"Too Many Requests: retry after N"``, as Telegram sends it.
        """
        parameters: JSONDict = {}
        if error_code == 429:
            retry_after = 1 if retry_after is None else retry_after
            description = description or f"Too Many Requests: retry after {retry_after}"
        if retry_after is not None:
            parameters["retry_after"] = retry_after
        if migrate_to_chat_id is not None:
            parameters["migrate_to_chat_id"] = migrate_to_chat_id
        description = description or _ERROR_DESCRIPTIONS.get(error_code, "Error")
        error = ApiError(error_code, description, parameters or None)
        self._failures.append(
            _Failure(method.lower() if method else None, error, max(1, times), max(0, after))
        )

    def inject_429(
        self, method: str | None = None, *, retry_after: int = 1, times: int = 1
    ) -> None:
        """Shorthand for ``fail_next(method, error_code=429, retry_after=retry_after)``."""
        self.fail_next(method, error_code=429, retry_after=retry_after, times=times)

    def inject_faults(
        self,
        method: str | None = "sendMessage",
        *,
        error_rate: float,
        error_code: int = 500,
        seed: int = 0,
    ) -> None:
        """Answer a random ``error_rate`` of the calls of ``method`` (any if ``None``) with
        ``error_code`` (``Internal Server Error`` by default), reproducibly for a ``seed``;
        ``error_rate=0`` stops. A faulty call has no effect; each is counted in :attr:`faults`.
        """
        if not 0 <= error_rate <= 1:
            raise ValueError("error_rate is a fraction between 0 and 1")
        key = method.lower() if method else None
        self._random.seed(seed)
        if error_rate == 0:
            self._error_rate.pop(key, None)
        else:
            self._error_rate[key] = (error_rate, error_code)

    def stall_next(
        self, method: str | None = "sendMessage", *, times: int = 1, seconds: float = 60.0
    ) -> None:
        """Leave the next ``times`` calls of ``method`` hanging for ``seconds`` without any
        effect, as a server that never answers: the client times out (``"timeout"`` fault)."""
        key = method.lower() if method else None
        self._disruptions.append(_Disruption(key, "timeout", max(1, times), seconds))

    def drop_next(self, method: str | None = "sendMessage", *, times: int = 1) -> None:
        """Close the connection of the next ``times`` calls of ``method`` without answering
        and without effect (``"drop"`` fault)."""
        key = method.lower() if method else None
        self._disruptions.append(_Disruption(key, "drop", max(1, times)))

    def add_chat(self, chat: Mapping[str, Any]) -> JSONDict:
        """Register a Chat object (``id``, ``type``, ``title``/``first_name``…); return it."""
        stored = dict(chat)
        self._chats[int(stored["id"])] = stored
        return stored

    def block(self, chat_id: int) -> None:
        """Make sends to ``chat_id`` fail with ``403 Forbidden: bot was blocked by the user``."""
        self.blocked_chats.add(chat_id)

    # ---------------------------------------------------------------- inspection

    def calls_to(self, method: str) -> list[Call]:
        """Recorded calls of one method (case-insensitive)."""
        name = method.lower()
        return [c for c in self.calls if c.method.lower() == name]

    def sent_messages(self, chat_id: int | None = None) -> list[JSONDict]:
        """Messages the bot sent (``sendMessage``, ``sendPhoto``, ``sendDocument``…), oldest first.

        Each is a copy of the Message object as returned to the bot when sent; later edits are
        visible through :meth:`message`.
        """
        return [_clone(m) for m in self._sent if chat_id is None or m["chat"]["id"] == chat_id]

    def last_sent(self, chat_id: int | None = None) -> JSONDict:
        """The most recent message the bot sent (to ``chat_id``); ``LookupError`` if none."""
        sent = self.sent_messages(chat_id)
        if not sent:
            where = "" if chat_id is None else f" to {chat_id}"
            raise LookupError(f"the bot sent no message{where}")
        return sent[-1]

    def message(self, chat_id: int, message_id: int) -> JSONDict | None:
        """Current state of a stored message (after edits), or ``None`` if unknown or deleted."""
        stored = self._messages.get((chat_id, message_id))
        return _clone(stored) if stored is not None else None

    def commands_for(
        self, language_code: str = "", scope: Mapping[str, Any] | None = None
    ) -> list[JSONDict] | None:
        """Commands set for exactly this scope and language (``None`` if never set)."""
        return self.commands.get((self._scope_key(scope), language_code))

    def mark(self) -> int:
        """Current number of recorded calls, to pass as ``since`` to :meth:`wait_for`."""
        return len(self.calls)

    def clear(self) -> None:
        """Forget recorded calls and the sent-message log (state such as messages stays)."""
        self.calls.clear()
        self._sent.clear()

    async def wait_for(
        self,
        match: str | Callable[[Call], bool],
        timeout: float = 5.0,
        *,
        since: int = 0,
        **params: Any,
    ) -> Call:
        """Wait until a recorded call (index ``>= since``) matches; return it.

        Args:
            match: A method name (case-insensitive) or a predicate over :class:`Call`.
            timeout: Seconds to wait before raising :class:`TimeoutError`.
            since: Only consider ``calls[since:]`` (see :meth:`mark`).
            **params: Additionally require ``call.params[key] == value``.
        """
        (call,) = await self.wait_for_count(match, 1, timeout, since=since, **params)
        return call

    async def wait_for_count(
        self,
        match: str | Callable[[Call], bool],
        count: int,
        timeout: float = 5.0,
        *,
        since: int = 0,
        **params: Any,
    ) -> list[Call]:
        """Wait until ``count`` recorded calls (index ``>= since``) match; return the first ones.

        Same arguments as :meth:`wait_for`. Event driven: it wakes only when a call is recorded.
        """
        predicate = self._predicate(match, params)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        found: list[Call] = []
        index = since
        while True:
            calls = self.calls
            while index < len(calls):
                if predicate(calls[index]):
                    found.append(calls[index])
                index += 1
            if len(found) >= count:
                return found[:count]
            remaining = deadline - loop.time()
            if remaining <= 0:
                seen = ", ".join(c.method for c in self.calls[since:][-20:]) or "none"
                raise TimeoutError(
                    f"waited {timeout}s for {count} call(s) matching {match!r} {params or ''}; "
                    f"got {len(found)}; last calls: {seen}"
                )
            event = self._calls_event
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    @staticmethod
    def _predicate(
        match: str | Callable[[Call], bool], params: Mapping[str, Any]
    ) -> Callable[[Call], bool]:
        if isinstance(match, str):
            name = match.lower()

            def base(call: Call) -> bool:
                return call.method.lower() == name

        else:
            base = match
        if not params:
            return base
        missing = object()
        return lambda call: (
            base(call) and all(call.params.get(k, missing) == v for k, v in params.items())
        )

    # ---------------------------------------------------------------- inbound updates

    def _take_update_id(self, update_id: int | None) -> int:
        if update_id is None:
            update_id = self._next_update_id
        self._next_update_id = max(self._next_update_id, update_id + 1)
        return update_id

    def _take_message_id(self, chat_id: int) -> int:
        message_id = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = message_id + 1
        return message_id

    def make_user(
        self,
        user_id: int,
        *,
        first_name: str = "测试用户",
        username: str | None = None,
        language_code: str | None = "zh-hans",
    ) -> JSONDict:
        """A User object for a (non-bot) person."""
        user: JSONDict = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        return user

    def make_message_update(
        self,
        update_id: int | None,
        user_id: int,
        chat_id: int | None = None,
        text: str = "",
        *,
        language_code: str | None = "zh-hans",
        chat_type: str = "private",
        first_name: str = "测试用户",
        username: str | None = None,
        chat_title: str = "测试群",
        address_bot: bool | None = None,
        reply_to_message_id: int | None = None,
        date: int | None = None,
    ) -> JSONDict:
        """Build a ``message`` update as Telegram would send it, and remember the message.

        Args:
            update_id: ``None`` for the next free id.
            user_id: Sender's user id.
            chat_id: Defaults to ``user_id`` (a private chat).
            text: Message text. ``bot_command`` entities are added for every ``/command``
                (offsets in UTF-16 units).
            language_code: The sender's client language, e.g. ``"zh-hans"``, ``"en"``, ``None``.
            chat_type: ``"private"``, ``"group"``, ``"supergroup"`` or ``"channel"``.
            address_bot: In groups a command picked from the menu reads ``/cmd@botname``; when
                true (the default in groups) a leading command without ``@`` gets
                ``@<bot_username>`` appended.
            reply_to_message_id: Make the message a reply to a stored message of that chat.
        """
        if chat_id is None:
            chat_id = user_id
        if chat_type == "private" and chat_id != user_id:
            raise ValueError("in a private chat chat_id equals user_id")
        if address_bot is None:
            address_bot = chat_type in ("group", "supergroup")
        if address_bot and text.startswith("/"):
            head, sep, tail = text.partition(" ")
            if "@" not in head:
                text = f"{head}@{self.bot_username}{sep}{tail}"
        user = self.make_user(
            user_id, first_name=first_name, username=username, language_code=language_code
        )
        chat = self._chat_for_update(chat_id, chat_type, user, chat_title)
        message: JSONDict = {
            "message_id": self._take_message_id(chat_id),
            "from": user,
            "chat": chat,
            "date": int(time.time()) if date is None else date,
            "text": text,
        }
        entities = _bot_command_entities(text)
        if entities:
            message["entities"] = entities
        if reply_to_message_id is not None:
            replied = self._messages.get((chat_id, reply_to_message_id))
            if replied is None:
                raise LookupError(f"no message {reply_to_message_id} in chat {chat_id}")
            message["reply_to_message"] = self._shallow_message(replied)
        self._messages[(chat_id, message["message_id"])] = message
        return {"update_id": self._take_update_id(update_id), "message": _clone(message)}

    def make_callback_update(
        self,
        update_id: int | None,
        user_id: int,
        chat_id: int,
        message_id: int,
        data: str,
        *,
        language_code: str | None = "zh-hans",
        first_name: str = "测试用户",
        username: str | None = None,
        message: Mapping[str, Any] | None = None,
    ) -> JSONDict:
        """Build a ``callback_query`` update: ``user_id`` pressed a button of a stored message.

        The ``message`` is the bot's stored message ``(chat_id, message_id)`` in its current
        (possibly edited) state; pass ``message`` to use another Message object.
        ``LookupError`` if the message is unknown. The query id is remembered, so
        ``answerCallbackQuery`` with any other id fails as with Telegram.
        """
        if message is None:
            stored = self._messages.get((chat_id, message_id))
            if stored is None:
                raise LookupError(
                    f"no message {message_id} in chat {chat_id}; the bot must have sent it"
                )
            message = stored
        query_id = f"{user_id}{self._next_callback_id:010d}"
        self._next_callback_id += 1
        self.callback_queries[query_id] = None
        query: JSONDict = {
            "id": query_id,
            "from": self.make_user(
                user_id, first_name=first_name, username=username, language_code=language_code
            ),
            "chat_instance": str(abs(chat_id) * 7919 % 10**12),
            "message": _clone(dict(message)),
            "data": data,
        }
        return {"update_id": self._take_update_id(update_id), "callback_query": query}

    def queue_update(self, update: Mapping[str, Any]) -> JSONDict:
        """Queue an update for ``getUpdates`` (wakes a waiting long poll); return it."""
        stored = _clone(dict(update))
        if "update_id" not in stored:
            stored["update_id"] = self._take_update_id(None)
        else:
            self._take_update_id(int(stored["update_id"]))
        self.pending_updates.append(stored)
        self._pulse_updates()
        return stored

    async def deliver_webhook(self, update: Mapping[str, Any], *, timeout: float = 30.0) -> int:
        """POST ``update`` to the registered webhook (loopback URLs only); return the status.

        Sends ``X-Telegram-Bot-Api-Secret-Token`` when ``setWebhook`` set a secret.
        """
        if not self.webhook or not self.webhook.get("url"):
            raise RuntimeError("no webhook is set")
        url = str(self.webhook["url"])
        if urlsplit(url).hostname not in _LOOPBACK_HOSTS:
            raise ValueError(f"refusing to deliver to a non-loopback webhook: {url}")
        headers = {"Content-Type": "application/json"}
        if self.webhook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = str(self.webhook["secret_token"])
        if self._client is None:
            self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))
        async with self._client.post(url, data=_json_body(dict(update)), headers=headers) as r:
            await r.read()
            return r.status

    # ---------------------------------------------------------------- HTTP handling

    def _pulse_updates(self) -> None:
        self._updates_event.set()
        self._updates_event = asyncio.Event()

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        self._calls_event.set()
        self._calls_event = asyncio.Event()

    async def _read_request(
        self, request: web.Request
    ) -> tuple[JSONDict, dict[str, str], dict[str, UploadedFile]]:
        raw: dict[str, str] = dict(request.query)
        files: dict[str, UploadedFile] = {}
        json_body: JSONDict = {}
        if request.method == "POST" and request.body_exists:
            ctype = request.content_type
            if ctype == "application/json":
                try:
                    body = await request.json()
                except ValueError as exc:
                    raise _bad_request("can't parse JSON request body") from exc
                if not isinstance(body, dict):
                    raise _bad_request("request body must be a JSON object")
                json_body = body
            elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        files[key] = UploadedFile(
                            key, value.filename, value.content_type, value.file.read()
                        )
                    else:
                        raw[key] = str(value)
        params: JSONDict = {k: _decode_form_value(k, v) for k, v in raw.items()}
        for key, value in json_body.items():
            params[key] = _normalise_json_value(key, value)
        for key, value in list(params.items()):
            if isinstance(value, str) and value.startswith("attach://"):
                part = value.removeprefix("attach://")
                if part in files:
                    params[key] = files[part]
        for key, upload in files.items():
            params.setdefault(key, upload)
        return params, raw, files

    def _check_token(self, token: str) -> None:
        if token == self.token:
            return
        if _TOKEN_RE.fullmatch(token):
            raise ApiError(401, "Unauthorized")
        raise ApiError(404, "Not Found")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        requested = request.match_info["method"]
        known = self._methods.get(requested.lower())
        call = Call(
            method=known[0] if known else requested,
            params={},
            time=time.monotonic(),
            token=token,
            http_method=request.method,
            content_type=request.content_type if request.body_exists else "",
        )
        try:
            self._check_token(token)
            if known is None:
                raise ApiError(404, "Not Found: method not found")
            call.params, call.raw, call.files = await self._read_request(request)
            disruption = self._take_disruption(call.method)
            if disruption is not None:
                return await self._disrupt(request, call, disruption)
            failure = self._take_failure(call.method) or self._random_failure(call.method)
            if failure is not None:
                self.faults[str(failure.error_code)] += 1
                raise failure
            result = known[1](self, call.params)
            if isinstance(result, Awaitable):
                result = await result
            status, body = 200, {"ok": True, "result": result}
        except ApiError as err:
            status, body = err.error_code, err.payload()
        call.status, call.response, call.finished = status, body, time.monotonic()
        self._record(call)
        delay = self.latency + self.method_latency.get(call.method, 0.0)
        if delay > 0:
            await asyncio.sleep(delay)
        return web.Response(
            status=status, body=_json_body(body), content_type="application/json", charset="utf-8"
        )

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response(ApiError(401, "Unauthorized").payload(), status=401)
        file_id = request.match_info["path"].rsplit("/", 1)[-1]
        upload = self.files.get(file_id)
        if upload is None:
            return web.json_response(ApiError(404, "Not Found").payload(), status=404)
        return web.Response(
            body=upload.data, content_type=upload.content_type or "application/octet-stream"
        )

    async def _disrupt(
        self, request: web.Request, call: Call, disruption: _Disruption
    ) -> web.StreamResponse:
        """Answer nothing: hang (the client times out) or drop the connection."""
        self.faults[disruption.kind] += 1
        call.finished = time.monotonic()
        self._record(call)
        if disruption.kind == "drop":
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)
        await asyncio.sleep(disruption.seconds)
        error = ApiError(504, "Gateway Timeout")
        call.status, call.response = error.error_code, error.payload()
        return web.Response(
            status=error.error_code,
            body=_json_body(error.payload()),
            content_type="application/json",
            charset="utf-8",
        )

    def _take_disruption(self, method: str) -> _Disruption | None:
        name = method.lower()
        for disruption in self._disruptions:
            if disruption.method is None or disruption.method == name:
                disruption.times -= 1
                if disruption.times <= 0:
                    self._disruptions.remove(disruption)
                return disruption
        return None

    def _random_failure(self, method: str) -> ApiError | None:
        found = self._error_rate.get(method.lower()) or self._error_rate.get(None)
        if found is None:
            return None
        rate, code = found
        if self._random.random() >= rate:
            return None
        return ApiError(code, _ERROR_DESCRIPTIONS.get(code, "Internal Server Error"))

    def _take_failure(self, method: str) -> ApiError | None:
        name = method.lower()
        for failure in self._failures:
            if failure.method is None or failure.method == name:
                if failure.after > 0:
                    failure.after -= 1
                    return None
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                return failure.error
        return None

    # ---------------------------------------------------------------- state helpers

    @staticmethod
    def _scope_key(scope: Mapping[str, Any] | None) -> str:
        return json.dumps(dict(scope) if scope else {"type": "default"}, sort_keys=True)

    def _chat_for_update(
        self, chat_id: int, chat_type: str, user: JSONDict, title: str
    ) -> JSONDict:
        if chat_type == "private":
            chat = {"id": chat_id, "type": "private", "first_name": user["first_name"]}
            if "username" in user:
                chat["username"] = user["username"]
        elif chat_type in ("group", "supergroup", "channel"):
            chat = {"id": chat_id, "type": chat_type, "title": title}
        else:
            raise ValueError(f"unknown chat_type {chat_type!r}")
        self._chats.setdefault(chat_id, chat)
        return dict(self._chats[chat_id])

    def _resolve_chat(self, params: JSONDict) -> JSONDict:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise _bad_request("chat_id is empty")
        if isinstance(chat_id, str):
            try:
                chat_id = int(chat_id)
            except ValueError:
                raise _bad_request("chat not found") from None
        if not isinstance(chat_id, int) or isinstance(chat_id, bool):
            raise _bad_request("chat not found")
        chat = self._chats.get(chat_id)
        if chat is None:
            if self.strict_chats:
                raise _bad_request("chat not found")
            if chat_id > 0:
                chat = {"id": chat_id, "type": "private", "first_name": f"User {chat_id}"}
            elif str(chat_id).startswith("-100"):
                chat = {"id": chat_id, "type": "supergroup", "title": f"Chat {chat_id}"}
            else:
                chat = {"id": chat_id, "type": "group", "title": f"Chat {chat_id}"}
            self._chats[chat_id] = chat
        if chat_id in self.blocked_chats:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return dict(chat)

    @staticmethod
    def _check_markup(markup: Any) -> JSONDict | None:
        if markup is None or markup == "":
            return None
        if not isinstance(markup, dict):
            raise _bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _bad_request(
                    'field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays'
                )
            for row in rows:
                for button in row:
                    if not isinstance(button, dict) or not button.get("text"):
                        raise _bad_request('can\'t find field "text"')
                    if "callback_data" in button:
                        data = button["callback_data"]
                        size = len(str(data).encode("utf-8"))
                        if not 1 <= size <= MAX_CALLBACK_DATA_BYTES:
                            raise _bad_request("BUTTON_DATA_INVALID")
                    elif not any(
                        k in button
                        for k in (
                            "url",
                            "web_app",
                            "login_url",
                            "switch_inline_query",
                            "switch_inline_query_current_chat",
                            "switch_inline_query_chosen_chat",
                            "copy_text",
                            "callback_game",
                            "pay",
                        )
                    ):
                        raise _bad_request("text buttons are unallowed in the inline keyboard")
        elif not any(k in markup for k in ("keyboard", "remove_keyboard", "force_reply")):
            raise _bad_request("can't parse reply keyboard markup JSON object")
        return markup

    @staticmethod
    def _shallow_message(message: JSONDict) -> JSONDict:
        return {k: _clone(v) for k, v in message.items() if k != "reply_to_message"}

    def _new_bot_message(self, params: JSONDict, chat: JSONDict) -> JSONDict:
        markup = self._check_markup(params.get("reply_markup"))
        message: JSONDict = {
            "message_id": 0,
            "from": dict(self.bot_user),
            "chat": chat,
            "date": int(time.time()),
        }
        reply_to = params.get("reply_to_message_id")
        reply_parameters = params.get("reply_parameters")
        allow_missing = bool(params.get("allow_sending_without_reply"))
        if isinstance(reply_parameters, dict):
            reply_to = reply_parameters.get("message_id")
            allow_missing = bool(reply_parameters.get("allow_sending_without_reply"))
        if reply_to is not None:
            replied = self._messages.get((chat["id"], int(reply_to)))
            if replied is not None:
                message["reply_to_message"] = self._shallow_message(replied)
            elif not allow_missing:
                raise _bad_request("message to be replied not found")
        if params.get("message_thread_id") is not None:
            message["message_thread_id"] = params["message_thread_id"]
        if markup is not None and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        return message

    def _store_sent(self, message: JSONDict) -> JSONDict:
        chat_id = message["chat"]["id"]
        message["message_id"] = self._take_message_id(chat_id)
        self._messages[(chat_id, message["message_id"])] = message
        self._sent.append(_clone(message))
        return _clone(message)

    def _editable(self, params: JSONDict) -> JSONDict | None:
        """The stored message addressed by an edit call; ``None`` for inline messages."""
        if params.get("inline_message_id"):
            return None
        chat_id, message_id = params.get("chat_id"), params.get("message_id")
        if chat_id is None or chat_id == "":
            raise _bad_request("chat_id is empty")
        if message_id is None:
            raise _bad_request("message identifier is not specified")
        try:
            key = (int(chat_id), int(message_id))
        except (TypeError, ValueError):
            raise _bad_request("chat not found") from None
        message = self._messages.get(key)
        if message is None:
            raise _bad_request("message to edit not found")
        if message.get("from", {}).get("id") != self.bot_id:
            raise _bad_request("message can't be edited")
        return message

    def _new_file_id(self, kind: str) -> str:
        file_id = f"fake-{kind}-{self._next_file_id:08d}"
        self._next_file_id += 1
        return file_id

    def _file_from_param(self, value: Any, kind: str, name: str) -> tuple[str, UploadedFile | None]:
        if isinstance(value, UploadedFile):
            file_id = self._new_file_id(kind)
            self.files[file_id] = value
            return file_id, value
        if isinstance(value, str) and value:
            if value in self.files:
                return value, self.files[value]
            return value, None  # a URL or a file_id from elsewhere
        raise _bad_request(f"there is no {name} in the request")

    # ---------------------------------------------------------------- method implementations

    def _register_builtin_methods(self) -> None:
        methods: dict[str, MethodHandler] = {
            "getMe": FakeBotApi._m_get_me,
            "logOut": FakeBotApi._m_true,
            "close": FakeBotApi._m_true,
            "setMyCommands": FakeBotApi._m_set_my_commands,
            "deleteMyCommands": FakeBotApi._m_delete_my_commands,
            "getMyCommands": FakeBotApi._m_get_my_commands,
            "setWebhook": FakeBotApi._m_set_webhook,
            "deleteWebhook": FakeBotApi._m_delete_webhook,
            "getWebhookInfo": FakeBotApi._m_get_webhook_info,
            "getUpdates": FakeBotApi._m_get_updates,
            "sendMessage": FakeBotApi._m_send_message,
            "sendPhoto": FakeBotApi._m_send_photo,
            "sendDocument": FakeBotApi._m_send_document,
            "editMessageText": FakeBotApi._m_edit_message_text,
            "editMessageReplyMarkup": FakeBotApi._m_edit_message_reply_markup,
            "deleteMessage": FakeBotApi._m_delete_message,
            "answerCallbackQuery": FakeBotApi._m_answer_callback_query,
            "sendChatAction": FakeBotApi._m_send_chat_action,
            "getFile": FakeBotApi._m_get_file,
        }
        for name in (
            "setMyDescription",
            "setMyShortDescription",
            "setMyName",
            "setChatMenuButton",
            "setMyDefaultAdministratorRights",
        ):
            methods[name] = FakeBotApi._m_store_setting(name)
        for name, handler in methods.items():
            self.register_method(name, handler)

    def _m_true(self, params: JSONDict) -> bool:
        return True

    @staticmethod
    def _m_store_setting(name: str) -> MethodHandler:
        def handler(api: FakeBotApi, params: JSONDict) -> bool:
            api.settings[name] = dict(params)
            return True

        return handler

    def _m_get_me(self, params: JSONDict) -> JSONDict:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _commands_key(self, params: JSONDict) -> tuple[str, str]:
        scope = params.get("scope")
        if scope is not None and not (isinstance(scope, dict) and scope.get("type")):
            raise _bad_request("can't parse BotCommandScope JSON object")
        language = params.get("language_code") or ""
        if language and not _LANGUAGE_RE.fullmatch(language):
            raise _bad_request("invalid language code specified")
        return self._scope_key(scope), language

    def _m_set_my_commands(self, params: JSONDict) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad_request("can't parse commands JSON object")
        if len(commands) > 100:
            raise _bad_request("too many commands specified")
        for command in commands:
            if not isinstance(command, dict):
                raise _bad_request("can't parse BotCommand JSON object")
            if not _COMMAND_RE.fullmatch(str(command.get("command", ""))):
                raise _bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise _bad_request("command description must be non-empty")
        key = self._commands_key(params)
        if commands:
            self.commands[key] = [
                {"command": c["command"], "description": c["description"]} for c in commands
            ]
        else:
            self.commands.pop(key, None)
        return True

    def _m_delete_my_commands(self, params: JSONDict) -> bool:
        self.commands.pop(self._commands_key(params), None)
        return True

    def _m_get_my_commands(self, params: JSONDict) -> list[JSONDict]:
        return _clone(self.commands.get(self._commands_key(params), []))

    def _m_set_webhook(self, params: JSONDict) -> bool:
        url = params.get("url")
        if url is None:
            raise _bad_request('parameter "url" is required')
        if url == "":
            if params.get("drop_pending_updates"):
                self.pending_updates.clear()
            self.webhook = None
            return True
        parts = urlsplit(str(url))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _bad_request("bad webhook: invalid URL")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise _bad_request("bad webhook: secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            self.pending_updates.clear()
        self.webhook = {k: v for k, v in params.items() if not isinstance(v, UploadedFile)}
        self._pulse_updates()  # a pending getUpdates now conflicts
        return True

    def _m_delete_webhook(self, params: JSONDict) -> bool:
        if params.get("drop_pending_updates"):
            self.pending_updates.clear()
        self.webhook = None
        return True

    def _m_get_webhook_info(self, params: JSONDict) -> JSONDict:
        info: JSONDict = {
            "url": "",
            "has_custom_certificate": False,
            "pending_update_count": len(self.pending_updates),
        }
        if self.webhook:
            info["url"] = self.webhook["url"]
            info["max_connections"] = self.webhook.get("max_connections", 40)
            info["ip_address"] = "127.0.0.1"
            if self.webhook.get("allowed_updates"):
                info["allowed_updates"] = self.webhook["allowed_updates"]
        return info

    def _select_updates(self, offset: int | None, limit: int, allowed: Any) -> list[JSONDict]:
        if offset is not None:
            if offset < 0:
                self.pending_updates[:] = self.pending_updates[offset:]
            else:
                self.pending_updates[:] = [
                    u for u in self.pending_updates if u["update_id"] >= offset
                ]
        selected = []
        for update in self.pending_updates:
            kind = next((k for k in update if k != "update_id"), "")
            if allowed:
                if kind not in allowed:
                    continue
            elif kind in _DEFAULT_ALLOWED_UPDATES_EXCLUDED:
                continue
            selected.append(_clone(update))
            if len(selected) >= limit:
                break
        return selected

    async def _m_get_updates(self, params: JSONDict) -> list[JSONDict]:
        if self.webhook:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = params.get("offset")
        offset = int(offset) if offset is not None else None
        limit = max(1, min(100, int(params.get("limit") or 100)))
        timeout = max(0.0, float(params.get("timeout") or 0))
        allowed = params.get("allowed_updates")
        self._poll_generation += 1
        generation = self._poll_generation
        self._pulse_updates()  # an older waiting getUpdates is now terminated
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            selected = self._select_updates(offset, limit, allowed)
            if selected or self._closing:
                return selected
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            event = self._updates_event
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                return []
            if self._closing:
                return []
            if generation != self._poll_generation:
                raise ApiError(409, _ERROR_DESCRIPTIONS[409])
            if self.webhook:
                raise ApiError(
                    409,
                    "Conflict: can't use getUpdates method while webhook is "
                    "active; use deleteWebhook to delete the webhook first",
                )

    def _m_send_message(self, params: JSONDict) -> JSONDict:
        chat = self._resolve_chat(params)
        text = params.get("text")
        if text is None or str(text).strip() == "":
            raise _bad_request("message text is empty")
        plain, entities = _format_text(str(text), params.get("parse_mode"), params.get("entities"))
        if not plain.strip():
            raise _bad_request("message text is empty")
        if len(plain) > MAX_TEXT_LENGTH:
            raise _bad_request("message is too long")
        message = self._new_bot_message(params, chat)
        message["text"] = plain
        if entities:
            message["entities"] = entities
        if params.get("link_preview_options"):
            message["link_preview_options"] = params["link_preview_options"]
        return self._store_sent(message)

    def _apply_caption(self, message: JSONDict, params: JSONDict) -> None:
        caption = params.get("caption")
        if caption:
            plain, entities = _format_text(
                str(caption), params.get("parse_mode"), params.get("caption_entities")
            )
            if len(plain) > MAX_CAPTION_LENGTH:
                raise _bad_request("message caption is too long")
            message["caption"] = plain
            if entities:
                message["caption_entities"] = entities

    def _m_send_photo(self, params: JSONDict) -> JSONDict:
        chat = self._resolve_chat(params)
        file_id, upload = self._file_from_param(params.get("photo"), "photo", "photo")
        message = self._new_bot_message(params, chat)
        size = len(upload.data) if upload else 0
        message["photo"] = [
            {
                "file_id": f"{file_id}-s",
                "file_unique_id": f"{file_id}-us",
                "width": 90,
                "height": 90,
                "file_size": max(1, size // 10),
            },
            {
                "file_id": file_id,
                "file_unique_id": f"u{file_id}",
                "width": 800,
                "height": 800,
                "file_size": size,
            },
        ]
        self._apply_caption(message, params)
        return self._store_sent(message)

    def _m_send_document(self, params: JSONDict) -> JSONDict:
        chat = self._resolve_chat(params)
        file_id, upload = self._file_from_param(params.get("document"), "document", "document")
        message = self._new_bot_message(params, chat)
        document: JSONDict = {"file_id": file_id, "file_unique_id": f"u{file_id}"}
        if upload is not None:
            document["file_name"] = upload.filename or "file"
            document["mime_type"] = upload.content_type or "application/octet-stream"
            document["file_size"] = len(upload.data)
        message["document"] = document
        self._apply_caption(message, params)
        return self._store_sent(message)

    def _m_edit_message_text(self, params: JSONDict) -> JSONDict | bool:
        text = params.get("text")
        if text is None or str(text).strip() == "":
            raise _bad_request("message text is empty")
        plain, entities = _format_text(str(text), params.get("parse_mode"), params.get("entities"))
        if len(plain) > MAX_TEXT_LENGTH:
            raise _bad_request("MESSAGE_TOO_LONG")
        markup = self._check_markup(params.get("reply_markup"))
        message = self._editable(params)
        if message is None:
            return True
        if "text" not in message:
            raise _bad_request("there is no text in the message to edit")
        new_markup = markup if markup and "inline_keyboard" in markup else None
        if (
            message.get("text") == plain
            and message.get("entities", []) == entities
            and message.get("reply_markup") == new_markup
        ):
            raise _bad_request(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        message["text"] = plain
        message.pop("entities", None)
        if entities:
            message["entities"] = entities
        message.pop("reply_markup", None)
        if new_markup is not None:
            message["reply_markup"] = new_markup
        message["edit_date"] = int(time.time())
        return _clone(message)

    def _m_edit_message_reply_markup(self, params: JSONDict) -> JSONDict | bool:
        markup = self._check_markup(params.get("reply_markup"))
        message = self._editable(params)
        if message is None:
            return True
        new_markup = markup if markup and "inline_keyboard" in markup else None
        if message.get("reply_markup") == new_markup:
            raise _bad_request(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        message.pop("reply_markup", None)
        if new_markup is not None:
            message["reply_markup"] = new_markup
        message["edit_date"] = int(time.time())
        return _clone(message)

    def _m_delete_message(self, params: JSONDict) -> bool:
        try:
            key = (int(params["chat_id"]), int(params["message_id"]))
        except (KeyError, TypeError, ValueError):
            raise _bad_request("message identifier is not specified") from None
        if self._messages.pop(key, None) is None:
            raise _bad_request("message to delete not found")
        return True

    def _m_answer_callback_query(self, params: JSONDict) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        if query_id not in self.callback_queries:
            raise _bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        if len(str(params.get("text") or "")) > 200:
            raise _bad_request("MESSAGE_TOO_LONG")
        self.callback_queries[query_id] = dict(params)
        return True

    def _m_send_chat_action(self, params: JSONDict) -> bool:
        self._resolve_chat(params)
        if not params.get("action"):
            raise _bad_request("action is empty")
        return True

    def _m_get_file(self, params: JSONDict) -> JSONDict:
        file_id = str(params.get("file_id") or "")
        upload = self.files.get(file_id)
        if upload is None:
            raise _bad_request("invalid file_id")
        return {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_size": len(upload.data),
            "file_path": f"files/{file_id}",
        }
