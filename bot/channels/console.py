"""The console channel: the same dialogs in a terminal (``pufa chat``).

Lines typed are inbound messages (command words work with or without a slash); replies are
printed with buttons as numbered options, which are answered by typing the number.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from bot.dialogs import DialogRuntime
from core.messages import Inbound, Reply, render_numbered, separate_leads

__all__ = ["CONSOLE", "ConsoleChannel", "run_console"]

CONSOLE = "console"


class ConsoleChannel:
    """Prints replies to a text stream."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    async def deliver(self, chat_id: str, replies: Sequence[Reply]) -> None:
        """Print each reply, buttons as numbered options (a lead as a message of its own:
        edits are printed as new text, below it)."""
        for reply in separate_leads(replies):
            prefix = "  " if reply.kind == "edit_source" else ""
            text = render_numbered(reply)
            self.out.write("\n".join(prefix + line for line in text.splitlines()) + "\n\n")
        self.out.flush()


async def run_console(
    runtime: DialogRuntime,
    external_id: str,
    *,
    language: str | None = None,
    read_line: Callable[[], str] | None = None,
    out: TextIO | None = None,
) -> None:
    """Chat until end of input or ``quit``; each line is one step of the dialog runtime."""
    stream = out or sys.stdout
    channel = ConsoleChannel(stream)
    reader = read_line or (lambda: input("> "))
    loop = asyncio.get_running_loop()
    while True:
        try:
            line = await loop.run_in_executor(None, reader)
        except EOFError:
            break
        line = line.strip()
        if line.lower() in ("quit", "exit", "/quit", "/exit"):
            break
        if not line:
            continue
        replies = await runtime.handle(
            Inbound(
                channel=CONSOLE,
                external_id=external_id,
                chat_id=external_id,
                text=line,
                language=language,
                bare_commands=True,
            )
        )
        await channel.deliver(external_id, replies)
