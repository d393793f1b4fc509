"""Baseline of the Telegram benchmark: a minimal python-telegram-bot echo bot behind aiohttp.

A PTB ``Application`` (no updater) whose only handler replies to each text with one
``sendMessage`` of the same text, and a tiny aiohttp endpoint ``POST /telegram/webhook`` that
checks the secret header, turns the body into an ``Update``, awaits
``application.process_update`` and answers 200. :mod:`bench.bench_telegram` runs it as a
process of its own (``python -m bench.echo_bot --serve PORT API_BASE TOKEN``) against the fake
Bot API, next to pufa.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp import web
from telegram import Update
from telegram.ext import Application, ApplicationBuilder, ContextTypes, MessageHandler, filters

__all__ = [
    "WEBHOOK_PATH",
    "WEBHOOK_SECRET",
    "echo_application",
    "echo_web_app",
    "main",
    "serve_echo",
]

WEBHOOK_PATH = "/telegram/webhook"
WEBHOOK_SECRET = "bench-secret"
_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def echo_application(
    token: str, api_base: str, *, aiohttp_transport: bool = False
) -> tuple[Application, list[BaseException]]:
    """A PTB application (no updater) that echoes text messages; also returns its error list.

    With ``aiohttp_transport`` its Bot API calls go through pufa's aiohttp request backend
    (:class:`bot.channels.telegram_request.AiohttpRequest`) instead of PTB's default (httpx).
    """
    builder = ApplicationBuilder().token(token).base_url(api_base).updater(None)
    if aiohttp_transport:
        from bot.channels.telegram_request import AiohttpRequest

        builder = builder.request(AiohttpRequest())
    application = builder.build()
    errors: list[BaseException] = []

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is not None and message.text:
            await message.reply_text(message.text)

    async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        if context.error is not None:
            errors.append(context.error)

    application.add_handler(MessageHandler(filters.TEXT, echo))
    application.add_error_handler(on_error)
    return application, errors


def echo_web_app(application: Application, secret: str) -> web.Application:
    """The aiohttp app serving ``POST /telegram/webhook`` (and ``GET /healthz``) for it."""

    async def webhook(request: web.Request) -> web.Response:
        if request.headers.get(_SECRET_HEADER) != secret:
            return web.Response(status=403)
        update = Update.de_json(await request.json(), application.bot)
        await application.process_update(update)
        return web.Response()

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post(WEBHOOK_PATH, webhook)
    app.router.add_get("/healthz", healthz)
    return app


async def serve_echo(
    port: int,
    api_base: str,
    token: str,
    secret: str = WEBHOOK_SECRET,
    *,
    aiohttp_transport: bool = False,
) -> None:
    """Run only the echo bot (PTB application + webhook endpoint) on ``port`` until killed.

    Used to measure the bot as a process of its own, with the fake Bot API and the load
    generator in another process, as :mod:`bench.bench_telegram` does for pufa.
    """
    application, _errors = echo_application(token, api_base, aiohttp_transport=aiohttp_transport)
    app = echo_web_app(application, secret)
    async with application:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()


def main(argv: Sequence[str]) -> None:
    """``--serve PORT API_BASE TOKEN [--aiohttp]``: run :func:`serve_echo` until killed."""
    args = list(argv)
    aiohttp_transport = "--aiohttp" in args
    if aiohttp_transport:
        args.remove("--aiohttp")
    if len(args) != 4 or args[0] != "--serve":
        raise SystemExit("usage: python -m bench.echo_bot --serve PORT API_BASE TOKEN [--aiohttp]")
    asyncio.run(serve_echo(int(args[1]), args[2], args[3], aiohttp_transport=aiohttp_transport))


if __name__ == "__main__":
    main(sys.argv[1:])
