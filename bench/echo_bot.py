"""Baseline webhook benchmark: a minimal python-telegram-bot echo bot behind aiohttp.

Everything runs in one process on ``127.0.0.1``: the fake Bot API
(:class:`tests.fakes.telegram_api.FakeBotApi`), a PTB ``Application`` whose only handler replies
with the received text, and a tiny aiohttp endpoint ``POST /telegram/webhook`` that turns the
body into an ``Update``, awaits ``application.process_update`` and answers 200. The load
generator (:func:`bench._load.drive_webhook`) posts updates at a fixed concurrency.

The figures are the ceiling for pufa's own webhook (which adds a database transaction per
update), not a pass/fail test. Run with ``python -m bench.echo_bot [--updates N]
[--concurrency 1 10 50] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` and `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import telegram
from aiohttp import web
from telegram import Update
from telegram.ext import Application, ApplicationBuilder, ContextTypes, MessageHandler, filters

from bench._load import drive_webhook
from tests.fakes.telegram_api import FakeBotApi

__all__ = ["WEBHOOK_PATH", "WEBHOOK_SECRET", "build_echo_application", "main", "run_echo_bench"]

WEBHOOK_PATH = "/telegram/webhook"
WEBHOOK_SECRET = "bench-secret"
_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def echo_application(token: str, api_base: str) -> tuple[Application, list[BaseException]]:
    """A PTB application (no updater) that echoes text messages; also returns its error list."""
    application = ApplicationBuilder().token(token).base_url(api_base).updater(None).build()
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


def build_echo_application(fake: FakeBotApi) -> tuple[Application, list[BaseException]]:
    """The echo application wired to ``fake``."""
    return echo_application(fake.token, fake.api_base)


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


@asynccontextmanager
async def _serve_webhook(application: Application, secret: str) -> AsyncIterator[str]:
    """Serve ``POST /telegram/webhook`` on a free loopback port; yield its URL."""

    app = echo_web_app(application, secret)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}{WEBHOOK_PATH}"
    finally:
        await runner.cleanup()


async def run_echo_bench(n_updates: int, concurrency: int) -> dict[str, Any]:
    """Post ``n_updates`` text updates to the echo bot's webhook at ``concurrency``.

    Returns the :func:`bench._load.drive_webhook` figures (without per-request timings) plus
    ``replies`` (messages the fake API received), ``replies_match`` (every update answered
    once with its own text), ``handler_errors`` and ``ptb_version``.
    """
    async with FakeBotApi() as fake:
        application, errors = build_echo_application(fake)
        async with application, _serve_webhook(application, WEBHOOK_SECRET) as url:
            updates = [
                fake.make_message_update(i + 1, 100_000 + i % 1000, None, f"echo {i} 你好")
                for i in range(n_updates)
            ]
            figures = await drive_webhook(
                url, updates, concurrency, headers={_SECRET_HEADER: WEBHOOK_SECRET}
            )
        replies = fake.sent_messages()
        expected = sorted((100_000 + i % 1000, f"echo {i} 你好") for i in range(n_updates))
        got = sorted((m["chat"]["id"], m["text"]) for m in replies)
    figures.pop("timings_ms")
    figures.update(
        replies=len(replies),
        replies_match=got == expected,
        handler_errors=len(errors),
        ptb_version=telegram.__version__,
    )
    return figures


async def serve_echo(port: int, api_base: str, token: str, secret: str = WEBHOOK_SECRET) -> None:
    """Run only the echo bot (PTB application + webhook endpoint) on ``port`` until killed.

    Used to measure the bot as a process of its own, with the fake Bot API and the load
    generator in another process, as :mod:`bench.bench_telegram` does for pufa.
    """
    application, _errors = echo_application(token, api_base)
    app = echo_web_app(application, secret)
    async with application:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()


def main(argv: Sequence[str] = ()) -> None:
    """Print the figures for each concurrency; ``argv`` as on the command line (none: defaults).

    Takes no arguments from ``sys.argv`` unless given them, so ``bench/__main__.py``'s runner
    can call ``main()`` directly.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=2000, help="updates per run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--json", action="store_true", help="print one JSON object per run")
    args = parser.parse_args(list(argv))
    if not args.json:
        print(
            f"{'conc':>5} {'updates':>8} {'upd/s':>8} {'p50 ms':>8} {'p90 ms':>8} "
            f"{'p99 ms':>8} {'max ms':>8} {'replies':>8}  ok"
        )
    for concurrency in args.concurrency:
        result = asyncio.run(run_echo_bench(args.updates, concurrency))
        if args.json:
            print(json.dumps(result, ensure_ascii=False))
            continue
        lat = result["latency_ms"]
        ok = result["ok"] == args.updates and result["replies_match"]
        print(
            f"{concurrency:>5} {result['requests']:>8} {result['rate_per_s']:>8.0f} "
            f"{lat['p50']:>8.2f} {lat['p90']:>8.2f} {lat['p99']:>8.2f} {lat['max']:>8.2f} "
            f"{result['replies']:>8}  {'yes' if ok else 'NO ' + str(result['statuses'])}"
        )


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        asyncio.run(serve_echo(int(sys.argv[2]), sys.argv[3], sys.argv[4]))
    else:
        main(sys.argv[1:])
