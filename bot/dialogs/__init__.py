"""The channel-agnostic dialog runtime: conversations whose state lives in the database.

:class:`~bot.dialogs.runtime.DialogRuntime` runs one step per inbound event; the features'
dialogs are registered on it by the composition root (:func:`bot.app.build_runtime`) through
:class:`core.dialog.DialogRegistry`. :mod:`bot.dialogs.store` is its database access.
"""

from aiohttp import web

from bot.dialogs.runtime import DialogRuntime, apology

__all__ = ["DIALOGS", "DialogRuntime", "apology"]

DIALOGS = web.AppKey("dialogs", DialogRuntime)
"""The app's dialog runtime (every channel hands its inbound events to it)."""
