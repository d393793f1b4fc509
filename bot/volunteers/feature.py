"""The 法律明白人 registry as the composition root sees it (``FEATURE``): the ``/register``
dialog, the coverage API, ``pufa import`` and ``pufa volunteers`` commands, the weekly nudge,
and sample liaisons for ``pufa seed --demo``."""

from __future__ import annotations

from collections.abc import Sequence

from bot.volunteers import api, cli, dialog
from bot.volunteers.demo import seed_sample_liaisons
from bot.volunteers.nudge import NUDGE_TASK
from core.feature import Feature, SeedContext, no_catalog
from core.settings import Settings

__all__ = ["FEATURE"]


async def _seed_demo(ctx: SeedContext, catalog: None) -> None:
    made = await seed_sample_liaisons(ctx.session, ctx.settings.secret(), ctx.now)
    ctx.report.count("volunteer", created=True, n=made)


def _banner(settings: Settings, catalog: None) -> Sequence[str]:
    public = settings.public_url.rstrip("/")
    return [f"  法律明白人 coverage API: {public}/api/v1/volunteers/coverage  (bearer token)"]


FEATURE: Feature[None] = Feature(
    name="volunteers",
    catalog=no_catalog,
    routes=api.setup,
    dialogs=dialog.install,
    commands=cli.commands,
    tasks=(NUDGE_TASK,),
    seed_demo=_seed_demo,
    banner=_banner,
    openapi={"paths": api.OPENAPI_PATHS},
)
