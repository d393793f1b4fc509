"""JSON errors in the shape CONTRACT.md promises, with localized messages."""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage

from core.appkeys import METRICS, SETTINGS
from core.i18n import N_, negotiate, negotiate_accept_language, translator
from core.settings import IPNetwork

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_BODY = 64 * 1024

_STATUS_MESSAGES: dict[int, tuple[str, str]] = {
    400: ("bad_request", N_("The request could not be understood.")),
    401: ("unauthorized", N_("Authentication is required.")),
    403: ("forbidden", N_("You are not allowed to do this.")),
    404: ("not_found", N_("Not found.")),
    405: ("method_not_allowed", N_("This method is not allowed here.")),
    409: ("conflict", N_("This conflicts with what is already saved.")),
    410: ("gone", N_("This is no longer available.")),
    413: ("too_large", N_("The request body is too large (at most 64 KiB).")),
    415: ("unsupported_media_type", N_("Send the body as JSON.")),
    422: ("invalid", N_("Some fields are invalid.")),
    429: ("rate_limited", N_("Too many requests; please try again shortly.")),
    500: ("internal", N_("Something went wrong on our side. Please try again later.")),
    503: ("unavailable", N_("The service is temporarily unavailable.")),
}


def parse_json(raw: bytes) -> Any:
    """A request body parsed as strict JSON (RFC 8259), or :class:`ValueError`.

    Everything a client can send that is not usable JSON is a :class:`ValueError`: bytes that
    are not UTF-8, ``NaN`` and ``Infinity``, numbers beyond a double's range (``1e400``),
    nesting deeper than 1,024 levels, and strings holding an unpaired surrogate
    (``"\\ud800"``), which no UTF-8 database column can keep. Integers past 64 bits arrive as
    floats (no value pufa takes is one). Parsed by orjson: about a fifth of the standard
    library's time for a submission's body, which every request pays.
    """
    return orjson.loads(raw)  # orjson.JSONDecodeError is a ValueError


async def read_form(request: web.Request) -> Any:
    """``await request.post()``, with a form that cannot be decoded (bytes that are not
    UTF-8, a broken multipart body) or that holds a NUL character (which PostgreSQL refuses
    in text) turned into :class:`aiohttp.web.HTTPBadRequest` rather than an unhandled error;
    413 over the size limit as before."""
    try:
        form = await request.post()
    except (ValueError, BadHttpMessage) as exc:  # UnicodeDecodeError is a ValueError
        raise web.HTTPBadRequest(reason="form not readable") from exc
    if any("\x00" in key or (isinstance(v, str) and "\x00" in v) for key, v in form.items()):
        raise web.HTTPBadRequest(reason="NUL in a form field")  # no database keeps it
    return form


def request_locale(request: web.Request) -> str:
    """The locale for a request: ``?lang=``, then ``Accept-Language``, then the default."""
    default = request.app[SETTINGS].default_locale if SETTINGS in request.app else "zh_CN"
    lang = request.query.get("lang")
    if lang:
        return negotiate(lang, default)
    return negotiate_accept_language(request.headers.get("Accept-Language"), default)


def json_error(
    request: web.Request,
    status: int,
    code: str | None = None,
    message: str | None = None,
    fields: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """A JSON error response; ``message`` is an English msgid translated for the request."""
    default_code, default_message = _STATUS_MESSAGES.get(
        status, ("error", _STATUS_MESSAGES[500][1])
    )
    t = translator(request_locale(request))
    body = {
        "error": {
            "code": code or default_code,
            "message": t._(message or default_message),
            "fields": fields or {},
        }
    }
    return web.json_response(
        body, status=status, headers=headers, dumps=lambda o: json.dumps(o, ensure_ascii=False)
    )


def _route_name(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn HTTP errors on API routes into JSON errors and count every request."""
    started = time.perf_counter()
    status = 500
    try:
        if _has_nul(request):
            # No route takes a NUL character in its path or query, and PostgreSQL refuses it in
            # text: refuse it here rather than fail in a query.
            status = 400
            if _wants_json(request):
                return json_error(request, 400)
            text = translator(request_locale(request))._(_STATUS_MESSAGES[400][1])
            return web.Response(status=400, text=text)
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        if exc.status < 400 or not _wants_json(request):
            raise
        return json_error(request, exc.status, headers=_keep_headers(exc))
    except Exception:
        log.exception("unhandled error", extra={"path": request.path})
        if _wants_json(request):
            return json_error(request, 500)
        raise
    finally:
        if METRICS in request.app:
            request.app[METRICS].observe_request(
                request.method, _route_name(request), status, time.perf_counter() - started
            )


def _has_nul(request: web.Request) -> bool:
    query = request.query
    return "\x00" in request.path or any("\x00" in k or "\x00" in v for k, v in query.items())


def _keep_headers(exc: web.HTTPException) -> dict[str, str]:
    return {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}


def _wants_json(request: web.Request) -> bool:
    return not request.path.startswith(("/s/", "/admin"))


def bearer_token(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, or ``None``."""
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    presented = presented.strip()
    return presented if scheme.lower() == "bearer" and presented else None


def _parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "203.0.113.7:51234"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, proxies: Sequence[IPNetwork]
) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def client_address(request: web.Request, trusted_proxies: Sequence[IPNetwork] = ()) -> str:
    """The address of the client that sent ``request``, for limits and logs.

    The peer address, unless the peer is one of ``trusted_proxies`` (``PUFA_TRUSTED_PROXIES``):
    then ``X-Forwarded-For`` is read from the right, skipping the trusted proxies, and the
    first address that is not one of them is the client. ``X-Forwarded-For`` from any other
    peer is ignored, so a client cannot choose its own address by sending the header. A
    malformed entry ends the walk at the last address believed.
    """
    peer_text = request.remote or ""
    peer = _parse_address(peer_text)
    if peer is None:
        return peer_text or "unknown"
    if not trusted_proxies or not _trusted(peer, trusted_proxies):
        return str(peer)
    client = peer
    hops = [h for v in request.headers.getall("X-Forwarded-For", []) for h in v.split(",")]
    for hop in reversed(hops):
        address = _parse_address(hop)
        if address is None:
            break
        client = address
        if not _trusted(address, trusted_proxies):
            break
    return str(client)


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "fields"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {"type": "object"},
            },
        }
    },
}
"""The JSON error format in OpenAPI form (``#/components/schemas/Error``)."""
