"""Group commit: store the submissions of concurrent HTTP requests in one transaction.

Every request hands its :class:`~surveys.submission.Submission` to :meth:`GroupCommitter.submit`
and waits. A single worker takes everything queued so far, stores it with
:func:`~surveys.submission.submit_many` inside one transaction, commits once, and only then
resolves each request's future. So a 2xx still means the response is durable, while a burst
of N concurrent requests costs one commit instead of N. While one batch commits, the next one
accumulates, so batches grow with load and stay at one item when the server is idle.

On PostgreSQL several workers (each its own connection and transaction) store batches at once,
so one batch's round trips and commit overlap the next; SQLite takes one writer at a time, so
there one worker does. Batches stored side by side are kept apart by the database's unique
constraints, like any two writers.

If a batch hits a unique-constraint violation caused by a writer outside it (another process,
or a chat dialog racing with the web page), it is rolled back and its items are retried one per
transaction, so each gets its own correct outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.metrics import Metrics
from surveys.submission import AlreadyAnswered, Submission, SubmitError, SubmitResult, submit_many

log = logging.getLogger(__name__)

Outcome = SubmitResult | SubmitError
BatchStore = Callable[[Sequence[Submission]], Awaitable[list[Outcome]]]
"""Stores a batch in one transaction, committed when it returns (e.g.
:meth:`surveys.sqlite_writer.SQLiteBatchWriter.store`)."""


class GroupCommitter:
    """Batches concurrent submissions into shared transactions (``workers`` worker tasks).

    Each batch is stored by :func:`~surveys.submission.submit_many` in a session of
    ``sessions``, or by ``store`` when given (SQLite's writer thread)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        max_batch: int = 500,
        metrics: Metrics | None = None,
        workers: int = 1,
        store: BatchStore | None = None,
    ) -> None:
        self._sessions = sessions
        self._batch_store = store
        self._metrics = metrics
        self._max_batch = max_batch
        self._workers = max(1, workers)
        self._queue: asyncio.Queue[tuple[Submission, asyncio.Future[Outcome]]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._busy = 0
        self.batches = 0
        self.items = 0

    def start(self) -> None:
        """Start the worker tasks (inside a running event loop)."""
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._run(), name=f"survey-group-commit-{n}")
                for n in range(self._workers)
            ]

    async def stop(self) -> None:
        """Finish what is queued and being stored, then stop the workers."""
        if not self._tasks:
            return
        while not self._queue.empty() or self._busy:
            await asyncio.sleep(0.01)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def submit(self, item: Submission) -> Outcome:
        """Queue ``item`` and wait until it is committed (or refused)."""
        if not self._tasks or all(task.done() for task in self._tasks):
            raise RuntimeError("the group committer is not running")
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, future))
        return await asyncio.shield(future)

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._busy += 1
            try:
                await self._process(batch)
            finally:
                self._busy -= 1

    async def _process(self, batch: list[tuple[Submission, asyncio.Future[Outcome]]]) -> None:
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
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, Exception) and not isinstance(outcome, SubmitError):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    async def _store(self, items: list[Submission]) -> list[Outcome]:
        for attempt in range(3):
            try:
                if self._batch_store is not None:
                    return await self._batch_store(items)
                async with self._sessions() as session, session.begin():
                    return await submit_many(session, items)
            except OperationalError:
                if attempt == 2:
                    raise
                await asyncio.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")
