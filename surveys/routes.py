"""The survey feature's ``routes`` hook: app keys, the group committer, API and mobile pages."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from core.appkeys import METRICS, SESSIONS, SETTINGS
from surveys.api import API_ROUTES
from surveys.committer import GroupCommitter
from surveys.h5.views import setup as setup_pages
from surveys.keys import COMMITTER, RATE_LIMITER, SURVEYS, TOWNSHIP_CACHE
from surveys.ratelimit import OpenLinkLimits
from surveys.schema import Survey

__all__ = ["setup"]


async def _committer_ctx(app: web.Application) -> AsyncIterator[None]:
    committer = GroupCommitter(app[SESSIONS], metrics=app.get(METRICS))
    app[COMMITTER] = committer
    committer.start()
    yield
    await committer.stop()


def setup(app: web.Application, catalog: dict[str, Survey]) -> None:
    """Add the survey feature to ``app``: catalog, group committer, API routes, mobile pages."""
    app[SURVEYS] = catalog
    settings = app[SETTINGS]
    app[RATE_LIMITER] = OpenLinkLimits(
        settings.open_link_per_respondent_per_minute, settings.open_link_per_address_per_minute
    )
    app[TOWNSHIP_CACHE] = {}
    app.cleanup_ctx.append(_committer_ctx)
    for method, path, handler in API_ROUTES:
        app.router.add_route(method, path, handler)
    setup_pages(app)
