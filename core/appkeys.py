"""Typed keys for what the composition root puts on the aiohttp application."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.feature import Catalogs
from core.health import ChannelHealth
from core.metrics import Metrics
from core.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
METRICS = web.AppKey("metrics", Metrics)
CATALOGS = web.AppKey("catalogs", Catalogs)
"""Each feature's catalog, loaded once per app by the composition root."""
CHANNEL_HEALTH = web.AppKey("channel_health", dict[str, ChannelHealth])
"""Each configured chat channel's state by channel name, shown by ``/healthz``."""
