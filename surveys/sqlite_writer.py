"""Storing submission batches on SQLite in one call: a plain connection off the web loop.

Through the async driver every statement of a batch is a trip to the driver's thread and back,
and each trip waits for the event loop to come round, which under load (the loop busy with
hundreds of requests) is what a batch's time went to. :class:`SQLiteBatchWriter` keeps one
plain ``sqlite3`` connection for the group committer, whose worker runs on an event loop in a
thread of its own (:mod:`surveys.committer`), and stores a whole batch there as a single call:
``BEGIN IMMEDIATE``, :func:`surveys.submission.batch_plan`'s lookup (the survey states with it)
and write, ``COMMIT``. The web server's loop only hands submissions over and gets each batch's
outcomes back.

It is a writer like any other on the file: other connections (the chat dialogs, the console,
another process) wait for its transaction through SQLite's busy timeout, as it waits for theirs.
``BEGIN IMMEDIATE`` takes the write lock first, so the batch's checks and writes see one state
of the database. Errors come back as SQLAlchemy's ``IntegrityError`` / ``OperationalError``,
which the group committer handles (retry one by one, retry later).

``pufa serve`` runs that writer in a process of its own, :class:`SQLiteWriterProcess`: in a
thread it shared the interpreter lock with the web server's loop, and under load the two took
turns on one core (the writer's own Python — deciding each submission, packing its rows — and
the web loop's). The process gets a batch as one pickled message over a pipe (each
submission's fields, and any survey it names that the process has not been sent yet) and
sends the outcomes back; the web server's process keeps only the hand-over. There a thread
copies the WAL back into the database file (:class:`WalCheckpointer`), so that no batch's
``COMMIT`` has to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import sqlite3
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import IO, Any

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError, OperationalError

from storage.db import sqlite_pragmas
from surveys.submission import Submission, SubmitError, SubmitResult, batch_plan, run_batch_sync
from surveys.submission_sql import SQLiteStatements, translated

__all__ = ["PIPELINE", "SQLiteBatchWriter", "SQLiteWriterProcess", "WalCheckpointer"]

log = logging.getLogger(__name__)


class SQLiteBatchWriter:
    """Stores batches of submissions on the SQLite file ``path`` (one connection, used from
    the thread that first stores)."""

    def __init__(self, path: str, dialect: Dialect) -> None:
        self._path = path
        self._dialect = dialect
        self._conn: sqlite3.Connection | None = None
        self._sql: SQLiteStatements | None = None

    async def store(self, items: Sequence[Submission]) -> list[SubmitResult | SubmitError]:
        """Store ``items`` in one transaction (committed when this returns); their outcomes.

        Blocks the calling event loop for the batch: it runs on the group committer's loop in
        a thread of its own, which has nothing else to do meanwhile."""
        return self._store(list(items))

    async def close(self) -> None:
        """Close the connection."""
        self._close()

    def _connect(self) -> tuple[sqlite3.Connection, SQLiteStatements]:
        if self._conn is None or self._sql is None:
            # Autocommit mode: the transactions are the explicit BEGIN/COMMIT of each batch.
            conn = sqlite3.connect(self._path, timeout=30, isolation_level=None)
            # synchronous=FULL (sqlite_pragmas): each batch's COMMIT syncs the WAL, so a
            # submission answered 201 outlives a power cut too, not only a crash. It also
            # spreads the syncing over the batches: with NORMAL about a second of WAL pages
            # waited for the writer's own checkpoint to sync them, and the batches behind it
            # waited too (the p99).
            sqlite_pragmas(conn)
            self._conn, self._sql = conn, SQLiteStatements(conn, self._dialect)
        return self._conn, self._sql

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = self._sql = None

    def _store(self, items: list[Submission]) -> list[SubmitResult | SubmitError]:
        if not items:
            return []
        conn, sql = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            outcomes = run_batch_sync(batch_plan(items), sql)
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise translated(exc, "submission batch") from exc
            raise
        return outcomes


# A message is its length (4 bytes, big-endian) and a pickle. Only this process and the writer
# process it started write to these pipes.
_LENGTH = struct.Struct(">I")
# The fields of a Submission the writer needs (not the plain token: its keyed hash is enough).
_FIELDS = (
    "answers", "respondent", "channel", "township_code", "locale", "now", "idempotency_key",
    "sample", "token_hash",
)  # fmt: skip


def _send(stream: IO[bytes], message: Any) -> None:
    stream.write(_message(message))
    stream.flush()


def _message(message: Any) -> bytes:
    """``message`` framed for the pipe: its length, then its pickle."""
    data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


def _receive(stream: IO[bytes]) -> Any:
    """The next message, or ``EOFError`` when the other side has gone."""
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        raise EOFError("the other side closed the pipe")
    (size,) = _LENGTH.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the other side closed the pipe")
    return pickle.loads(data)


def _lost(cause: BaseException) -> OperationalError:
    """A batch whose writer process went away before it replied (the committer retries)."""
    return OperationalError("submission batch (writer process)", None, cause)


class _Child:
    """A running writer process, its pipes on the event loop that started it, the batches sent
    to it that await their reply (in the order sent), and the task that reads the replies."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.sent = False  # whether it has been given a batch
        self.surveys: dict[str, Any] = {}  # the surveys it has been sent
        self.dead = False  # its pipe has closed: it is replaced on the next batch
        self._pending: deque[asyncio.Future[Any]] = deque()
        self._reader = asyncio.create_task(self._read(), name="sqlite-writer-replies")

    def send(self, message: Any, future: asyncio.Future[Any]) -> None:
        """Send ``message`` (a batch); ``future`` gets its reply.

        The write never blocks: what the pipe cannot take yet waits in the transport's buffer,
        which holds at most the :data:`PIPELINE` batches in flight."""
        if self.dead:
            raise _lost(EOFError("the writer process has exited"))
        assert self.proc.stdin is not None
        self._pending.append(future)
        self.sent = True
        # A process that has gone makes the write a no-op; the reader then fails the batch.
        self.proc.stdin.write(_message(message))

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        error: BaseException
        while True:
            try:
                head = await self.proc.stdout.readexactly(_LENGTH.size)
                reply = pickle.loads(await self.proc.stdout.readexactly(_LENGTH.unpack(head)[0]))
            except Exception as exc:  # gone, or unreadable: either way the pipe is done
                error = exc
                break
            if not self._pending:  # a reply nobody waits for: out of step, start again
                error = RuntimeError("a reply from the writer process for no batch")
                break
            future = self._pending.popleft()
            if not future.done():
                future.set_result(reply)
        if not isinstance(error, asyncio.IncompleteReadError):
            log.warning("the SQLite writer process's replies stopped: %r", error)
        self.dead = True
        pending, self._pending = list(self._pending), deque()
        for future in pending:
            if not future.done():
                future.set_exception(_lost(error))

    async def stop(self, kill: bool) -> None:
        """Close the pipe (the process finishes the batches it was sent), or kill it; wait
        until it has exited and every batch sent to it is settled."""
        if kill:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), timeout=10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()
        await self._reader


