"""Helpers every feature's ``pufa`` sub-commands use.

Exit status: 0 on success, 2 on bad usage (click's own), 1 on failure with one line on stderr
(raise :class:`~core.errors.PufaError`). Commands that create a secret print it alone on the
last line of stdout.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import click

from core.feature import Catalogs
from core.settings import Settings, load_settings

__all__ = ["catalogs", "get_settings", "run_async"]

P = ParamSpec("P")
R = TypeVar("R")


def get_settings(ctx: click.Context) -> Settings:
    """Settings for this invocation, loaded once (a bad value is a one-line error)."""
    obj = ctx.ensure_object(dict)
    if "settings" not in obj:
        overrides = obj.get("overrides", {})
        obj["settings"] = load_settings(**overrides)
    settings: Settings = obj["settings"]
    return settings


def catalogs(ctx: click.Context) -> Catalogs:
    """The features' catalogs for this invocation (each loaded once, when first asked for)."""
    obj = ctx.ensure_object(dict)
    found = obj.get("catalogs")
    if not isinstance(found, Catalogs):
        found = obj["catalogs"] = Catalogs()
    return found


def run_async(fn: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, R]:
    """Run an async click command body in a fresh event loop."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        return asyncio.run(fn(*args, **kwargs))

    return wrapper
