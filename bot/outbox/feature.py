"""The outbox feature: the commands that queue notices and look after the queue.

The worker that sends the queue is not part of the feature: it needs the channels' senders,
so the composition root (:mod:`bot.app`) starts it in a cleanup context of ``pufa serve``.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.outbox import cli
from core.feature import Feature, no_catalog
from core.settings import Settings


def _banner(settings: Settings, catalog: None) -> Sequence[str]:
    return [f"  outbox:   sending up to {settings.send_rate:g} messages a second per channel"]


FEATURE: Feature[None] = Feature(
    name="outbox",
    catalog=no_catalog,
    commands=cli.commands,
    banner=_banner,
)