class SQLiteWriterProcess:
    """:class:`SQLiteBatchWriter` on the SQLite file ``path``, run in a child process
    (``python -m surveys.sqlite_writer PATH``) started by :meth:`start` (the web server
    starts it with itself: it takes about half a second to be ready, which the first
    submission would otherwise wait for) or by the first batch.

    The same interface: :meth:`store` returns when the batch is committed. It does not wait
    for one batch's reply before sending the next: the process stores the batches it is sent
    one after the other, in one connection, and while it stores one the next is on its way
    (the group committer keeps :data:`PIPELINE` batches in flight). The pipes are the event
    loop's (asyncio's subprocess streams), so sending and reading the replies run on the loop
    that uses the writer, every call on one loop: no thread of this process waits for the
    interpreter lock. A child that has exited is started again on the next batch; one that
    dies with batches unanswered fails each with ``OperationalError`` (the group committer
    retries them, and their lookup then finds what of them was committed). The child exits
    when this process closes the pipe, or dies."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._child: _Child | None = None
        self._starting: asyncio.Future[_Child] | None = None

    @property
    def pid(self) -> int | None:
        """The writer process's id while it runs."""
        child = self._child
        return child.proc.pid if child is not None and not child.dead else None

    async def start(self) -> None:
        """Start the writer process now, if it is not running (returns once it is started;
        it gets ready in the background)."""
        await self._running()

    async def store(self, items: Sequence[Submission]) -> list[SubmitResult | SubmitError]:
        """Store ``items`` in one transaction in the writer process (committed when this
        returns); their outcomes. Another batch can be sent while this one is stored."""
        if not items:
            return []
        rows = [(item.survey.code, *(getattr(item, f) for f in _FIELDS)) for item in items]
        child = await self._running()
        # Each survey goes to the child once (about 7.5 KB and 0.1 ms pickled and read).
        surveys = {
            item.survey.code: item.survey
            for item in items
            if child.surveys.get(item.survey.code) is not item.survey
        }
        future: asyncio.Future[tuple[str, Any]] = asyncio.get_running_loop().create_future()
        child.send((surveys, rows), future)
        child.surveys.update(surveys)
        kind, value = await future
        if kind == "ok":
            return list(value)
        if kind == "integrity":
            raise IntegrityError(value, None, Exception(value))
        if kind == "operational":
            raise OperationalError(value, None, Exception(value))
        raise RuntimeError(f"the SQLite writer process failed: {value}")

    async def close(self) -> None:
        """Stop the writer process (it finishes the batches it has, if any)."""
        if self._starting is not None and not self._starting.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(self._starting)
        child, self._child = self._child, None
        if child is not None:
            await child.stop(kill=not child.sent)

    async def _running(self) -> _Child:
        """The running child; a new one if there is none or it has exited (one start at a
        time, whoever asks)."""
        child = self._child
        if child is not None and not child.dead:
            return child
        if self._starting is None or self._starting.done():
            self._starting = asyncio.ensure_future(self._replace(child))
        return await asyncio.shield(self._starting)

    async def _replace(self, old: _Child | None) -> _Child:
        if old is not None:
            self._child = None
            await old.stop(kill=True)
        # The child imports pufa as this process does (same interpreter, same sys.path).
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "surveys.sqlite_writer", self._path,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        self._child = _Child(proc)
        return self._child


