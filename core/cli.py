"""Helpers every feature's ``pufa`` sub-commands use.

Exit status: 0 on success, 2 on bad usage (click's own), 1 on failure with one line on stderr
(raise :class:`~core.errors.PufaError`). Commands that create a secret print it alone on the
last line of stdout.
"""

from __future__ import annotations

import asyncio
import functools
import tempfile
from collections.abc import Callable, Coroutine
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from core.errors import PufaError
from core.feature import Catalogs
from core.settings import Settings, load_settings

__all__ = [
    "catalogs",
    "check_writable_dir",
    "check_writable_file",
    "get_settings",
    "local_time",
    "run_async",
    "write_output",
]

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


def _cannot_write(path: Path, exc: OSError) -> PufaError:
    return PufaError(f"cannot write {path}: {exc.strerror or exc}")


def _probe(folder: Path) -> None:
    """Create and remove a file in ``folder`` (made if missing); ``OSError`` if that fails."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".pufa-probe-"):
        pass


def check_writable_file(path: Path) -> None:
    """Make sure ``path`` can be written (its folder is created if missing) before a command
    does any work it would have to undo: one-line :class:`PufaError` otherwise."""
    if path.is_dir():
        raise PufaError(f"cannot write {path}: it is a folder")
    try:
        _probe(path.parent)
        if path.exists():
            with path.open("ab"):
                pass
    except OSError as exc:
        raise _cannot_write(path, exc) from None


def check_writable_dir(path: Path) -> None:
    """Make sure files can be written into the folder ``path`` (created if missing)."""
    if path.exists() and not path.is_dir():
        raise PufaError(f"cannot write into {path}: it is not a folder")
    try:
        _probe(path)
    except OSError as exc:
        raise _cannot_write(path, exc) from None


def write_output(path: Path, data: str | bytes, encoding: str = "utf-8") -> None:
    """Write ``data`` to ``path``; a failure is a one-line :class:`PufaError`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data, encoding=encoding)
    except OSError as exc:
        raise _cannot_write(path, exc) from None


def local_time(moment: datetime, tz: tzinfo) -> str:
    """``moment`` in the district's time zone with its offset: ``2026-06-08 12:00 +08:00``."""
    local = moment.astimezone(tz)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M} {offset[:3]}:{offset[3:]}"
