"""A small client of the WeCom server API (aiohttp): access token, app messages, group robots.

- ``gettoken`` gives an access token valid for ``expires_in`` seconds; it is cached until a
  minute before that and fetched again (one fetch at a time). A call answered with 40014
  (invalid token) or 42001 (expired token) drops the cached token, fetches a new one and is
  retried once.
- ``message/send`` sends an app message (text, markdown or template card) to members.
- ``webhook/send?key=…`` posts to a group robot.

Every call returns WeCom's JSON answer or raises :class:`WeComError` (an ``errcode`` other than
0) or :class:`WeComUnreachable` (network trouble, timeout, HTTP error, an answer that is not
JSON). :attr:`WeComApi.state` says how the last call went, for ``/healthz``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from yarl import URL

from core.health import ChannelHealth

__all__ = [
    "RATE_LIMITED",
    "TOKEN_ERRORS",
    "WeComApi",
    "WeComError",
    "WeComUnreachable",
]

log = logging.getLogger(__name__)

TOKEN_ERRORS = frozenset({40014, 42001})
"""Invalid or expired access token: fetch a new one and retry once."""
RATE_LIMITED = frozenset({-1, 45009, 45033})
"""System busy, API frequency limit, concurrency limit: try again later."""
_TOKEN_MARGIN = 60.0
_TIMEOUT = aiohttp.ClientTimeout(total=10, connect=5)


class WeComError(Exception):
    """WeCom answered with an error code."""

    def __init__(
        self, errcode: int, errmsg: str, data: dict[str, Any] | None = None, path: str = ""
    ) -> None:
        super().__init__(f"WeCom error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
        self.data = data or {}
        self.path = path
        """The API path that answered (``/cgi-bin/gettoken``, ``/cgi-bin/message/send``…)."""


class WeComUnreachable(Exception):
    """WeCom could not be reached or did not answer properly."""


class WeComApi:
    """The WeCom server API of one self-built app.

    Args:
        api_base: ``https://qyapi.weixin.qq.com`` (or a test double).
        corp_id: The corp id.
        secret: The app's secret.
        session: The HTTP session (created and closed by the owner).
        clock: Monotonic seconds (tests pass a fake to expire the token).
    """

    def __init__(
        self,
        api_base: str,
        corp_id: str,
        secret: str,
        session: aiohttp.ClientSession,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_base = api_base.rstrip("/")
        self._corp_id = corp_id
        self._secret = secret
        self._session = session
        self._clock = clock
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()
        self.state = "unknown"
        """``ok`` after a successful call, ``unreachable`` or ``error <code>`` after a failed
        one, ``unknown`` before the first."""
        self.health = ChannelHealth()
        """The same, as ``/healthz`` lists every channel: ``up``, ``unreachable``, or
        ``rejected`` when WeCom refused the app's credentials (the code in ``detail``)."""

    # ------------------------------------------------------------------ transport

    async def _request(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None,
        body: dict[str, Any] | None,
        track: bool = True,
    ) -> dict[str, Any]:
        try:
            async with self._session.request(
                method, url, params=params, json=body, timeout=_TIMEOUT
            ) as response:
                if response.status != 200:
                    raise WeComUnreachable(f"HTTP {response.status}")
                data = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            self._track(track, "unreachable")
            raise WeComUnreachable(str(exc) or type(exc).__name__) from exc
        except WeComUnreachable:
            self._track(track, "unreachable")
            raise
        if not isinstance(data, dict):
            self._track(track, "unreachable")
            raise WeComUnreachable("the answer is not a JSON object")
        try:
            errcode = int(data.get("errcode", 0) or 0)
        except (TypeError, ValueError):
            errcode = -1
        if errcode:
            self._track(track, f"error {errcode}", rejected=URL(url).path.endswith("/gettoken"))
            raise WeComError(errcode, str(data.get("errmsg", "")), data, path=URL(url).path)
        self._track(track, "ok")
        return data

    def _track(self, track: bool, state: str, *, rejected: bool = False) -> None:
        if not track:
            return
        self.state = state
        if state == "ok":
            self.health.update("up")
        elif state == "unreachable":
            self.health.update("unreachable")
        elif rejected:
            self.health.update("rejected", state)
        else:  # a refused message (unknown member…) says nothing about the channel
            self.health.update("up", f"last call: {state}")

    # ------------------------------------------------------------------ the token

    async def access_token(self) -> str:
        """The cached access token, fetched when missing or about to expire."""
        token = self._token
        if token is not None and self._clock() < self._token_expires:
            return token
        async with self._token_lock:
            if self._token is not None and self._clock() < self._token_expires:
                return self._token
            data = await self._request(
                "GET",
                f"{self.api_base}/cgi-bin/gettoken",
                params={"corpid": self._corp_id, "corpsecret": self._secret},
                body=None,
            )
            token = str(data.get("access_token") or "")
            try:
                expires_in = float(data.get("expires_in") or 7200)
            except (TypeError, ValueError):
                expires_in = 0.0
            if not token or expires_in <= 0:
                self._track(True, "unreachable")
                raise WeComUnreachable("gettoken gave no usable access_token")
            self._token = token
            self._token_expires = self._clock() + max(expires_in - _TOKEN_MARGIN, 1.0)
            log.info("wecom access token fetched", extra={"expires_in": expires_in})
            return token

    def _drop_token(self, token: str) -> None:
        if self._token == token:
            self._token = None
            self._token_expires = 0.0

    async def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``/cgi-bin/<path>`` with the access token; a rejected token is
        replaced and the call made once more."""
        url = f"{self.api_base}/cgi-bin/{path}"
        token = await self.access_token()
        try:
            return await self._request("POST", url, params={"access_token": token}, body=body)
        except WeComError as exc:
            if exc.errcode not in TOKEN_ERRORS:
                raise
            log.info(
                "wecom access token rejected; fetching a new one", extra={"errcode": exc.errcode}
            )
            self._drop_token(token)
        token = await self.access_token()
        return await self._request("POST", url, params={"access_token": token}, body=body)

    # ------------------------------------------------------------------ messages

    async def send_message(
        self, agent_id: int, to_user: str, msgtype: str, content: dict[str, Any]
    ) -> dict[str, Any]:
        """``message/send`` of one ``msgtype`` (``text``, ``markdown``, ``template_card``)."""
        body = {"touser": to_user, "agentid": agent_id, "msgtype": msgtype, msgtype: content}
        return await self.call("message/send", body)

    async def post_robot(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to a group robot's webhook URL (the key is in the URL)."""
        return await self._request("POST", url, params=None, body=body, track=False)