#: How many batches the group committer keeps in flight to the writer process: while the
#: process stores one, the next is sent (and read by the process) so it can start at once.
PIPELINE = 2


#: The writer's own checkpoint runs at most this often (seconds), after a batch's reply. The
#: batches behind it wait while it copies what the thread's passes left; at 0.5 s there is
#: less left each time. Under the SQLite load at 50 connections, rounds of 8 s side by side:
#: p99 15.4-17.5 ms at 0.5 s (six rounds) against 20.3-21.9 at 1 s (six), throughput and the
#: figures at 200 connections within the noise; 0.25 s was no better (15.7 and 19.3).
OWN_CHECKPOINT_INTERVAL = 0.5
#: Once due, the writer's own checkpoint waits for the moment just after one of the thread's
#: passes (when least is left to copy), but runs anyway once this long (seconds) has gone by
#: since its last one.
OWN_CHECKPOINT_LATEST = 3.0
#: "Just after a pass": the thread finished one less than this long ago (seconds).
FRESH_PASS = 0.02
#: How long the checkpoint thread lets a batch's pages gather before copying them. Short, so
#: that each pass (and the sync of the database file that ends it) is small: since the
#: writer's commits sync the WAL, a long pass's sync held up the commits behind it, and the
#: writer's own checkpoint had more left to copy. Under the SQLite load at 50 connections:
#: passes 6.4 ms at the median and own checkpoints 3.4 ms at 0.03 s, against 9.5 and 5.8 ms at
#: 0.1 s and 19 and 24 ms at 0.4 s.
CHECKPOINT_PAUSE = 0.03


