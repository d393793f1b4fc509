"""The outbox worker: claims due messages, paces them, hands each to its channel's sender and
records every attempt.

``pufa serve`` runs one :class:`OutboxWorker` (the composition root gives it one
:class:`~bot.outbox.sender.Sender` per channel name; the outbox imports no channel).

**Claiming.** A due message (``pending`` with ``next_attempt_at`` reached, or ``sending`` with
its lease run out) is claimed by one guarded ``UPDATE … RETURNING`` that sets it ``sending``,
leases it until ``now + lease`` and counts the attempt. On PostgreSQL the rows are picked with
``FOR UPDATE SKIP LOCKED``, so any number of processes share the queue and each message is
claimed by one of them; on SQLite the statement runs in its own short write transaction (one
writer at a time). The attempt number the claim returned is the claim's token: every later
write about the message is guarded by it, so a worker whose lease ran out cannot overwrite
what the next one did. A process killed mid-send leaves its rows ``sending``; they are taken
again when their lease runs out (the message in flight may then arrive twice; the others
once).

**Pacing** (aiolimiter): per channel, evenly spaced at ``rate`` messages a second (with a
slack of one message, :data:`SLACK`, so a wake-up that came late is made up); per recipient,
as far apart as the sender's ``min_interval(recipient)`` says (Telegram: a second to a chat,
three to a group, i.e. 20 a minute). A message whose recipient is not due yet goes back to
the queue for that long without spending an attempt, so the worker never sits on leased rows.
Pacing is per process: two processes on one database may together send at twice the rate.

**Retries.** A transient failure is tried again after an exponential backoff with jitter; a
rate limit (``retry_after``) pauses the whole channel for that long and costs no attempt; a
permanent failure, or the last attempt, marks the message ``failed``. Failed messages are
reported to the coordinator once, through the outbox (:mod:`bot.outbox.alerts`). After several
transient failures in a row a channel is paused and probed with one message at a time, so an
unreachable platform does not burn every queued message's attempts.

**Waking.** The worker looks for due messages every ``poll_interval`` seconds, and at once
when this process queued some (:func:`bot.outbox.queue.wake_on_commit`).

Outcomes are written by one recorder task, which groups what finished together into one
transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from aiohttp import web
from aiolimiter import AsyncLimiter
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.dml import Update

from bot.outbox.alerts import AlertRun, alert_failures, reportable
from bot.outbox.queue import SEAL_PURPOSE, recipients, reply_of
from bot.outbox.sender import (
    OutboundItem,
    PermanentSendError,
    Sender,
    TransientSendError,
    is_ready,
    min_interval,
)
from core.clock import Clock, utcnow
from core.crypto import Sealer
from core.metrics import Metrics
from storage.db import transaction
from storage.models_outbox import OutboxMessage
from storage.types import table_of

__all__ = ["SENDERS", "WORKER", "Claimed", "OutboxWorker", "WorkerConfig"]

log = logging.getLogger(__name__)

SENDERS = web.AppKey("outbox_senders", dict[str, Sender])
"""The senders the worker uses, by channel name: each channel's cleanup context adds its own
before the worker starts."""

_TABLE = table_of(OutboxMessage)
_OPEN = ("pending", "sending")

SLACK = 2
"""Capacity of a channel's limiter: messages leave evenly spaced at the rate, and a wake-up
that came a little late is made up by sending the next message sooner (so any second holds
at most one message more than the rate, and the long-run rate is the configured one)."""


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """How the worker paces, retries and leases.

    Attributes:
        rate: Messages a second per channel (``PUFA_SEND_RATE``), evenly spaced.
        lease: Seconds a claimed message is held (``PUFA_OUTBOX_LEASE``).
        max_attempts: Attempts before a message fails (``PUFA_OUTBOX_MAX_ATTEMPTS``).
        poll_interval: Seconds between looks for messages queued elsewhere
            (``PUFA_OUTBOX_POLL``).
        backoff_base: Seconds before the second attempt; doubled for each further one.
        backoff_cap: The longest wait between two attempts.
        concurrency: Sends in flight at most (per process).
        batch_size: Messages claimed per channel at a time (0: two seconds' worth at
            ``rate``, between 1 and 200).
        breaker_threshold: Transient failures in a row after which a channel is paused and
            probed one message at a time.
        breaker_pause: First pause of a tripped channel (doubles up to ``breaker_max_pause``).
        breaker_max_pause: Longest pause of a tripped channel.
        housekeeping_interval: Seconds between refreshes of the queue gauges and looks for
            failures to report.
        shutdown_grace: Seconds sends in flight may take to finish when the worker stops.
        alert_settle: Seconds without a new failure before failures are reported (failures
            that arrive together go in one digest).
        alert_max_wait: Longest a failure waits to be reported while others keep coming.
        recipient_intervals: Seconds between two messages to one recipient, by channel, for
            senders that do not say (``min_interval``).
    """

    rate: float = 30.0
    lease: float = 60.0
    max_attempts: int = 10
    poll_interval: float = 0.5
    backoff_base: float = 2.0
    backoff_cap: float = 600.0
    concurrency: int = 32
    batch_size: int = 0
    breaker_threshold: int = 5
    breaker_pause: float = 2.0
    breaker_max_pause: float = 60.0
    housekeeping_interval: float = 5.0
    shutdown_grace: float = 5.0
    alert_settle: float = 10.0
    alert_max_wait: float = 120.0
    recipient_intervals: Mapping[str, float] = field(default_factory=dict)

    @property
    def claim_size(self) -> int:
        """Messages claimed per channel at a time: never more than the channel sends in a
        quarter of the lease, so the last of them is handed over well before it runs out."""
        wanted = self.batch_size if self.batch_size > 0 else min(200, int(self.rate * 2))
        return max(1, min(wanted, int(self.rate * self.lease / 4)))

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th attempt failed (with jitter: between half
        and all of ``backoff_base * 2**(attempts-1)``, at most ``backoff_cap``)."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** max(0, attempts - 1))
        return random.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A message this worker holds; ``attempts`` (counting this one) is the claim's token."""

    id: int
    channel: str
    recipient: str
    locale: str
    kind: str
    body: dict[str, Any]
    attempts: int
    next_attempt_at: datetime
    parts_sent: int = 0
    """Pieces of a long message delivered by earlier attempts."""
    hand_over_by: float = float("inf")
    """Event-loop time after which the message is not handed to a sender any more but put
    back (half its lease: the rest is for the send itself)."""


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What to write about a claimed message."""

    row: Claimed
    status: Literal["sent", "pending", "failed"]
    at: datetime
    """``sent_at``, or the ``next_attempt_at`` of a message going back to the queue."""
    error: str | None = None
    refund: bool = False
    """Give the attempt back (paced, rate-limited, or never handed to the sender)."""
    tried_at: datetime | None = None
    """When the attempt ended, if the sender was called."""
    parts_sent: int | None = None
    """Pieces of a long message delivered so far, when the sender counted them."""


class _Channel:
    """Pacing and health of one channel in this process."""

    def __init__(self, name: str, sender: Sender, rate: float, default_interval: float) -> None:
        self.name = name
        self.sender = sender
        self.limiter = AsyncLimiter(SLACK, SLACK / rate)
        self.default_interval = default_interval
        self.recipients: dict[str, AsyncLimiter] = {}
        self.paused_until = 0.0
        self.failures = 0
        self.tripped = False

    def recipient_limiter(self, recipient: str) -> AsyncLimiter | None:
        """The limiter of one recipient, or ``None`` when the platform sets no per-chat pace."""
        interval = min_interval(self.sender, recipient, self.default_interval)
        if interval <= 0:
            return None
        limiter = self.recipients.get(recipient)
        if limiter is None or limiter.time_period != interval:
            limiter = self.recipients[recipient] = AsyncLimiter(1, interval)
        return limiter

    def prune(self) -> None:
        """Forget recipients whose pace has fully recovered (keeps the map small)."""
        for recipient in [r for r, lim in self.recipients.items() if lim.has_capacity()]:
            del self.recipients[recipient]


class OutboxWorker:
    """Sends the outbox (see the module docstring).

    Args:
        sessions: Session factory of the database.
        senders: One sender per channel name; messages of other channels stay queued.
        config: Pacing, retries and leases.
        metrics: Where to count attempts and publish the queue gauges.
        clock: The current UTC time (for the database; pacing uses the event loop's clock).
        default_locale: The language of alerts to coordinators who have none.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        senders: Mapping[str, Sender],
        *,
        config: WorkerConfig | None = None,
        metrics: Metrics | None = None,
        clock: Clock = utcnow,
        default_locale: str = "zh_CN",
        secret: bytes | None = None,
    ) -> None:
        self.sessions = sessions
        self._sealer = Sealer(secret, SEAL_PURPOSE) if secret is not None else None
        self.senders = senders
        self.config = config or WorkerConfig()
        self.metrics = metrics
        self.clock = clock
        self.default_locale = default_locale
        bind = sessions.kw.get("bind")
        self._postgres = bind is not None and bind.dialect.name == "postgresql"
        self._channels: dict[str, _Channel] = {}
        self._wake = asyncio.Event()
        self._outcomes: asyncio.Queue[_Outcome | None] = asyncio.Queue()
        self._inflight: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(self.config.concurrency)
        self._alert_due = False
        self._unwritten = 0
        self._stopping = asyncio.Event()

    # ------------------------------------------------------------------ control

    def wake(self) -> None:
        """Look for due messages now (this process has just queued some)."""
        self._wake.set()

    def stop(self) -> None:
        """Ask :meth:`run` to return: it stops between two database steps (never in the middle
        of a transaction), puts back what it claimed but did not hand over, lets sends in
        flight finish briefly and records every outcome."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Send until :meth:`stop` (or cancellation, which may cut a database step short)."""
        loop = asyncio.get_running_loop()
        self._stopping.clear()
        recorder = asyncio.create_task(self._recorder(), name="outbox-recorder")
        next_housekeeping = 0.0
        failing = False
        try:
            while not self._stopping.is_set():
                claimed = 0
                try:
                    claimed = await self.run_once()
                    if self._alert_due or loop.time() >= next_housekeeping:
                        self._alert_due = False
                        next_housekeeping = loop.time() + self.config.housekeeping_interval
                        if (await self.housekeeping()).waiting:
                            settled = loop.time() + self.config.alert_settle
                            next_housekeeping = min(next_housekeeping, settled)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    if not failing:  # once per outage (the database gone, say), not per poll
                        log.exception("outbox worker step failed; retrying until it works")
                    failing, claimed = True, 0
                else:
                    if failing:
                        log.info("outbox worker working again")
                    failing = False
                if claimed == 0 and not self._stopping.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.config.poll_interval)
                    self._wake.clear()
        finally:
            await self._shutdown(recorder)

    async def drain(self, timeout: float = 30.0, *, check_every: float = 0.05) -> None:
        """Run until no message of a channel this worker can send is waiting or being sent
        (retries included) and every failure has been reported to a bound coordinator (the
        report itself sent); ``TimeoutError`` after ``timeout`` seconds. For tests and
        one-off runs."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        task = asyncio.create_task(self.run(), name="outbox-drain")
        try:
            while True:
                if task.done():
                    task.result()
                    raise RuntimeError("the outbox worker stopped")
                if await self._idle():
                    return
                if loop.time() > deadline:
                    left, _failures = await self._left()
                    raise TimeoutError(f"outbox not drained after {timeout}s: {left} left")
                await asyncio.sleep(check_every)
        finally:
            self.stop()
            try:
                await asyncio.wait_for(asyncio.shield(task), self.config.shutdown_grace + 10)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # ------------------------------------------------------------------ one round

    async def run_once(self) -> int:
        """Claim what is due on every channel that can send and hand it over (pacing waits
        happen here); return how many messages were claimed."""
        rows = await self._claim_all(self.clock())
        for index, row in enumerate(rows):
            if self._stopping.is_set():
                self._put_back(rows[index:])
                break
            try:
                await self._dispatch(row)
            except BaseException:
                self._put_back(rows[index + 1 :])
                raise
        return len(rows)

    def _put_back(self, rows: list[Claimed]) -> None:
        """Return claimed rows to the queue at once, their attempts given back."""
        now = self.clock()
        for row in rows:
            self._record(_Outcome(row, "pending", now, refund=True))

    def _channel(self, name: str) -> _Channel | None:
        sender = self.senders.get(name)
        if sender is None:
            return None
        channel = self._channels.get(name)
        if channel is None or channel.sender is not sender:
            default = self.config.recipient_intervals.get(name, 0.0)
            channel = self._channels[name] = _Channel(name, sender, self.config.rate, default)
        return channel

    async def _claim_all(self, now: datetime) -> list[Claimed]:
        loop_now = asyncio.get_running_loop().time()
        wanted: list[tuple[str, int]] = []
        for name in sorted(self.senders):
            channel = self._channel(name)
            if channel is None or not is_ready(channel.sender) or channel.paused_until > loop_now:
                continue
            wanted.append((name, 1 if channel.tripped else self.config.claim_size))
        if not wanted:
            return []
        rows: list[Claimed] = []
        async with transaction(self.sessions) as session:
            for name, limit in wanted:
                rows.extend(await self._claim(session, name, limit, now))
        rows.sort(key=lambda r: (r.next_attempt_at, r.id))
        return rows

    async def _claim(
        self, session: AsyncSession, channel: str, limit: int, now: datetime
    ) -> list[Claimed]:
        t = _TABLE
        due = or_(
            and_(t.c.status == "pending", t.c.next_attempt_at <= now),
            and_(t.c.status == "sending", t.c.lease_until < now),
        )
        pick = (
            select(t.c.id)
            .where(t.c.channel == channel, due)
            .order_by(t.c.next_attempt_at, t.c.id)
            .limit(limit)
        )
        if self._postgres:
            # A materialized CTE locks the rows once; as an IN (subquery) PostgreSQL may
            # re-run the subquery and claim more than ``limit`` rows.
            picked = (
                pick.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
            )
            claim = update(t).where(t.c.id == picked.c.id, due)
        else:
            claim = update(t).where(t.c.id.in_(pick.scalar_subquery()), due)
        stmt = claim.values(
            status="sending",
            lease_until=now + timedelta(seconds=self.config.lease),
            attempts=t.c.attempts + 1,
        ).returning(
            t.c.id,
            t.c.channel,
            t.c.recipient,
            t.c.locale,
            t.c.kind,
            t.c.body,
            t.c.attempts,
            t.c.next_attempt_at,
            t.c.parts_sent,
        )
        result = await session.execute(stmt)
        hand_over_by = asyncio.get_running_loop().time() + self.config.lease / 2
        return [
            Claimed(
                id=r.id,
                channel=r.channel,
                recipient=r.recipient,
                locale=r.locale,
                kind=r.kind,
                body=dict(r.body or {}),
                attempts=r.attempts,
                next_attempt_at=r.next_attempt_at,
                parts_sent=r.parts_sent,
                hand_over_by=hand_over_by,
            )
            for r in result
        ]

    async def _dispatch(self, row: Claimed) -> None:
        channel = self._channel(row.channel)
        now = self.clock()
        if channel is None:  # the sender went away between claim and dispatch
            self._record(_Outcome(row, "pending", now, refund=True))
            return
        if row.attempts > self.config.max_attempts:  # claimed again after its lease ran out
            error = "the process sending it stopped; gave up after the last attempt"
            self._finish(channel, _Outcome(row, "failed", now, error), "failed")
            return
        loop = asyncio.get_running_loop()
        if channel.paused_until > loop.time():
            self._record(self._resume_at(row, channel.paused_until - loop.time()))
            return
        per_recipient = channel.recipient_limiter(row.recipient)
        if per_recipient is not None and not per_recipient.has_capacity():
            self._record(self._resume_at(row, per_recipient.time_period))
            return
        await channel.limiter.acquire()
        if channel.paused_until > loop.time():  # a rate limit arrived while we waited
            self._record(self._resume_at(row, channel.paused_until - loop.time()))
            return
        await self._slots.acquire()
        if loop.time() > row.hand_over_by:  # too late: its lease could run out mid-send
            self._slots.release()
            self._record(_Outcome(row, "pending", self.clock(), refund=True))
            return
        if per_recipient is not None:
            await per_recipient.acquire()  # has capacity: returns at once
        task = asyncio.create_task(self._send(channel, row), name=f"outbox-send-{row.id}")
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    def _resume_at(self, row: Claimed, delay: float) -> _Outcome:
        """Back to the queue for ``delay`` seconds, the attempt given back."""
        return _Outcome(row, "pending", self.clock() + timedelta(seconds=delay), refund=True)

    async def _send(self, channel: _Channel, row: Claimed) -> None:
        try:
            item = OutboundItem(
                id=row.id,
                channel=row.channel,
                recipient=row.recipient,
                locale=row.locale,
                reply=reply_of(row.body, self._sealer),
                kind=row.kind,
                attempts=row.attempts - 1,
                parts_sent=row.parts_sent,
            )
            try:
                await channel.sender.send(item)
            except TransientSendError as exc:
                self._transient(channel, row, _describe(exc), exc.retry_after, exc.parts_sent)
            except PermanentSendError as exc:
                now = self.clock()
                failed = _Outcome(
                    row, "failed", now, _describe(exc), tried_at=now, parts_sent=exc.parts_sent
                )
                self._finish(channel, failed, "failed")
            except Exception as exc:
                self._transient(channel, row, _describe(exc), None)
            else:
                if channel.tripped:
                    log.info("outbox channel recovered", extra={"channel": channel.name})
                channel.failures, channel.tripped = 0, False
                now = self.clock()
                self._finish(channel, _Outcome(row, "sent", now, tried_at=now), "sent")
        finally:
            self._slots.release()

    def _transient(
        self,
        channel: _Channel,
        row: Claimed,
        error: str,
        retry_after: float | None,
        parts_sent: int | None = None,
    ) -> None:
        loop = asyncio.get_running_loop()
        now = self.clock()
        if retry_after is not None and retry_after >= 0:
            channel.paused_until = max(channel.paused_until, loop.time() + retry_after)
            later = now + timedelta(seconds=retry_after)
            outcome = _Outcome(
                row, "pending", later, error, refund=True, tried_at=now, parts_sent=parts_sent
            )
            self._finish(channel, outcome, "retried")
            return
        channel.failures += 1
        if channel.failures >= self.config.breaker_threshold:
            pause = min(
                self.config.breaker_max_pause,
                self.config.breaker_pause * 2 ** (channel.failures - self.config.breaker_threshold),
            )
            channel.paused_until = max(channel.paused_until, loop.time() + pause)
            if not channel.tripped:
                log.warning(
                    "outbox channel failing; pausing it and probing one message at a time",
                    extra={"channel": channel.name, "failures": channel.failures, "error": error},
                )
            channel.tripped = True
        if row.attempts >= self.config.max_attempts:
            failed = _Outcome(row, "failed", now, error, tried_at=now, parts_sent=parts_sent)
            self._finish(channel, failed, "failed")
            return
        later = now + timedelta(seconds=self.config.backoff(row.attempts))
        retry = _Outcome(row, "pending", later, error, tried_at=now, parts_sent=parts_sent)
        self._finish(channel, retry, "retried")

    def _finish(self, channel: _Channel, outcome: _Outcome, counted: str) -> None:
        if self.metrics is not None:
            self.metrics.outbox_sent.labels(channel.name, counted).inc()
        if counted == "failed":
            log.warning(
                "outbox message failed",
                extra={"id": outcome.row.id, "channel": channel.name, "error": outcome.error},
            )
        self._record(outcome)

    # ------------------------------------------------------------------ recording

    def _record(self, outcome: _Outcome) -> None:
        self._unwritten += 1
        self._outcomes.put_nowait(outcome)

    async def _recorder(self) -> None:
        """Write outcomes as they come, each group that finished together in one transaction;
        stops at a ``None``."""
        while True:
            first = await self._outcomes.get()
            batch: list[_Outcome] = []
            stop = first is None
            if first is not None:
                batch.append(first)
            while not stop and not self._outcomes.empty():
                more = self._outcomes.get_nowait()
                if more is None:
                    stop = True
                else:
                    batch.append(more)
            try:
                if batch:
                    await self._write(batch)
            finally:
                self._unwritten -= len(batch)
            if stop:
                return

    async def _write(self, batch: list[_Outcome]) -> None:
        for attempt in range(5):
            try:
                async with transaction(self.sessions) as session:
                    for outcome in batch:
                        await session.execute(_statement(outcome))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("could not record outbox outcomes; trying again")
                await asyncio.sleep(min(10.0, 0.5 * 2**attempt))
                continue
            if any(o.status == "failed" for o in batch):
                self._alert_due = True
                self._wake.set()
            return
        log.error(
            "outbox outcomes not recorded; those messages are sent again when their lease runs out",
            extra={"ids": [o.row.id for o in batch]},
        )

    async def _shutdown(self, recorder: asyncio.Task[None]) -> None:
        if self._inflight:
            _done, late = await asyncio.wait(
                set(self._inflight), timeout=self.config.shutdown_grace
            )
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        self._outcomes.put_nowait(None)
        try:
            await asyncio.wait_for(recorder, timeout=self.config.shutdown_grace + 5)
        except (TimeoutError, asyncio.CancelledError):
            recorder.cancel()
        except Exception:
            log.exception("outbox recorder failed while stopping")

    # ------------------------------------------------------------------ housekeeping

    async def housekeeping(self) -> AlertRun:
        """Report failures to the coordinator (once each, when they have settled), refresh
        the queue gauges and forget idle recipients; say what was reported."""
        now = self.clock()
        async with transaction(self.sessions) as session:
            run = await alert_failures(
                session,
                now,
                default_locale=self.default_locale,
                postgres=self._postgres,
                settle=timedelta(seconds=self.config.alert_settle),
                max_wait=timedelta(seconds=self.config.alert_max_wait),
            )
        if run.queued:
            self._wake.set()
        await self.refresh_metrics(now)
        for channel in self._channels.values():
            channel.prune()
        return run

    async def refresh_metrics(self, now: datetime | None = None) -> None:
        """Set the queue gauges from the database (every process sees the same figures)."""
        if self.metrics is None:
            return
        now = now or self.clock()
        t = _TABLE
        async with self.sessions() as session:
            counts = await session.execute(
                select(t.c.channel, t.c.status, func.count())
                .where(t.c.status.in_(("pending", "sending", "failed")))
                .group_by(t.c.channel, t.c.status)
            )
            oldest = (
                await session.execute(
                    select(func.min(t.c.next_attempt_at)).where(
                        t.c.status == "pending", t.c.next_attempt_at <= now
                    )
                )
            ).scalar_one_or_none()
        gauge = self.metrics.outbox_queue
        gauge.clear()
        for channel_name, status, count in counts:
            gauge.labels(channel_name, status).set(count)
        age = (now - oldest).total_seconds() if oldest is not None else 0.0
        self.metrics.outbox_oldest_age.set(max(0.0, age))

    async def _left(self) -> tuple[int, int]:
        """Messages of this worker's channels waiting or being sent, and failures waiting to
        be reported, read in one statement (one snapshot)."""
        t = _TABLE
        waiting = (
            select(func.count())
            .where(t.c.status.in_(_OPEN), t.c.channel.in_(list(self.senders)))
            .scalar_subquery()
        )
        failures = select(func.count()).where(reportable()).scalar_subquery()
        async with self.sessions() as session:
            found = (await session.execute(select(waiting, failures))).one()
        return int(found[0]), int(found[1])

    async def _idle(self) -> bool:
        if self._inflight or self._unwritten:
            return False
        waiting, failures = await self._left()
        if waiting:
            return False
        if not failures:
            return True
        async with self.sessions() as session:  # failures wait only for a coordinator
            return not await recipients(session, "coordinator")


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text or type(exc).__name__)[:500]


def _statement(outcome: _Outcome) -> Update:
    """The guarded ``UPDATE`` for one outcome (a no-op if another claim took the row)."""
    t = _TABLE
    row = outcome.row
    values: dict[str, Any] = {"status": outcome.status, "lease_until": None}
    if outcome.status == "sent":
        values.update(sent_at=outcome.at, last_error=None)
    elif outcome.status == "pending":
        values["next_attempt_at"] = outcome.at
        if outcome.error is not None:
            values["last_error"] = outcome.error
    else:
        values["last_error"] = outcome.error
    if outcome.refund:
        values["attempts"] = t.c.attempts - 1
    if outcome.tried_at is not None:
        values["last_attempt_at"] = outcome.tried_at
    if outcome.parts_sent is not None:
        values["parts_sent"] = outcome.parts_sent
    return (
        update(t)
        .where(t.c.id == row.id, t.c.status == "sending", t.c.attempts == row.attempts)
        .values(**values)
    )


WORKER = web.AppKey("outbox_worker", OutboxWorker)
"""The running worker of ``pufa serve``."""
