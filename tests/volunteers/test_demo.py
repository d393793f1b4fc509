"""``pufa seed --demo`` adds a few sample liaisons (idempotent) that official figures leave out
unless asked; the registry's routes are described for the API document."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.volunteers.api import API_ROUTES, OPENAPI_PATHS
from bot.volunteers.store import coverage
from tests.helpers import seed_db


async def test_demo_liaisons_are_sample_and_seeded_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    first = await seed_db(sessions, demo=True)
    assert first.created["volunteer"] == 8
    second = await seed_db(sessions, demo=True)
    assert "volunteer" not in second.created and second.changed == 0
    async with sessions() as session:
        official = await coverage(session)
        shown = await coverage(session, include_sample=True)
    assert official.villages == () and official.townships == ()
    by_village = {v.village: (v.count, v.target) for v in shown.villages}
    assert by_village["zbp-01"] == (2, 2) and by_village["zbp-02"] == (1, 3)
    assert by_village["xj-02"] == (3, 3) and by_village["hyl-01"] == (0, 2)
    assert sum(t.count for t in shown.townships) == 8


def test_openapi_paths_describe_the_routes() -> None:
    described = {(m.upper(), p) for p, item in OPENAPI_PATHS.items() for m in item}
    assert described == {(m, p) for m, p, _ in API_ROUTES}