class WalCheckpointer:
    """Copies the WAL back into the database file from a thread of its own, beside the batch
    writer, so that a batch's ``COMMIT`` does not do it.

    On its own connection it runs ``PRAGMA wal_checkpoint(PASSIVE)`` (which never blocks a
    writer) a moment after each batch (:meth:`wrote`); SQLite's driver lets go of the
    interpreter lock meanwhile, so the writer goes on with the next batch. A passive
    checkpoint cannot finish while the writer keeps adding pages, and the WAL starts again
    from its beginning only after one has; so the writer itself runs one after a batch's reply
    every :data:`OWN_CHECKPOINT_INTERVAL` seconds, just after one of the thread's passes
    (:meth:`just_passed`), when least is left to copy: the batches behind it wait meanwhile.
    Timed under load at 50 connections (36 checkpoints each way), that wait was 25 ms at the
    median and 33 ms at the 90th percentile when the writer's checkpoint ran as soon as it was
    due, and 17 and 27 ms just after a pass (about 200 pages left to copy, but the two cores
    are busy, so copying them takes three times its CPU time).
    With SQLite's automatic checkpoint instead (every 10,000 pages) every 45th batch or so
    waited about 0.2 s for its ``COMMIT``.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._wrote = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self.passes = 0
        self._in_pass = False
        self._passed_at = float("-inf")

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def wrote(self) -> None:
        """Say that a batch was committed."""
        self._wrote.set()

    @property
    def passed_at(self) -> float:
        """When (``time.monotonic()``) the thread last finished a pass (``-inf``: never)."""
        return self._passed_at

    def just_passed(self, now: float) -> bool:
        """Whether the thread finished a pass less than :data:`FRESH_PASS` seconds before
        ``now`` (a ``time.monotonic()`` reading) and has not started another."""
        return not self._in_pass and now - self._passed_at < FRESH_PASS

    def stop(self) -> None:
        """Stop the thread (after the pass it is in, if any)."""
        self._stopping = True
        self._wrote.set()
        self._thread.join()

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, timeout=30, isolation_level=None)
        try:
            sqlite_pragmas(conn)
            conn.execute("PRAGMA wal_autocheckpoint=0")
            while True:
                self._wrote.wait()
                if self._stopping:
                    return
                time.sleep(CHECKPOINT_PAUSE)
                self._wrote.clear()
                if self._stopping:  # stop() sets the flag before the event this just cleared
                    return
                self._in_pass = True
                try:
                    checkpoint(conn)
                finally:
                    self._passed_at = time.monotonic()
                    self._in_pass = False
                self.passes += 1
        finally:
            conn.close()


def own_checkpoint_due(since: float, just_passed: bool) -> bool:
    """Whether the writer runs its own checkpoint now, ``since`` seconds after its last one:
    once :data:`OWN_CHECKPOINT_INTERVAL` has passed, just after a pass of the thread's, or
    regardless once :data:`OWN_CHECKPOINT_LATEST` has."""
    if since < OWN_CHECKPOINT_INTERVAL:
        return False
    return just_passed or since >= OWN_CHECKPOINT_LATEST


def checkpoint(conn: sqlite3.Connection) -> None:
    """One passive checkpoint on ``conn`` (an error is logged: the next one may succeed)."""
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.Error:
        log.warning("WAL checkpoint failed", exc_info=True)


def serve_batches(path: str, requests: IO[bytes], replies: IO[bytes]) -> None:
    """The writer process's loop: store each batch read from ``requests`` on ``path`` and
    write its outcomes (or the error) to ``replies``, until ``requests`` is closed. The WAL
    is checkpointed beside it (:class:`WalCheckpointer`)."""
    from sqlalchemy.dialects import sqlite

    from core.heap import settle_heap

    writer = SQLiteBatchWriter(path, sqlite.dialect())
    conn, _ = writer._connect()
    conn.execute("PRAGMA wal_autocheckpoint=0")
    checkpointer = WalCheckpointer(path)
    checkpointer.start()
    settle_heap()
    surveys: dict[str, Any] = {}  # every survey sent so far, by code
    own_checkpoint_at = time.monotonic()
    try:
        while True:
            try:
                new, rows = _receive(requests)
            except EOFError:
                return
            surveys.update(new)
            items = [
                Submission(surveys[row[0]], **dict(zip(_FIELDS, row[1:], strict=True)))
                for row in rows
            ]
            reply: tuple[str, Any]
            try:
                reply = ("ok", writer._store(items))
            except IntegrityError as exc:
                reply = ("integrity", str(exc.orig or exc))
            except OperationalError as exc:
                reply = ("operational", str(exc.orig or exc))
            except Exception as exc:  # reported to the web server's process
                reply = ("error", repr(exc))
            try:
                _send(replies, reply)
            except OSError:
                return  # the web server's process is gone
            checkpointer.wrote()
            now = time.monotonic()
            if own_checkpoint_due(now - own_checkpoint_at, checkpointer.just_passed(now)):
                checkpoint(conn)
                own_checkpoint_at = time.monotonic()
    finally:
        checkpointer.stop()
        writer._close()


if __name__ == "__main__":
    # The writer lives as long as its pipe: Ctrl-C or a stop signal sent to the whole process
    # group is for the web server's process, which closes the pipe when it has drained.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Replies go to the pipe that was standard output; anything else written there (a stray
    # print) goes to standard error instead, not into the replies.
    _replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    serve_batches(sys.argv[1], sys.stdin.buffer, _replies)
