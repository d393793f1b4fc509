"""The survey feature as the composition root sees it (``FEATURE``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlmodel import col

from core.feature import Feature, SeedContext
from core.settings import Settings
from storage.models import Township
from surveys import cli, dialog, openapi, routes
from surveys.demo import seed_sample_responses
from surveys.schema import Survey, load_catalog
from surveys.state import sync_catalog

__all__ = ["FEATURE"]


async def _seed(ctx: SeedContext, catalog: dict[str, Survey]) -> None:
    created, updated = await sync_catalog(ctx.session, catalog)
    ctx.report.count("survey_state", created=True, n=created)
    ctx.report.count("survey_state", created=False, n=updated)


async def _seed_demo(ctx: SeedContext, catalog: dict[str, Survey]) -> None:
    towns = list(
        (
            await ctx.session.execute(
                select(col(Township.code)).where(col(Township.sample).is_(True))
            )
        ).scalars()
    )
    made = await seed_sample_responses(ctx.session, catalog, towns, ctx.now)
    ctx.report.count("survey_response", created=True, n=made)


def _banner(settings: Settings, catalog: dict[str, Survey]) -> Sequence[str]:
    public = settings.public_url.rstrip("/")
    lines = [f"  API:      {public}/api/v1/surveys  (OpenAPI: {public}/api/v1/openapi.json)"]
    lines.extend(f"  survey:   {public}/s/{code}" for code in sorted(catalog))
    lines.append("  results API: create a bearer token with `pufa token create --role analyst`")
    return lines


FEATURE: Feature[dict[str, Survey]] = Feature(
    name="surveys",
    catalog=load_catalog,
    routes=routes.setup,
    dialogs=dialog.install,
    commands=cli.commands,
    seed=_seed,
    seed_demo=_seed_demo,
    banner=_banner,
    openapi=openapi.PART,
)
