"""A fake WeCom server API, and WeCom's side of the callback, for end-to-end tests.

:class:`FakeWeComApi` is an aiohttp server on ``127.0.0.1`` answering what pufa calls on
``qyapi.weixin.qq.com``, the way WeCom does (HTTP 200 with ``errcode``/``errmsg``):

* ``GET /cgi-bin/gettoken?corpid=…&corpsecret=…`` — an access token; asking again while it is
  valid returns the same one, as WeCom does; a wrong secret gets 40001;
* ``POST /cgi-bin/message/send?access_token=…`` — app messages (``text``, ``markdown``,
  ``template_card`` of type ``button_interaction``) checked against WeCom's limits: missing
  token 41001, unknown token 40014, expired token 42001, wrong agent id 40056, unknown member
  81013 with ``invaliduser``, empty text 44004, text over 2048 bytes 45002, a card with a bad
  or reused ``task_id``, no title, more than 6 buttons or a key over 1024 bytes 40058;
* ``POST /cgi-bin/webhook/send?key=…`` — group robots: unknown key 93000, more than 20
  messages a minute per robot 45009, markdown over 4096 bytes 40058.

Errors are injected with :meth:`FakeWeComApi.fail_next` (e.g. 45009 once), tokens expired with
:meth:`FakeWeComApi.expire_tokens` (next call 42001) or revoked with
:meth:`FakeWeComApi.revoke_tokens` (40014). Every request is kept in :attr:`FakeWeComApi.calls`.

:class:`WeComCallbacks` plays WeCom calling pufa: it builds the callback messages and
encrypts and signs them with ``wechatpy`` (an implementation independent of pufa's), and
decrypts pufa's encrypted passive replies with it.
"""

from __future__ import annotations

import base64
import itertools
import os
import re
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

import xmltodict
from aiohttp import web
from wechatpy.crypto import _get_signature
from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto

__all__ = ["Call", "FakeWeComApi", "WeComCallbacks", "random_aes_key"]

JSON = dict[str, Any]

TEXT_LIMIT = 2048
MARKDOWN_LIMIT = 4096
ROBOT_PER_MINUTE = 20
_TASK_ID = re.compile(r"[A-Za-z0-9_\-@]{1,128}")


def random_aes_key() -> str:
    """A fresh 43-character EncodingAESKey, as WeCom's console generates."""
    return base64.b64encode(os.urandom(32)).decode("ascii").rstrip("=")


@dataclass
class Call:
    """One request the fake answered."""

    method: str
    path: str
    query: dict[str, str]
    body: JSON | None
    answer: JSON


@dataclass
class _Failure:
    errcode: int
    errmsg: str
    times: int
    after: int = 0  # calls let through before the failures start


