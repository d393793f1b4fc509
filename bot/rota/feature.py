"""The 普法学法微课堂 rota as the composition root sees it (``FEATURE``).

- dialogs: ``/duty`` and the rota's buttons (:mod:`bot.rota.dialog`);
- commands: ``pufa rota …`` (:mod:`bot.rota.cli`);
- routes: the iCalendar feeds (:mod:`bot.rota.ical`);
- tasks: ``rota.tick`` every minute — the same tick as ``pufa rota tick`` (dedupe keys make
  the two safe to run at once);
- seed_demo: sample meetings (:mod:`bot.rota.demo`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from bot.rota import cli, demo, dialog, ical
from bot.rota.config import load_offsets
from bot.rota.service import Env, tick
from core.feature import Feature, PeriodicTask, TaskContext, no_catalog
from core.settings import Settings
from storage.db import transaction

__all__ = ["FEATURE", "TICK", "run_tick"]

log = logging.getLogger(__name__)


async def run_tick(ctx: TaskContext) -> None:
    """One run of the scheduler inside ``pufa serve``."""
    offsets = load_offsets()
    async with transaction(ctx.sessions) as session:
        queued = await tick(Env.of(session, ctx.settings, offsets, ctx.now, "scheduler"))
    if queued:
        log.info("rota reminders queued", extra={"count": len(queued)})
    else:
        log.debug("rota tick: nothing new")


TICK = PeriodicTask("rota.tick", timedelta(minutes=1), run_tick)
"""The in-process scheduler: every minute, first run five seconds after start."""


def _banner(settings: Settings, catalog: None) -> Sequence[str]:
    public = settings.public_url.rstrip("/")
    return [
        f"  rota:     {public}/rota/standing.ics  {public}/rota/executive.ics"
        "  (a unit's own feed: pufa rota ical UNIT)"
    ]


FEATURE: Feature[None] = Feature(
    name="rota",
    catalog=no_catalog,
    routes=ical.setup,
    dialogs=dialog.install,
    commands=cli.commands,
    tasks=(TICK,),
    seed_demo=demo.seed_demo,
    banner=_banner,
)
