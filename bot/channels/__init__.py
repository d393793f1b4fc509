"""Transport adapters (Telegram, console…) in front of the dialog runtime.

:func:`setup` is the chat feature's hook in the composition root: it creates the dialog runtime
with the app and, when a bot token is configured, the Telegram channel (webhook route in
webhook mode).
"""

from __future__ import annotations

from aiohttp import web

__all__ = ["setup"]


def setup(app: web.Application) -> None:
    """Add the dialog runtime and the Telegram channel to ``app``."""
    from bot.channels.telegram import WEBHOOK_PATH, telegram_ctx, webhook_view
    from bot.context import SETTINGS
    from bot.dialogs import dialogs_ctx

    settings = app[SETTINGS]
    app.cleanup_ctx.append(dialogs_ctx)
    if settings.telegram_enabled:
        app.cleanup_ctx.append(telegram_ctx)
        if settings.telegram_mode == "webhook":
            app.router.add_post(WEBHOOK_PATH, webhook_view)
