"""The console's middlewares: security headers, the CSRF check, and error pages.

- Every response under ``/admin/`` carries a Content-Security-Policy that allows no script at
  all (styles only from ``/admin/static/``, images only from the page itself or ``data:``,
  forms only to the console, no framing), ``X-Frame-Options: DENY``,
  ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: same-origin``.
- Every POST must carry the session's CSRF token (form field ``csrf_token``, header
  ``X-CSRF-Token``, or for a ``multipart/form-data`` upload the ``csrf_token`` query parameter
  of the form's action, so the body is left for the handler to stream); otherwise it is
  refused with 403 before any handler runs.
- HTTP errors (401, 403, 404, 405, 413) are shown as console pages in the request's language.
"""

from __future__ import annotations

import hmac
import logging

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp_session import get_session

from bot.web.auth import login_url
from bot.web.layout import render
from core.http import read_form
from core.i18n import N_

log = logging.getLogger(__name__)

__all__ = [
    "CSRF_FIELD",
    "CsrfRefused",
    "csrf_middleware",
    "error_middleware",
    "headers_middleware",
]

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
"""Headers set on every console response."""

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_ERRORS: dict[int, str] = {
    400: N_("The form could not be read. Reload the page and try again."),
    401: N_("Please log in first."),
    403: N_("Your account may not see this page or do this."),
    404: N_("There is no such page."),
    405: N_("This method is not allowed here."),
    413: N_("The request is too large."),
    500: N_("Something went wrong on our side. Please try again later."),
}


class CsrfRefused(web.HTTPForbidden):
    """A POST without the session's CSRF token."""


@web.middleware
async def headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Put :data:`SECURITY_HEADERS` on every response, errors and redirects included."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(SECURITY_HEADERS)
        raise
    response.headers.update(SECURITY_HEADERS)
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Show HTTP errors, and failures of our own (500), as console pages."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.status not in _ERRORS:
            raise
        message = _ERRORS[exc.status]
        if isinstance(exc, CsrfRefused):
            message = N_(
                "This form has expired or did not come from the console. Reload the page and"
                " try again."
            )
        response = await render(
            request,
            "error.html",
            {
                "status": exc.status,
                "message": message,
                "login_href": login_url(request) if exc.status == 401 else None,
            },
            status=exc.status,
        )
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        log.exception("console page failed", extra={"path": request.path})
        return await render(
            request,
            "error.html",
            {"status": 500, "message": _ERRORS[500], "login_href": None},
            status=500,
        )


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse any POST (or other unsafe method) without the session's CSRF token."""
    if request.method not in _SAFE_METHODS:
        session = await get_session(request)
        expected = session.get("csrf")
        presented = request.headers.get(CSRF_HEADER)
        if presented is None and request.content_type == "multipart/form-data":
            # An upload (an import file) is not read here: its form carries the token in its
            # action URL, so the handler can stream the body under its own size limit.
            presented = request.query.get(CSRF_FIELD)
        elif presented is None and request.content_type == "application/x-www-form-urlencoded":
            form = await read_form(request)
            value = form.get(CSRF_FIELD)
            presented = value if isinstance(value, str) else None
        if (
            not isinstance(expected, str)
            or not presented
            or not hmac.compare_digest(expected.encode(), presented.encode())
        ):
            raise CsrfRefused()
    return await handler(request)
