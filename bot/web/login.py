"""Logging in and out, the language switch and the console's home address.

These routes are open to everybody (the login page must be); every POST still needs the
session's CSRF token, which the login page puts in its form.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp_session import get_session

from bot.web.accounts import attempt_login
from bot.web.auth import PRINCIPAL_KEY, current_principal, start_session
from bot.web.layout import PAGES_KEY, PREFIX, console_locale, render
from core.appkeys import SESSIONS, SETTINGS
from core.clock import utcnow
from core.http import client_address, read_form
from core.i18n import N_, negotiate

__all__ = ["home", "lang_switch", "login_form", "login_submit", "logout", "safe_next"]

HOME = PREFIX + "/"


def safe_next(value: str | None) -> str:
    """Where to go after logging in: only a console address of this site."""
    if (
        value
        and value.startswith(PREFIX + "/")
        and not value.startswith("//")
        and "\\" not in value
    ):
        return value
    return HOME


def _after_login(value: str | None) -> str:
    target = safe_next(value)
    return HOME if target.startswith(PREFIX + "/login") else target


async def home(request: web.Request) -> web.StreamResponse:
    """``/admin/``: the first page the account may see, or the login page."""
    principal = await current_principal(request)
    if principal is None:
        raise web.HTTPFound(PREFIX + "/login")
    for page in request.config_dict[PAGES_KEY]:
        if principal.can(page.permission):
            raise web.HTTPFound(PREFIX + page.path)
    raise web.HTTPForbidden()


async def login_form(request: web.Request) -> web.StreamResponse:
    """``GET /admin/login``."""
    if await current_principal(request) is not None:
        raise web.HTTPFound(_after_login(request.query.get("next")))
    return await render(request, "login.html", {"next": _after_login(request.query.get("next"))})


async def login_submit(request: web.Request) -> web.StreamResponse:
    """``POST /admin/login``: throttled, wrong (the form again) or in (to ``next``)."""
    form = await read_form(request)
    name = str(form.get("name", "")).strip()[:64]
    password = str(form.get("password", ""))[:1024]
    target = _after_login(str(form.get("next", "")))
    if not name or not password:
        return await render(
            request,
            "login.html",
            {"next": target, "name": name, "error": N_("Enter your name and password.")},
            status=422,
        )
    result = await attempt_login(
        request.config_dict[SESSIONS],
        name,
        password,
        client_address(request, request.config_dict[SETTINGS].trusted_proxies),
        utcnow(),
    )
    if result.retry_after:
        minutes = max(1, (result.retry_after + 59) // 60)
        response = await render(
            request,
            "login.html",
            {
                "next": target,
                "name": name,
                "error": N_("Too many failed logins. Try again in {minutes} minutes."),
                "error_params": {"minutes": minutes},
            },
            status=429,
        )
        response.headers["Retry-After"] = str(result.retry_after)
        return response
    if result.account is None:
        return await render(
            request,
            "login.html",
            {"next": target, "name": name, "error": N_("Wrong name or password.")},
            status=401,
        )
    session = await get_session(request)
    start_session(session, result.account)
    request.pop(PRINCIPAL_KEY, None)
    raise web.HTTPSeeOther(target)


async def logout(request: web.Request) -> web.StreamResponse:
    """``POST /admin/logout``: the session ends (its cookie is emptied)."""
    session = await get_session(request)
    lang = session.get("lang")
    session.invalidate()
    if lang:
        session["lang"] = lang
    raise web.HTTPSeeOther(PREFIX + "/login")


async def lang_switch(request: web.Request) -> web.StreamResponse:
    """``GET /admin/lang?to=en&next=…``: remember the chosen language in the session."""
    session = await get_session(request)
    session["lang"] = negotiate(request.query.get("to"), await console_locale(request))
    raise web.HTTPFound(safe_next(request.query.get("next")))
