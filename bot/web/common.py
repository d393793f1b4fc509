"""Helpers the console pages share: the survey catalog, townships, flash messages, times."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from aiohttp_session import get_session
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.appkeys import CATALOGS, SETTINGS
from storage.models import Township
from surveys.schema import Survey, load_catalog

__all__ = [
    "catalog",
    "flash",
    "local_time",
    "pop_flash",
    "survey_or_404",
    "townships",
]


def catalog(request: web.Request) -> dict[str, Survey]:
    """The survey catalog (loaded once per app, shared with the survey feature)."""
    return request.config_dict[CATALOGS].get(load_catalog)


def survey_or_404(request: web.Request, code: str) -> Survey:
    """The survey ``code`` of the catalog, or 404."""
    survey = catalog(request).get(code)
    if survey is None:
        raise web.HTTPNotFound()
    return survey


async def townships(session: AsyncSession) -> list[tuple[str, str]]:
    """Every township as ``(code, name)``, by code."""
    rows = await session.execute(
        select(col(Township.code), col(Township.name)).order_by(col(Township.code))
    )
    return [(code, name) for code, name in rows.all()]


async def flash(request: web.Request, message: str, **params: Any) -> None:
    """Show ``message`` (an English msgid, with ``{name}`` parameters) on the next page."""
    session = await get_session(request)
    session["flash"] = [message, params]


async def pop_flash(request: web.Request) -> tuple[str, dict[str, Any]] | None:
    """The message left by :func:`flash`, once."""
    session = await get_session(request)
    value = session.get("flash")
    if value is None:
        return None
    del session["flash"]
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
        return value[0], dict(value[1] or {})
    return None


def local_time(request: web.Request, value: datetime | None) -> str:
    """A stored UTC time as ``YYYY-MM-DD HH:MM`` in ``PUFA_TIMEZONE``."""
    if value is None:
        return ""
    return value.astimezone(request.config_dict[SETTINGS].tz).strftime("%Y-%m-%d %H:%M")
