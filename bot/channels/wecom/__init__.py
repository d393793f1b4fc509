"""The WeCom (企业微信) channel: a self-built app's callback and messages, and group robots.

Transport only, like the Telegram adapter: WeCom callbacks become
:class:`~core.messages.Inbound` values for the dialog runtime, and replies and pushes go out
through the outbox with the senders of :mod:`bot.channels.wecom.senders`. Any dialog works
unchanged; command words count without a slash (``survey``, ``bind CODE``).

- :mod:`~bot.channels.wecom.crypto` — WXBizMsgCrypt-compatible signatures and AES;
- :mod:`~bot.channels.wecom.events` — callback XML to Inbound;
- :mod:`~bot.channels.wecom.channel` — the ``/wecom/callback`` views and background steps;
- :mod:`~bot.channels.wecom.api` — the server API client (token cache, ``message/send``);
- :mod:`~bot.channels.wecom.render` — replies as text, template cards and robot markdown;
- :mod:`~bot.channels.wecom.choices` — numbered options answered by number or words;
- :mod:`~bot.channels.wecom.senders` — the ``wecom`` and ``wecom_robot`` outbox senders.

The composition root calls :func:`install` when :func:`config_problems` is empty (every
``PUFA_WECOM_*`` value set and usable) and prints :func:`status_line` at start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from bot.channels.wecom.channel import CALLBACK_PATH, WeComChannel, WeComConfig, config_problems
from bot.channels.wecom.events import CHANNEL
from bot.channels.wecom.senders import (
    ROBOT_CHANNEL,
    ROBOT_SEAL_PURPOSE,
    RobotSender,
    WeComSender,
)
from bot.dialogs import DIALOGS
from bot.outbox.worker import SENDERS
from core.appkeys import CHANNEL_HEALTH, SESSIONS
from core.settings import Settings

__all__ = [
    "CALLBACK_PATH",
    "CHANNEL",
    "ROBOT_CHANNEL",
    "ROBOT_SEAL_PURPOSE",
    "WECOM",
    "RobotSender",
    "WeComChannel",
    "WeComConfig",
    "WeComSender",
    "config_problems",
    "install",
    "status_line",
]

WECOM = web.AppKey("wecom", WeComChannel)
"""The app's WeCom channel (present only when WeCom is on)."""


def status_line(settings: Settings) -> str | None:
    """The start-up line about WeCom: on (and where WeCom should call), off with the reason
    when some ``PUFA_WECOM_*`` values are set but not all (or not usable), ``None`` when none
    is set."""
    problems = config_problems(settings)
    if not problems:
        return f"  wecom:    callback {settings.public_url.rstrip('/')}{CALLBACK_PATH}"
    configured = any(
        getattr(settings, field) is not None
        for field in (
            "wecom_corp_id",
            "wecom_agent_id",
            "wecom_secret",
            "wecom_token",
            "wecom_aes_key",
        )
    )
    if not configured:
        return None
    return f"  wecom:    off — {'; '.join(problems)}"


async def _wecom_ctx(app: web.Application) -> AsyncIterator[None]:
    channel = app[WECOM]
    await channel.start(app[DIALOGS], app[SESSIONS])
    app[SENDERS].update(channel.senders())
    app[CHANNEL_HEALTH][CHANNEL] = channel.health
    try:
        yield
    finally:
        await channel.stop()


def install(app: web.Application, settings: Settings) -> WeComChannel:
    """Add the WeCom channel to ``app``: its routes, and a cleanup context that starts it
    (after the database and the dialog runtime) and, on shutdown, waits for running steps."""
    channel = WeComChannel(settings)
    app[WECOM] = channel
    app.router.add_get(CALLBACK_PATH, channel.handle_get)
    app.router.add_post(CALLBACK_PATH, channel.handle_post)
    app.cleanup_ctx.append(_wecom_ctx)
    return channel
