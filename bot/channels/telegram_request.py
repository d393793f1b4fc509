"""A python-telegram-bot request backend on aiohttp.

PTB sends Bot API calls through a :class:`~telegram.request.BaseRequest`; its default uses
httpx. pufa already runs on aiohttp, whose client costs markedly less CPU per call, and a
survey step makes two or three calls, so the Telegram channel plugs this backend into PTB's
``ApplicationBuilder.request``. Everything above the HTTP exchange (serialisation, error
mapping, rate limiting) stays PTB's.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

__all__ = ["AiohttpRequest"]

_JSON_HEADERS = {"Content-Type": "application/json"}


@functools.lru_cache(maxsize=32)
def _timeout(
    total: float | None, connect: float | None, read: float | None
) -> aiohttp.ClientTimeout:
    """The (immutable, so shared) timeout of a call."""
    return aiohttp.ClientTimeout(total=total, sock_connect=connect, sock_read=read)


class AiohttpRequest(BaseRequest):
    """PTB request backend on one :class:`aiohttp.ClientSession` (keep-alive pool).

    Args:
        connection_pool_size: Connections kept to the Bot API server.
        read_timeout, write_timeout, connect_timeout, pool_timeout: Default timeouts (s).
        media_write_timeout: Write timeout for uploads.
    """

    def __init__(
        self,
        *,
        connection_pool_size: int = 64,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        """The default read timeout in seconds."""
        return self._read_timeout

    async def initialize(self) -> None:
        """Open the client session (idempotent)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                cookie_jar=aiohttp.DummyCookieJar(),  # the Bot API sets no cookies
                headers={"User-Agent": self.USER_AGENT},
            )

    async def shutdown(self) -> None:
        """Close the client session (idempotent)."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Make one HTTP request; return ``(status, body)`` (PTB maps errors from them)."""
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data else None
        if read_timeout is BaseRequest.DEFAULT_NONE:
            read_timeout = self._read_timeout
        if connect_timeout is BaseRequest.DEFAULT_NONE:
            connect_timeout = self._connect_timeout
        if pool_timeout is BaseRequest.DEFAULT_NONE:
            pool_timeout = self._pool_timeout
        if write_timeout is BaseRequest.DEFAULT_NONE:
            write_timeout = self._media_write_timeout if files else self._write_timeout
        total = None
        if read_timeout is not None and write_timeout is not None:
            total = read_timeout + write_timeout + (connect_timeout or 0) + (pool_timeout or 0)
        timeout = _timeout(total, connect_timeout, read_timeout)
        data: Any = None
        headers: dict[str, str] | None = None
        if request_data is not None:
            if files:
                form = aiohttp.FormData()
                for name, value in request_data.json_parameters.items():
                    form.add_field(name, value)
                for name, part in files.items():
                    filename, content, *rest = part
                    form.add_field(
                        name,
                        content,
                        filename=filename,
                        content_type=rest[0] if rest else "application/octet-stream",
                    )
                data = form
            else:
                # A JSON body, as the Bot API accepts: one dumps of the parameters instead of
                # dumping each value and then form-encoding the lot.
                data = json.dumps(request_data.parameters, ensure_ascii=False).encode()
                headers = _JSON_HEADERS
        try:
            async with self._session.request(
                method, url, data=data, headers=headers, timeout=timeout
            ) as res:
                return res.status, await res.read()
        except TimeoutError as exc:
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{exc.__class__.__name__}: {exc}") from exc