@dataclass
class FakeWeComApi:
    """The fake server; use ``async with FakeWeComApi() as fake`` and ``fake.api_base``."""

    corp_id: str = "wwpufatest000001"
    secret: str = "pufa-app-secret-for-tests"
    agent_id: int = 1000002
    token_ttl: int = 7200
    members: set[str] | None = None
    """Members who can receive app messages (``None``: anyone)."""
    calls: list[Call] = field(default_factory=list)
    messages: list[JSON] = field(default_factory=list)
    robot_messages: dict[str, list[JSON]] = field(default_factory=dict)
    token_requests: int = 0
    _tokens: dict[str, str] = field(default_factory=dict)
    _failures: dict[str, deque[_Failure]] = field(default_factory=dict)
    _robots: dict[str, deque[float]] = field(default_factory=dict)
    _task_ids: set[str] = field(default_factory=set)
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    port: int = 0

    # ------------------------------------------------------------------ lifecycle

    @property
    def api_base(self) -> str:
        """What ``PUFA_WECOM_API_BASE`` is set to."""
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> FakeWeComApi:
        app = web.Application()
        app.router.add_get("/cgi-bin/gettoken", self._gettoken)
        app.router.add_post("/cgi-bin/message/send", self._message_send)
        app.router.add_post("/cgi-bin/webhook/send", self._webhook_send)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------------ test controls

    def fail_next(
        self, path: str, errcode: int, errmsg: str = "", times: int = 1, after: int = 0
    ) -> None:
        """Answer the next ``times`` calls of ``path`` (``message/send``, ``webhook/send``,
        ``gettoken``) with ``errcode``, once ``after`` calls of it have gone through."""
        self._failures.setdefault(path, deque()).append(
            _Failure(errcode, errmsg or f"injected error {errcode}", times, max(0, after))
        )

    def expire_tokens(self) -> None:
        """Every token given so far has expired (calls with it get 42001)."""
        for token in self._tokens:
            self._tokens[token] = "expired"

    def revoke_tokens(self) -> None:
        """Every token given so far is invalid (calls with it get 40014)."""
        for token in self._tokens:
            self._tokens[token] = "invalid"

    def add_robot(self, key: str) -> str:
        """Create a group robot; returns its webhook URL."""
        self._robots.setdefault(key, deque())
        self.robot_messages.setdefault(key, [])
        return f"{self.api_base}/cgi-bin/webhook/send?key={key}"

    def calls_to(self, path: str) -> list[Call]:
        """The calls of ``/cgi-bin/<path>``, oldest first."""
        return [c for c in self.calls if c.path == f"/cgi-bin/{path}"]

    def messages_to(self, user: str) -> list[JSON]:
        """App messages accepted for ``user``, oldest first."""
        return [m for m in self.messages if user in m["touser"].split("|")]

    def texts_to(self, user: str) -> list[str]:
        """What ``user`` read: text contents, and cards' titles."""
        out = []
        for m in self.messages_to(user):
            if m["msgtype"] == "template_card":
                card = m["template_card"]
                out.append(
                    card.get("main_title", {}).get("title") or card.get("sub_title_text", "")
                )
            else:
                out.append(m[m["msgtype"]]["content"])
        return out

    # ------------------------------------------------------------------ handlers

    def _answer(self, request: web.Request, body: JSON | None, answer: JSON) -> web.Response:
        self.calls.append(Call(request.method, request.path, dict(request.query), body, answer))
        return web.json_response(answer)

    def _failure(self, path: str) -> JSON | None:
        queue = self._failures.get(path)
        if not queue:
            return None
        failure = queue[0]
        if failure.after > 0:
            failure.after -= 1
            return None
        failure.times -= 1
        if failure.times <= 0:
            queue.popleft()
        return {"errcode": failure.errcode, "errmsg": failure.errmsg}

    async def _gettoken(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        injected = self._failure("gettoken")
        if injected is not None:
            return self._answer(request, None, injected)
        if request.query.get("corpid") != self.corp_id:
            return self._answer(request, None, {"errcode": 40013, "errmsg": "invalid corpid"})
        if request.query.get("corpsecret") != self.secret:
            return self._answer(request, None, {"errcode": 40001, "errmsg": "invalid credential"})
        valid = [t for t, state in self._tokens.items() if state == "valid"]
        token = valid[0] if valid else f"tok{next(self._counter)}-{os.urandom(6).hex()}"
        self._tokens[token] = "valid"
        answer = {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": self.token_ttl}
        return self._answer(request, None, answer)

    def _token_error(self, request: web.Request) -> JSON | None:
        token = request.query.get("access_token")
        if not token:
            return {"errcode": 41001, "errmsg": "access_token missing"}
        state = self._tokens.get(token)
        if state == "expired":
            return {"errcode": 42001, "errmsg": "access_token expired"}
        if state != "valid":
            return {"errcode": 40014, "errmsg": "invalid access_token"}
        return None

    @staticmethod
    async def _json(request: web.Request) -> JSON | None:
        try:
            body = await request.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    async def _message_send(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        error = self._token_error(request) or self._failure("message/send")
        if error is None:
            error = self._check_message(body)
        if error is not None:
            return self._answer(request, body, error)
        assert body is not None
        users = body["touser"].split("|")
        if self.members is not None and not set(users) & self.members:
            answer = {
                "errcode": 81013,
                "errmsg": "user & party & tag all invalid",
                "invaliduser": body["touser"],
            }
            return self._answer(request, body, answer)
        number = next(self._counter)
        answer = {"errcode": 0, "errmsg": "ok", "msgid": f"msg{number}"}
        if body["msgtype"] == "template_card":
            answer["response_code"] = f"rc{number}"
        self.messages.append({**body, "response_code": answer.get("response_code")})
        return self._answer(request, body, answer)

    def _check_message(self, body: JSON | None) -> JSON | None:
        def invalid(detail: str, code: int = 40058) -> JSON:
            return {"errcode": code, "errmsg": detail}

        if body is None:
            return {"errcode": 40035, "errmsg": "invalid json"}
        if body.get("agentid") != self.agent_id:
            return invalid("invalid agentid", 40056)
        if not isinstance(body.get("touser"), str) or not body["touser"]:
            return invalid("invalid touser", 40003)
        msgtype = body.get("msgtype")
        content = body.get(msgtype) if isinstance(msgtype, str) else None
        if not isinstance(content, dict):
            return invalid("invalid message type", 40008)
        if msgtype in ("text", "markdown"):
            text = content.get("content")
            if not isinstance(text, str) or not text:
                return invalid("empty content", 44004)
            if len(text.encode("utf-8")) > TEXT_LIMIT:
                return invalid("content size out of limit", 45002)
            return None
        if msgtype != "template_card":
            return invalid("invalid message type", 40008)
        if content.get("card_type") != "button_interaction":
            return invalid("unsupported card_type")
        task_id = content.get("task_id")
        if not isinstance(task_id, str) or not _TASK_ID.fullmatch(task_id):
            return invalid("invalid task_id")
        if task_id in self._task_ids:
            return invalid("task_id duplicated")
        title = (content.get("main_title") or {}).get("title")
        if not title and not content.get("sub_title_text"):
            return invalid("main_title.title or sub_title_text required")
        buttons = content.get("button_list")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 6:
            return invalid("button_list size out of limit")
        for button in buttons:
            key = button.get("key")
            if not button.get("text") or not isinstance(key, str) or not key:
                return invalid("button text and key required")
            if len(key.encode("utf-8")) > 1024:
                return invalid("button key size out of limit")
        self._task_ids.add(task_id)
        return None

    async def _webhook_send(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        key = request.query.get("key", "")
        if key not in self._robots:
            return self._answer(request, body, {"errcode": 93000, "errmsg": "invalid webhook url"})
        injected = self._failure("webhook/send")
        if injected is not None:
            return self._answer(request, body, injected)
        window = self._robots[key]
        now = time.monotonic()
        while window and now - window[0] >= 60:
            window.popleft()
        if len(window) >= ROBOT_PER_MINUTE:
            return self._answer(
                request, body, {"errcode": 45009, "errmsg": "api freq out of limit"}
            )
        window.append(now)
        if body is None or body.get("msgtype") not in ("text", "markdown"):
            return self._answer(request, body, {"errcode": 40008, "errmsg": "invalid message type"})
        content = (body.get(body["msgtype"]) or {}).get("content")
        if not isinstance(content, str) or not content:
            return self._answer(request, body, {"errcode": 44004, "errmsg": "empty content"})
        if len(content.encode("utf-8")) > MARKDOWN_LIMIT:
            return self._answer(request, body, {"errcode": 40058, "errmsg": "content too long"})
        self.robot_messages[key].append(body)
        return self._answer(request, body, {"errcode": 0, "errmsg": "ok"})


class WeComCallbacks:
    """WeCom's side of the callback: messages encrypted and signed by ``wechatpy``."""

    def __init__(self, token: str, aes_key: str, corp_id: str, agent_id: int = 1000002) -> None:
        self.token = token
        self.aes_key = aes_key
        self.corp_id = corp_id
        self.agent_id = agent_id
        self.crypto = WeChatCrypto(token, aes_key, corp_id)
        self._msg_ids = itertools.count(7_300_000_000_000_000_001)

    # ------------------------------------------------------------------ messages

    def next_msg_id(self) -> str:
        """A fresh 64-bit MsgId."""
        return str(next(self._msg_ids))

    def text(self, user: str, content: str, msg_id: str | None = None) -> str:
        """The XML of a text message from ``user``."""
        return (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<FromUserName><![CDATA[{user}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime>"
            f"<MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{content}]]></Content>"
            f"<MsgId>{msg_id or self.next_msg_id()}</MsgId>"
            f"<AgentID>{self.agent_id}</AgentID></xml>"
        )

    def event(self, user: str, event: str, created: int | None = None, **fields: str) -> str:
        """The XML of an event (``template_card_event``, ``click``, ``enter_agent``…)."""
        extra = "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields.items())
        return (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<FromUserName><![CDATA[{user}]]></FromUserName>"
            f"<CreateTime>{created or int(time.time())}</CreateTime>"
            f"<MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[{event}]]></Event>{extra}"
            f"<AgentID>{self.agent_id}</AgentID></xml>"
        )

    def card_press(self, user: str, key: str, task_id: str, created: int | None = None) -> str:
        """A press of a template card button whose key is ``key``."""
        return self.event(
            user,
            "template_card_event",
            created,
            EventKey=key,
            TaskId=task_id,
            CardType="button_interaction",
            ResponseCode=f"rc-{os.urandom(4).hex()}",
        )

    # ------------------------------------------------------------------ encryption

    def encrypt(
        self, xml: str, *, timestamp: int | None = None, nonce: str | None = None
    ) -> tuple[dict[str, str], bytes]:
        """The query parameters and body WeCom POSTs for the message ``xml``."""
        stamp = str(timestamp if timestamp is not None else int(time.time()))
        once = nonce or str(int.from_bytes(os.urandom(4), "big"))
        sealed = xmltodict.parse(self.crypto.encrypt_message(xml, once, stamp))["xml"]
        body = (
            f"<xml><ToUserName><![CDATA[{escape(self.corp_id)}]]></ToUserName>"
            f"<Encrypt><![CDATA[{sealed['Encrypt']}]]></Encrypt>"
            f"<AgentID><![CDATA[{self.agent_id}]]></AgentID></xml>"
        )
        params = {"msg_signature": sealed["MsgSignature"], "timestamp": stamp, "nonce": once}
        return params, body.encode("utf-8")

    def echostr(self, plain: str, *, timestamp: int | None = None) -> dict[str, str]:
        """The query of WeCom's URL check carrying ``plain``."""
        stamp = str(timestamp if timestamp is not None else int(time.time()))
        nonce = str(int.from_bytes(os.urandom(4), "big"))
        echostr = PrpCrypto(self.crypto.key).encrypt(plain, self.corp_id).decode("ascii")
        signature = _get_signature(self.token, stamp, nonce, echostr)
        return {"msg_signature": signature, "timestamp": stamp, "nonce": nonce, "echostr": echostr}

    def decrypt_reply(self, body: str) -> tuple[JSON, JSON]:
        """Check the signature of pufa's encrypted passive reply and decrypt it with
        ``wechatpy``: the envelope's fields and the parsed reply."""
        sealed = xmltodict.parse(body)["xml"]
        plain = self.crypto.decrypt_message(
            body, sealed["MsgSignature"], sealed["TimeStamp"], sealed["Nonce"]
        )
        parsed: JSON = xmltodict.parse(plain)["xml"]
        return sealed, parsed
