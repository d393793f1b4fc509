"""Channel-agnostic conversations whose state lives in the database.

:func:`build_runtime` assembles the :class:`~bot.dialogs.runtime.DialogRuntime` with every
dialog (survey, binding); channel adapters call its ``handle`` with one inbound event at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.dialogs.runtime import DialogRuntime
from bot.settings import Settings
from storage.types import utcnow
from surveys.schema import Survey

__all__ = ["DialogRuntime", "build_runtime"]


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
