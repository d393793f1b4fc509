"""What ``pufa seed`` and the first ``pufa serve`` load, across every feature."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from storage import seed as core_seed


async def seed_catalog(session: AsyncSession) -> core_seed.SeedReport:
    """Load the built-in catalog: units, both rotas, indicators (and surveys, once shipped)."""
    report = await core_seed.load_catalog(session)
    from surveys.schema import load_catalog as load_surveys
    from surveys.service import sync_catalog

    created, updated = await sync_catalog(session, load_surveys())
    if created:
        report.created["survey_state"] = created
    if updated:
        report.updated["survey_state"] = updated
    return report


async def seed_demo(
    session: AsyncSession, report: core_seed.SeedReport | None = None
) -> core_seed.SeedReport:
    """Load sample data so a newcomer sees a populated console (all marked as sample)."""
    report = await core_seed.load_demo(session, report)
    from sqlalchemy import select

    from storage.models import Township
    from storage.types import utcnow
    from surveys.demo import seed_sample_responses
    from surveys.schema import load_catalog as load_surveys

    towns = list(
        (await session.execute(select(Township.code).where(Township.sample.is_(True)))).scalars()
    )
    made = await seed_sample_responses(session, load_surveys(), towns, utcnow())
    if made:
        report.created["survey_response"] = made
    return report
