"""The fake Telegram Bot API as a process of its own, for the webhook benchmarks.

``python -m bench.fake_api`` starts :class:`tests.fakes.telegram_api.FakeBotApi` on a free
loopback port, prints its URL on the first line of stdout and serves until terminated, so the
stand-in for Telegram's servers uses neither the load generator's nor a bot's CPU. Besides the
Bot API it answers the method ``benchStats`` (``GET <api_base><token>/benchStats``) with
``{"calls": {"<method>:<ok|status>": n}, "chats": <distinct chats sent a message>,
"last_text": "<text of the latest sendMessage>"}``.
"""

from __future__ import annotations

import asyncio
import gc
from collections import Counter
from typing import Any

from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeBotApi

__all__ = ["DEFAULT_TOKEN", "main", "stats"]


def stats(api: FakeBotApi, params: dict[str, Any]) -> dict[str, Any]:
    """The ``benchStats`` method: calls by method and outcome, chats written to, last text.

    Asked between runs, it also collects and freezes the fake's heap (``gc.freeze``): the fake
    keeps every call it answers, and a full collection walking all of them paused its answers
    for 100-250 ms late in a benchmark, a stall every bot measured then waited for."""
    gc.collect()
    gc.freeze()
    counts = Counter(f"{c.method}:{'ok' if c.ok else c.status}" for c in api.calls)
    sends = [c for c in api.calls if c.method == "sendMessage" and c.ok]
    return {
        "calls": dict(counts),
        "chats": len({str(c.params.get("chat_id")) for c in sends}),
        "last_text": str(sends[-1].params.get("text", "")) if sends else "",
    }


async def main() -> None:
    """Serve the fake until the process is terminated."""
    fake = FakeBotApi()
    fake.register_method("benchStats", stats)
    await fake.start()
    print(fake.url, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
