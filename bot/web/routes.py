"""The console as a sub-application mounted at ``/admin``: pages, middlewares, templates.

:data:`PAGES` is the list of pages in navigation order; adding a page is writing its module
in :mod:`bot.web.pages` and adding one line here. Every route of a page goes through
:func:`bot.web.auth.guard` with the permission it declares.
"""

from __future__ import annotations

import warnings

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.web_exceptions import NotAppKeyWarning
from aiohttp_session import session_middleware
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from bot.web import login
from bot.web.auth import SESSION_IDLE, guard
from bot.web.layout import JINJA, PAGES_KEY, PREFIX, STATIC, TEMPLATES, Page
from bot.web.pages import audit, dashboard, liaisons, notices, outbox, rota, surveys
from bot.web.security import (
    SECURITY_HEADERS,
    csrf_middleware,
    error_middleware,
    headers_middleware,
)
from core.appkeys import SETTINGS
from core.crypto import derive_key
from core.settings import Settings

__all__ = ["PAGES", "build_console", "setup"]

# aiohttp_session (2.12.1, its latest release) keeps its storage and session on the request under
# string keys, which aiohttp notes with a NotAppKeyWarning on the first console request. The keys
# are the library's own; pufa's keys are typed (core.appkeys).
warnings.filterwarnings(
    "ignore",
    message="It is recommended to use web.RequestKey",
    category=NotAppKeyWarning,
    module="aiohttp_session",
)

PAGES: tuple[Page, ...] = (
    dashboard.PAGE,
    surveys.PAGE,
    rota.PAGE,
    liaisons.PAGE,
    notices.PAGE,
    outbox.PAGE,
    audit.PAGE,
)
"""Every console page, in navigation order."""

COOKIE_NAME = "pufa_console"


def _storage(settings: Settings) -> EncryptedCookieStorage:
    return EncryptedCookieStorage(
        derive_key(settings.secret(), "console.session"),
        cookie_name=COOKIE_NAME,
        max_age=SESSION_IDLE,
        path=PREFIX,
        secure=settings.public_url.startswith("https://"),
        httponly=True,
        samesite="Strict",
    )


def build_console(settings: Settings, pages: tuple[Page, ...] = PAGES) -> web.Application:
    """The console sub-application with ``pages``."""
    console = web.Application(
        middlewares=[
            session_middleware(_storage(settings)),
            headers_middleware,
            error_middleware,
            csrf_middleware,
        ]
    )
    aiohttp_jinja2.setup(
        console,
        app_key=JINJA,
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        default_helpers=False,
    )
    console[PAGES_KEY] = pages
    router = console.router
    router.add_get("/", login.home)
    router.add_get("/login", login.login_form)
    router.add_post("/login", login.login_submit)
    router.add_post("/logout", login.logout)
    router.add_get("/lang", login.lang_switch)
    router.add_static("/static", STATIC, append_version=False)
    for page in pages:
        for route in page.routes:
            router.add_route(route.method, route.path, guard(route.permission, route.handler))
    return console


async def _to_console(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(PREFIX + "/", headers=SECURITY_HEADERS)


def setup(app: web.Application, _catalog: None) -> None:
    """The console feature's ``routes`` hook: mount the console at ``/admin``."""
    app.router.add_get(PREFIX, _to_console)
    app.add_subapp(PREFIX, build_console(app[SETTINGS]))
