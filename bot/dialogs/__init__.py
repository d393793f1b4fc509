"""Channel-agnostic conversations whose state lives in the database.

:func:`build_runtime` assembles the :class:`~bot.dialogs.runtime.DialogRuntime` with every
dialog (survey, binding); channel adapters call its ``handle`` with one inbound event at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.dialogs.runtime import DialogRuntime
from bot.settings import Settings
from storage.types import utcnow
from surveys.schema import Survey

__all__ = ["DIALOGS", "DialogRuntime", "build_runtime", "dialogs_ctx"]

log = logging.getLogger(__name__)

DIALOGS = web.AppKey("dialogs", DialogRuntime)
PRUNE_EVERY_S = 3600.0


def build_runtime(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Mapping[str, Survey] | None = None,
    *,
    clock: Callable[[], datetime] = utcnow,
) -> DialogRuntime:
    """The dialog runtime with the survey and binding dialogs installed."""
    from bot.dialogs import binding, survey

    if catalog is None:
        from surveys.schema import load_catalog

        catalog = load_catalog()
    runtime = DialogRuntime(
        sessions, settings.secret(), default_locale=settings.default_locale, clock=clock
    )
    survey.install(runtime, catalog)
    binding.install(runtime)
    return runtime


async def _prune_forever(sessions: async_sessionmaker[AsyncSession]) -> None:
    from bot.dialogs.store import prune
    from storage.db import transaction

    while True:
        await asyncio.sleep(PRUNE_EVERY_S)
        try:
            async with transaction(sessions) as session:
                events, conversations = await prune(session, utcnow())
            log.info("pruned dialog rows", extra={"events": events, "conversations": conversations})
        except Exception:
            log.exception("pruning dialog rows failed")


async def dialogs_ctx(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: the dialog runtime on ``app[DIALOGS]`` and an hourly pruning task."""
    from bot.context import SESSIONS, SETTINGS

    catalog = None
    with contextlib.suppress(ImportError):
        from surveys.api import SURVEYS

        catalog = app.get(SURVEYS)
    app[DIALOGS] = build_runtime(app[SETTINGS], app[SESSIONS], catalog)
    task = asyncio.create_task(_prune_forever(app[SESSIONS]))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
