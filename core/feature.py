"""The one shape every feature of pufa has.

A feature (surveys, the lecture rota, the liaison registry, the outbox, the console…) is a
package whose ``feature.py`` defines ``FEATURE``, a :class:`Feature` that offers the
composition root (:mod:`bot.app`) the same few things:

- ``catalog`` — loads what the feature ships (survey definitions, …) once per process;
- ``routes`` — adds its HTTP routes, app keys and cleanup contexts to the aiohttp app;
- ``dialogs`` — registers its conversations, command words and deep links on the runtime;
- ``commands`` — its ``pufa`` sub-commands;
- ``tasks`` — background jobs run periodically by ``pufa serve``;
- ``seed`` / ``seed_demo`` — what ``pufa seed`` (and the first ``pufa serve``) loads, and the
  sample data of ``pufa seed --demo``;
- ``banner`` — lines ``pufa serve`` prints at start;
- ``openapi`` — its part of the ``/api/v1`` description: ``{"paths": …, "components":
  {"schemas": …}}`` (the root merges the parts into ``/api/v1/openapi.json``).

Every part is optional. The root lists the features once and wires each part; adding a
feature is writing its package and adding one line there. A feature never imports the runtime,
a channel or another feature.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

import click
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.dialog import DialogRegistry
from core.metrics import Metrics
from core.settings import Settings

__all__ = [
    "Catalogs",
    "Feature",
    "PeriodicTask",
    "SeedContext",
    "SeedReport",
    "TaskContext",
    "no_catalog",
]

C = TypeVar("C")


@dataclass
class SeedReport:
    """How many rows a load created or changed, by table."""

    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)

    def count(self, table: str, created: bool, n: int = 1) -> None:
        """Count ``n`` created (or updated) rows of ``table``."""
        if n <= 0:
            return
        target = self.created if created else self.updated
        target[table] = target.get(table, 0) + n

    @property
    def changed(self) -> int:
        """Rows created or updated in all."""
        return sum(self.created.values()) + sum(self.updated.values())


@dataclass(frozen=True, slots=True)
class SeedContext:
    """What a seed hook works with: the open transaction, the report to count into, the time."""

    session: AsyncSession
    report: SeedReport
    now: datetime
    settings: Settings


@dataclass(frozen=True, slots=True)
class TaskContext:
    """What a periodic task works with on each run."""

    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    metrics: Metrics
    now: datetime


@dataclass(frozen=True, slots=True)
class PeriodicTask:
    """A background job ``pufa serve`` runs every ``every`` (first run after ``first``).

    A run that raises is logged and the task carries on at its next time; runs of one task
    never overlap.
    """

    name: str
    every: timedelta
    run: Callable[[TaskContext], Awaitable[None]]
    first: timedelta = timedelta(seconds=5)


def no_catalog() -> None:
    """The catalog of a feature that ships none."""
    return None


@dataclass(frozen=True)
class Feature(Generic[C]):
    """What one feature offers the composition root (see the module docstring)."""

    name: str
    catalog: Callable[[], C]
    routes: Callable[[web.Application, C], None] | None = None
    dialogs: Callable[[DialogRegistry, C], None] | None = None
    commands: Sequence[click.Command] = ()
    tasks: Sequence[PeriodicTask] = ()
    seed: Callable[[SeedContext, C], Awaitable[None]] | None = None
    seed_demo: Callable[[SeedContext, C], Awaitable[None]] | None = None
    banner: Callable[[Settings, C], Sequence[str]] | None = None
    openapi: Mapping[str, Any] | None = None


class Catalogs:
    """Each feature's catalog, loaded on first use and then kept (once per process)."""

    def __init__(self) -> None:
        self._loaded: dict[Callable[[], Any], Any] = {}

    def get(self, loader: Callable[[], C]) -> C:
        """The catalog ``loader`` returns, loading it the first time only."""
        if loader not in self._loaded:
            self._loaded[loader] = loader()
        value: C = self._loaded[loader]
        return value

    def of(self, feature: Feature[C]) -> C:
        """The catalog of ``feature``."""
        return self.get(feature.catalog)
