"""Group commit: store the submissions of concurrent HTTP requests in one transaction.

Every request hands its :class:`~surveys.submission.Submission` to :meth:`GroupCommitter.submit`
and waits. A worker takes everything queued so far, stores it in one transaction, commits once,
and only then resolves each request's future. So a 2xx still means the response is durable,
while a burst of N concurrent requests costs one commit instead of N. While one batch commits,
the next one accumulates, so batches grow with load and stay at one item when the server is
idle.

Batches are stored by a :class:`BatchWriter` (``pufa serve``: :mod:`surveys.sqlite_writer` or
:mod:`surveys.postgres_writer`), or without one in a session of the caller's session maker
(:func:`~surveys.submission.submit_many`). The workers run on the callers' event loop: a
writer only sends a batch and awaits its reply (a pipe to SQLite's writer process, a
PostgreSQL connection), so nothing blocks the loop. They once ran on a loop in a thread of
their own, which shared the interpreter lock with the web server's loop: every hand-over
crossed threads twice, and each thread waited for the other to give up the lock. Without
it (and with SQLite's pipes on the loop), side by side under the submission load, three
rounds of 8 s each: SQLite 5,847 against 5,034 requests/s at 50 connections and 7,568 against
6,694 at 200 (p99 35.9 against 43.3 ms); PostgreSQL 4,063 against 3,662 and 5,446 against
4,962; 10-12% less CPU per request on both.

On PostgreSQL several workers (each its own connection) store batches at once, so one batch's
round trips overlap the next; SQLite takes one writer at a time, so there one worker does (two
with the writer process, which stores one batch while the next is on its way). What is queued
when a worker wakes is shared among the idle workers: requests tend to arrive in waves (each
connection sends its next request when its answer comes), and a wave stored by one worker
while the others wait kept PostgreSQL on one backend, and one core, at a time.
Batches stored side by side are kept apart by the database's unique constraints, like any two
writers.

If a batch hits a unique-constraint violation caused by a writer outside it (another process,
or a chat dialog racing with the web page), it is rolled back and its items are retried one per
transaction, so each gets its own correct outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.metrics import Metrics
from surveys.submission import AlreadyAnswered, Submission, SubmitError, SubmitResult, submit_many

log = logging.getLogger(__name__)

Outcome = SubmitResult | SubmitError
_Waiting = tuple[Submission, asyncio.Future[Outcome]]


class BatchWriter(Protocol):
    """Stores batches of submissions; both methods run on the callers' event loop and must not
    block it."""

    async def store(self, items: Sequence[Submission]) -> list[Outcome]:
        """Store ``items`` in one transaction, committed when this returns; their outcomes."""
        ...

    async def close(self) -> None:
        """Release the writer's connections."""
        ...


class GroupCommitter:
    """Batches concurrent submissions into shared transactions (``workers`` worker tasks).

    Each batch is stored by ``writer`` when given (:meth:`stop` closes it), else by
    :func:`~surveys.submission.submit_many` in a session of ``sessions``."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        max_batch: int = 500,
        metrics: Metrics | None = None,
        workers: int = 1,
        writer: BatchWriter | None = None,
    ) -> None:
        self._sessions = sessions
        self._writer = writer
        self._metrics = metrics
        self._max_batch = max_batch
        self._workers = max(1, workers)
        self._queue: asyncio.Queue[_Waiting] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._busy = 0
        self.batches = 0
        self.items = 0

    def start(self) -> None:
        """Start the worker tasks (inside the running event loop the callers use)."""
        if self._tasks:
            return
        self._queue = asyncio.Queue()
        self._tasks = [
            asyncio.create_task(self._run(), name=f"survey-group-commit-{n}")
            for n in range(self._workers)
        ]

    async def submit(self, item: Submission) -> Outcome:
        """Queue ``item`` and wait until it is committed (or refused)."""
        if not self._tasks or self._queue is None or all(task.done() for task in self._tasks):
            raise RuntimeError("the group committer is not running")
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, future))
        return await asyncio.shield(future)

    async def stop(self) -> None:
        """Finish what is queued and being stored, then stop the workers (and close the writer)."""
        if not self._tasks:
            return
        await self._finish()
        self._tasks = []

    async def _finish(self) -> None:
        """Wait until nothing is queued or being stored; stop the workers, close the writer."""
        while (self._queue is not None and not self._queue.empty()) or self._busy:
            await asyncio.sleep(0.01)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._writer is not None:
            await self._writer.close()

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            first = await self._queue.get()
            batch = [first]
            # What is queued is shared among the idle workers (this one included), so that
            # they store it side by side rather than one of them storing all of it.
            idle = max(1, self._workers - self._busy)
            share = -(-(1 + self._queue.qsize()) // idle)
            limit = min(self._max_batch, share)
            while len(batch) < limit and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._busy += 1
            try:
                await self._process(batch)
            finally:
                self._busy -= 1

    async def _process(self, batch: list[_Waiting]) -> None:
        items = [item for item, _ in batch]
        outcomes: list[Outcome | Exception]
        try:
            outcomes = list(await self._store(items))
        except IntegrityError:
            outcomes = []
            for item in items:
                try:
                    outcomes.extend(await self._store([item]))
                except IntegrityError:
                    outcomes.append(AlreadyAnswered())
                except Exception as exc:
                    outcomes.append(exc)
        except Exception as exc:
            log.exception("storing a batch of %d responses failed", len(items))
            outcomes = [exc] * len(items)
        self.batches += 1
        self.items += len(items)
        if self._metrics is not None:
            for item, outcome in zip(items, outcomes, strict=True):
                if isinstance(outcome, SubmitResult) and outcome.created:  # committed
                    self._metrics.survey_responses.labels(item.survey.code, item.channel).inc()
        _resolve([(future, outcome) for (_, future), outcome in zip(batch, outcomes, strict=True)])

    async def _store(self, items: list[Submission]) -> list[Outcome]:
        for attempt in range(3):
            try:
                if self._writer is not None:
                    return await self._writer.store(items)
                async with self._sessions() as session, session.begin():
                    return await submit_many(session, items)
            except OperationalError:
                if attempt == 2:
                    raise
                await asyncio.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")


def _resolve(results: list[tuple[asyncio.Future[Outcome], Outcome | Exception]]) -> None:
    """Hand each waiting request its outcome."""
    for future, outcome in results:
        if future.done():
            continue
        if isinstance(outcome, Exception) and not isinstance(outcome, SubmitError):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
