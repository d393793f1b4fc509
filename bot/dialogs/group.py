"""Steps that share a commit: how one process runs its dialog steps on SQLite.

SQLite has one writer at a time, so a process's steps take turns (waiting SQLite writers
sleep-poll; a queue in the process keeps the wait short and fair). Each turn used to end with
the step's own ``COMMIT``: a trip to the driver's thread, a sync of the WAL, and a wait for the
event loop to come round, all while every other step waited its turn.

:class:`StepGroups` lets the steps that are already queued share one transaction instead. A
step runs on the group's connection (its session joins the open transaction) and, when it ends,
the next queued step runs; the group commits when no step is waiting, after
:attr:`~StepGroups.max_steps` steps, or when it has been open :attr:`~StepGroups.max_age`
seconds. Every step of the group returns only after that commit, so a reply is still sent only
after what the step stored is durable. With one step at a time, each step commits alone, as
before.

A step that fails rolls the whole transaction back: it raises its own error, and the others of
its group raise :class:`GroupAborted`, nothing of theirs stored, to be run again alone
(``alone=True`` commits before the next step starts, so no other step's failure can undo it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from storage.db import collect_after_commit

__all__ = ["GroupAborted", "StepGroups"]

log = logging.getLogger(__name__)

T = TypeVar("T")
_Member = tuple[asyncio.Future[None], list[Callable[[], None]]]
"""A step waiting for its group's commit, and what it asked to run after it."""


class GroupAborted(Exception):
    """Another step of this step's group failed (or the group's commit did), so the shared
    transaction was rolled back and nothing this step wrote was stored; run it again alone."""


class StepGroups:
    """Runs steps one at a time, the queued ones in a shared transaction with one commit.

    Args:
        sessions: Session factory of the (SQLite) database; its engine lends the group's
            connection, and each step gets a session of it joined to the group's transaction.
        max_steps: Most steps in one transaction.
        max_age: Seconds after its first step within which a group is committed even if steps
            are still queued.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        max_steps: int = 16,
        max_age: float = 0.01,
    ) -> None:
        engine = sessions.kw.get("bind")
        if not isinstance(engine, AsyncEngine):
            raise TypeError("the session factory must be bound to an engine")
        self._engine = engine
        self._sessions = sessions
        self.max_steps = max_steps
        self.max_age = max_age
        self._lock = asyncio.Lock()
        self._queued = 0
        self._conn: AsyncConnection | None = None
        self._opened = 0.0
        self._members: list[_Member] = []
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    async def run(self, work: Callable[[AsyncSession], Awaitable[T]], *, alone: bool = False) -> T:
        """Run ``work(session)`` in its turn and return its result once it is committed.

        Raises what ``work`` raised (its group rolled back), or :class:`GroupAborted` when
        another step of its group failed. With ``alone`` the step gets a transaction of its
        own, committed before its turn ends, and never raises :class:`GroupAborted`.
        """
        self._queued += 1
        try:
            await self._lock.acquire()
        finally:
            self._queued -= 1
        try:
            if alone and self._members:
                await self._commit_shielded()
            conn = await self._connection()
            session = self._sessions(bind=conn, join_transaction_mode="rollback_only")
            hooks = collect_after_commit(session)
            try:
                result = await work(session)
                await session.flush()
            except BaseException:
                await session.close()
                await self._rollback()
                raise
            await session.close()
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._members.append((done, hooks))
            if (
                alone
                or self._queued == 0
                or len(self._members) >= self.max_steps
                or time.monotonic() - self._opened >= self.max_age
            ):
                try:
                    await self._commit_shielded(raise_error=alone)
                except BaseException:
                    if done.done() and not done.cancelled():
                        done.exception()  # raised here instead
                    raise
            elif self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(self.max_age, self._flush_soon)
        finally:
            self._lock.release()
        await done
        return result

    async def _connection(self) -> AsyncConnection:
        if self._conn is None:
            conn = await self._engine.connect()
            try:
                await conn.begin()
            except BaseException:
                await conn.close()
                raise
            self._conn = conn
            self._opened = time.monotonic()
        return self._conn

    def _take(self) -> tuple[AsyncConnection | None, list[_Member]]:
        """The open transaction's connection and members, leaving none open."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        conn, members = self._conn, self._members
        self._conn, self._members = None, []
        return conn, members

    async def _commit_shielded(self, *, raise_error: bool = False) -> None:
        """:meth:`_commit`, carried through even if the awaiting step is cancelled: a commit
        cut off halfway would leave its steps unsure whether they were stored."""
        commit = asyncio.ensure_future(self._commit(raise_error=raise_error))
        commit.add_done_callback(_retrieve)
        await asyncio.shield(commit)

    async def _commit(self, *, raise_error: bool = False) -> None:
        """Commit the open transaction and release its members (with :class:`GroupAborted`
        if the commit failed; with ``raise_error`` the failure is also raised)."""
        conn, members = self._take()
        if conn is None:
            return
        try:
            await conn.commit()
        except BaseException as exc:
            log.warning("a group of dialog steps could not be committed", exc_info=True)
            _abort(members, exc)
            await _discard(conn)
            if raise_error:
                raise
            return
        await conn.close()
        for done, hooks in members:
            if not done.done():
                done.set_result(None)
            for hook in hooks:  # what the step asked to run once committed (waking the outbox)
                try:
                    hook()
                except Exception:
                    log.exception("a callback after a dialog step's commit failed")

    async def _rollback(self) -> None:
        """Roll back the open transaction; its members will run again."""
        conn, members = self._take()
        _abort(members, None)
        if conn is not None:
            await _discard(conn)

    def _flush_soon(self) -> None:
        """The group's age is up while its last step left others queued: commit it in the
        next turn (the queued steps normally commit it first)."""
        self._timer = None
        task = asyncio.get_running_loop().create_task(self._flush())
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _flush(self) -> None:
        async with self._lock:
            if self._members:
                await self._commit()


def _retrieve(task: asyncio.Future[None]) -> None:
    """Mark a shielded commit's failure as seen (its step raises it, if still waiting)."""
    if not task.cancelled():
        task.exception()


def _abort(members: list[_Member], cause: BaseException | None) -> None:
    for done, _hooks in members:
        if not done.done():
            error = GroupAborted()
            error.__cause__ = cause
            done.set_exception(error)


async def _discard(conn: AsyncConnection) -> None:
    """Roll back and return a connection whose transaction failed."""
    try:
        await conn.rollback()
    finally:
        await conn.close()
