"""The shared frame of every console page: the page registry, the layout and rendering.

A page is one module of :mod:`bot.web.pages` that defines ``PAGE``, a :class:`Page`: its name,
its title in the navigation, the permission needed to see it, and its routes, each with the
permission it needs (:class:`Route`). :func:`bot.web.routes.setup` mounts the routes behind
:func:`bot.web.auth.guard` and shows the page in the navigation of the accounts that may see
it. Templates extend ``base.html`` (header, navigation, language switch, logout) and are
rendered with :func:`render`, which also gives them ``_`` (translation in the request's
language), ``csrf_token`` (for every form) and ``user`` (the logged-in account).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_session import get_session

from bot.web.auth import Handler, csrf_token, current_principal
from bot.web.common import local_time, pop_flash
from core.appkeys import SETTINGS
from core.i18n import N_, negotiate, negotiate_accept_language, translator

__all__ = [
    "JINJA",
    "PAGES_KEY",
    "TEMPLATES",
    "Page",
    "Route",
    "base_context",
    "console_locale",
    "render",
]

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
PREFIX = "/admin"

JINJA = web.AppKey("console_jinja", jinja2.Environment)
"""The console's Jinja2 environment (aiohttp-jinja2)."""


@dataclass(frozen=True, slots=True)
class Route:
    """One route of a page: ``path`` is below ``/admin`` (``/surveys/{code}/open``)."""

    method: str
    path: str
    handler: Handler
    permission: str


@dataclass(frozen=True, slots=True)
class Page:
    """A console page: shown in the navigation (at ``path``, titled ``title``, an English
    msgid) to the accounts holding ``permission``; its ``routes`` each name their own."""

    name: str
    title: str
    path: str
    permission: str
    routes: tuple[Route, ...]


ROLE_LABELS: dict[str, str] = {
    "admin": N_("administrator"),
    "coordinator": N_("rota coordinator"),
    "staff": N_("township staff"),
    "analyst": N_("analyst"),
}
"""How each role is named on the pages."""

PAGES_KEY = web.AppKey("console_pages", tuple[Page, ...])
"""Every page of the console, in navigation order."""


def _lang_attr(locale: str) -> str:
    return "zh-CN" if locale == "zh_CN" else locale


async def console_locale(request: web.Request) -> str:
    """The language of a console page: ``?lang=``, then the language chosen with the switch
    (kept in the session), then ``Accept-Language``, then ``PUFA_DEFAULT_LOCALE``."""
    default = request.config_dict[SETTINGS].default_locale
    asked = request.query.get("lang")
    if asked:
        return negotiate(asked, default)
    session = await get_session(request)
    chosen = session.get("lang")
    if isinstance(chosen, str) and chosen:
        return negotiate(chosen, default)
    return negotiate_accept_language(request.headers.get("Accept-Language"), default)


async def base_context(request: web.Request) -> dict[str, Any]:
    """What every template sees: translation, the account, its navigation, the CSRF token."""
    locale = await console_locale(request)
    t = translator(locale)
    principal = await current_principal(request)
    session = await get_session(request)
    pages = request.config_dict.get(PAGES_KEY, ())
    nav = [
        {"name": p.name, "title": t._(p.title), "href": PREFIX + p.path}
        for p in pages
        if principal is not None and principal.can(p.permission)
    ]
    other = "en" if locale == "zh_CN" else "zh_CN"
    flashed = await pop_flash(request)
    return {
        "flash": (t._(flashed[0], **flashed[1]) if flashed[2] == "ok" else flashed[0])
        if flashed
        else None,
        "flash_kind": flashed[2] if flashed else None,
        "when": lambda value: local_time(request, value),
        "_": t._,
        "gettext": t._,
        "ngettext": t.ngettext,
        "t": t,
        "locale": locale,
        "lang_attr": _lang_attr(locale),
        "user": principal,
        "nav": nav,
        "current": request.path,
        "csrf_token": csrf_token(session),
        "switch_lang": {
            "label": "English" if other == "en" else "中文",
            "href": PREFIX + "/lang?" + urlencode({"to": other, "next": request.path_qs}),
        },
        "static": PREFIX + "/static/",
        "role_labels": ROLE_LABELS,
    }


async def render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
) -> web.Response:
    """Render ``template`` with the layout context (:func:`base_context`) and ``context``;
    never cached by the browser."""
    values = await base_context(request)
    values.update(context or {})
    response = aiohttp_jinja2.render_template(
        template, request, values, app_key=JINJA, status=status
    )
    response.headers["Cache-Control"] = "no-store"
    return response
