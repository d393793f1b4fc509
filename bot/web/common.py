"""Helpers the console pages share: the survey catalog, townships, flash messages, times."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
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
    "Flash",
    "catalog",
    "flash",
    "flash_error",
    "form_text",
    "local_input",
    "local_time",
    "parse_local",
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
    session["flash"] = [message, params, "ok"]


async def flash_error(request: web.Request, text: str) -> None:
    """Show ``text`` (already in the reader's language) as an error on the next page."""
    session = await get_session(request)
    session["flash"] = [text, {}, "error"]


Flash = tuple[str, dict[str, Any], str]
"""A flashed message: msgid (or finished text), its parameters, and ``ok`` or ``error``."""


async def pop_flash(request: web.Request) -> Flash | None:
    """The message left by :func:`flash` or :func:`flash_error`, once."""
    session = await get_session(request)
    value = session.get("flash")
    if value is None:
        return None
    del session["flash"]
    if isinstance(value, list) and len(value) >= 2 and isinstance(value[0], str):
        kind = value[2] if len(value) > 2 and value[2] == "error" else "ok"
        return value[0], dict(value[1] or {}), kind
    return None


def form_text(value: object, limit: int) -> str:
    """A submitted form field as text, stripped, at most ``limit`` characters kept."""
    return value.strip()[:limit] if isinstance(value, str) else ""


def parse_local(value: str, tz: tzinfo) -> datetime | None:
    """``2027-03-11T08:30`` (a ``datetime-local`` field, local time in ``tz``) as UTC, or
    ``None`` when it is not a date and time."""
    text = value.strip()
    if len(text) < 16:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC)


def local_input(value: datetime, tz: tzinfo) -> str:
    """A stored UTC time as a ``datetime-local`` field's value in ``tz``."""
    return value.astimezone(tz).strftime("%Y-%m-%dT%H:%M")


def local_time(request: web.Request, value: datetime | None) -> str:
    """A stored UTC time as ``YYYY-MM-DD HH:MM`` in ``PUFA_TIMEZONE``."""
    if value is None:
        return ""
    return value.astimezone(request.config_dict[SETTINGS].tz).strftime("%Y-%m-%d %H:%M")
