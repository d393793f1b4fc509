"""Who is logged in, and what each role may do: the one place console access is decided.

:data:`PERMISSIONS` maps every permission a page, action, export or JSON route asks for to the
roles that hold it. A page declares the permission of each of its routes
(:class:`~bot.web.layout.Route`) and :func:`guard` enforces it before the handler runs, so no
handler checks roles itself. A ``staff`` account works for one township: handlers that take a
township ask :meth:`Principal.township_scope`, which refuses any other township.

The session (an encrypted cookie, :mod:`aiohttp_session`) holds the account id, when the login
happened and the CSRF token. The account is read from the database on every request, so a
deactivated account or a changed role takes effect at once.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import web
from aiohttp_session import Session, get_session

from core.appkeys import SESSIONS
from storage.models_console import ConsoleAccount

__all__ = [
    "MAX_LOGIN_AGE",
    "PERMISSIONS",
    "SESSION_IDLE",
    "Principal",
    "allowed",
    "csrf_token",
    "current_principal",
    "guard",
    "start_session",
]

PERMISSIONS: dict[str, frozenset[str]] = {
    # survey results: the dashboard, its exports and JSON (staff: their township only)
    "results.view": frozenset({"admin", "analyst", "staff"}),
    "results.export": frozenset({"admin", "analyst", "staff"}),
    # surveys: the list, opening and closing, invitation batches and posters
    "surveys.view": frozenset({"admin", "staff"}),
    "surveys.manage": frozenset({"admin"}),
    "invitations.create": frozenset({"admin", "staff"}),
    "posters.view": frozenset({"admin", "staff"}),
    # pushes pufa starts itself
    "outbox.view": frozenset({"admin", "coordinator"}),
    "outbox.retry": frozenset({"admin", "coordinator"}),
    # the lecture rota: the calendar, its changes, swaps, marks and the appraisal report
    "rota.view": frozenset({"admin", "coordinator"}),
    "rota.manage": frozenset({"admin", "coordinator"}),
    "rota.report": frozenset({"admin", "coordinator"}),
    # notices to units, staff or the coordinator through the outbox
    "notices.send": frozenset({"admin", "coordinator"}),
    # the liaison registry: coverage, the list, importing liaisons (staff: their township)
    "liaisons.view": frozenset({"admin", "staff"}),
    "liaisons.manage": frozenset({"admin", "staff"}),
    # importing villages changes every township's list: the district office only (as in
    # `pufa import villages`)
    "villages.import": frozenset({"admin"}),
    # the audit log
    "audit.view": frozenset({"admin"}),
}
"""Permission → the roles that hold it. ``admin`` holds every permission."""

SESSION_IDLE = 8 * 3600
"""Seconds a session lives without a request (the cookie's Max-Age and the encryption TTL)."""
MAX_LOGIN_AGE = 12 * 3600
"""Seconds after login when a session ends however active it was."""
_TOUCH_EVERY = 300


def allowed(role: str, permission: str) -> bool:
    """Whether ``role`` holds ``permission`` (an unknown permission is held by nobody)."""
    return role in PERMISSIONS.get(permission, frozenset())


@dataclass(frozen=True, slots=True)
class Principal:
    """The logged-in account."""

    id: int
    name: str
    role: str
    township: str | None

    def can(self, permission: str) -> bool:
        """Whether this account holds ``permission``."""
        return allowed(self.role, permission)

    @property
    def actor(self) -> str:
        """How the audit log names this account."""
        return f"console:{self.name}"

    def township_scope(self, requested: str | None) -> str | None:
        """The township a request may look at: a staff account only its own (``None``, all
        townships, for the other roles when nothing is asked). Another township is 403."""
        if self.role != "staff":
            return requested or None
        if requested and requested != self.township:
            raise web.HTTPForbidden()
        return self.township


def csrf_token(session: Session) -> str:
    """The session's CSRF token, made on first use."""
    token = session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def start_session(session: Session, account: ConsoleAccount) -> None:
    """Log ``account`` in: a fresh session (new CSRF token) keeping only the language."""
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    now = int(time.time())
    session["uid"] = account.id
    session["auth_at"] = now
    session["seen"] = now
    session["csrf"] = secrets.token_urlsafe(32)


PRINCIPAL_KEY = web.RequestKey("console_principal", tuple[Principal | None])
"""The request's account, once looked up (a 1-tuple: ``(None,)`` when nobody is logged in)."""


async def current_principal(request: web.Request) -> Principal | None:
    """The logged-in account of this request, or ``None`` (no session, expired, account gone
    or deactivated)."""
    cached = request.get(PRINCIPAL_KEY)
    if cached is not None:
        return cached[0]
    principal = await _load_principal(request)
    request[PRINCIPAL_KEY] = (principal,)
    return principal


async def _load_principal(request: web.Request) -> Principal | None:
    session = await get_session(request)
    uid = session.get("uid")
    auth_at = session.get("auth_at")
    if not isinstance(uid, int) or not isinstance(auth_at, int):
        return None
    now = int(time.time())
    if now - auth_at > MAX_LOGIN_AGE:
        session.pop("uid", None)
        return None
    async with request.config_dict[SESSIONS]() as db:
        account = await db.get(ConsoleAccount, uid)
    if account is None or not account.active or account.id is None:
        session.pop("uid", None)
        return None
    seen = session.get("seen")
    if not isinstance(seen, int) or now - seen > _TOUCH_EVERY:
        session["seen"] = now  # re-issues the cookie: the idle timeout slides
    return Principal(account.id, account.name, account.role, account.township)


Handler = Callable[[web.Request, Principal], Awaitable[web.StreamResponse]]
"""A console handler: the request and the logged-in account that may run it."""


def guard(
    permission: str, handler: Handler
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The aiohttp handler that runs ``handler`` only for an account holding ``permission``:
    without a login, a GET is sent to the login page and anything else gets 401; a login
    without the permission gets 403."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    async def guarded(request: web.Request) -> web.StreamResponse:
        principal = await current_principal(request)
        if principal is None:
            if request.method in ("GET", "HEAD"):
                raise web.HTTPFound(login_url(request))
            raise web.HTTPUnauthorized()
        if not principal.can(permission):
            raise web.HTTPForbidden()
        return await handler(request, principal)

    guarded.__name__ = getattr(handler, "__name__", "guarded")
    guarded.__doc__ = handler.__doc__
    return guarded


def login_url(request: web.Request) -> str:
    """The login page, coming back to this page afterwards."""
    return "/admin/login?" + urlencode({"next": request.path_qs})
