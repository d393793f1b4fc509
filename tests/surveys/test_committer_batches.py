"""How the group committer cuts what is queued into batches: shared among its idle workers,
so that they store side by side (PostgreSQL's connections, the SQLite writer process's
pipeline) instead of one worker storing everything while the others wait."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from surveys.committer import BatchWriter, GroupCommitter, Outcome
from surveys.respondents import pseudonym
from surveys.schema import load_catalog
from surveys.submission import Submission, SubmitResult
from tests.surveys.conftest import NOW, SECRET, fazhi_answers, seed_surveys, serve_batch_writer
from tests.surveys.test_api import count_responses


class _Watched:
    """The batch writer ``pufa serve`` uses, with the size of each batch it was given noted."""

    def __init__(self, writer: BatchWriter) -> None:
        self._writer = writer
        self.sizes: list[int] = []

    async def store(self, items: Sequence[Submission]) -> list[Outcome]:
        self.sizes.append(len(items))
        return await self._writer.store(items)

    async def close(self) -> None:
        await self._writer.close()


def _item(who: str) -> Submission:
    survey = load_catalog()["fazhi-2026"]
    return Submission(
        survey, fazhi_answers(), pseudonym(SECRET, "test", who), "web", None, "zh_CN", NOW
    )


async def test_what_arrives_together_is_shared_among_the_idle_workers(
    db_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await seed_surveys(sessions)
    writer = _Watched(serve_batch_writer(db_url, 4))
    committer = GroupCommitter(sessions, workers=4, writer=writer)
    committer.start()
    try:
        items = [_item(f"r{n}") for n in range(42)]
        outcomes = await asyncio.wait_for(
            asyncio.gather(*(committer.submit(item) for item in items)), timeout=60
        )
        # Alone afterwards: one batch of one, whatever the number of workers.
        late = await committer.submit(_item("late"))
    finally:
        await committer.stop()
    # 42 submissions handed over in one turn, 4 idle workers: 11, 11, 10, 10 (not 42 and 0).
    assert writer.sizes == [11, 11, 10, 10, 1]
    assert all(isinstance(o, SubmitResult) and o.created for o in [*outcomes, late])
    assert len({o.response_id for o in outcomes}) == 42  # type: ignore[union-attr]
    assert await count_responses(sessions) == 43
