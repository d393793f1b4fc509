"""SQLite's batch writer in a process of its own (what ``pufa serve`` stores submissions with):
outcomes come back whole, a writer process that died is replaced, one killed mid-batch loses
nothing and stores nothing twice, and it exits when the web server's process is gone."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.db import sqlite_pragmas
from storage.models_surveys import SurveyAnswer, SurveyResponse
from surveys.respondents import invitation_hash, pseudonym
from surveys.schema import load_catalog
from surveys.sqlite_writer import (
    FRESH_PASS,
    OWN_CHECKPOINT_INTERVAL,
    OWN_CHECKPOINT_LATEST,
    SQLiteBatchWriter,
    SQLiteWriterProcess,
    WalCheckpointer,
    checkpoint,
    own_checkpoint_due,
)
from surveys.submission import (
    AlreadyAnswered,
    IdempotencyKeyReused,
    InvalidAnswers,
    Submission,
    SubmitResult,
    TokenInvalid,
    submit_many,
)
from tests.surveys.conftest import NOW, SECRET, fazhi_answers, make_invitations, seed_surveys


def _path(db_url: str) -> str:
    url = make_url(db_url)
    if url.get_backend_name() != "sqlite":
        pytest.skip("the writer process is SQLite's")
    return str(url.database)


def _item(who: str, key: str | None = None, **answers: object) -> Submission:
    survey = load_catalog()["fazhi-2026"]
    return Submission(
        survey,
        fazhi_answers(**answers),  # type: ignore[arg-type]
        pseudonym(SECRET, "test", who),
        "api",
        None,
        "zh_CN",
        NOW,
        idempotency_key=key,
    )


async def _count(sessions: async_sessionmaker[AsyncSession], column: object) -> int:
    async with sessions() as session:
        return int((await session.execute(select(func.count(column)))).scalar_one())  # type: ignore[arg-type]


def _alive(pid: int) -> bool:
    """Whether any thread of ``pid`` still runs (a zombie no longer does).

    The writer process has a checkpoint thread: after SIGKILL its main thread shows as a
    zombie while that thread is still exiting, and until it has, the process cannot be
    reaped and its pipes stay open. So every thread is looked at, not only the main one."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return False
    for task in tasks:
        try:
            state = (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue  # that thread has gone
        if state not in ("Z", "X"):
            return True
    return False


async def test_outcomes_come_back_from_the_writer_process_whole(
    db_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await seed_surveys(sessions)
    (token,) = await make_invitations(sessions, 1, township="xj")
    writer = SQLiteWriterProcess(_path(db_url))
    invited = _item("invited", "k-invited")
    invited.token_hash = invitation_hash(SECRET, token)
    forged = _item("forged")
    forged.token_hash = invitation_hash(SECRET, "not-a-token")
    try:
        first = await writer.store([invited, _item("a", "k-a"), forged])
        pid = writer.pid
        second = await writer.store(
            [
                _item("a", "k-a"),  # the same request again: a replay
                _item("a", "k-a", level="dissatisfied"),  # the key, a different request
                _item("a"),  # the same person without a key
                _item("b", public_service="no-such-option"),
            ]
        )
    finally:
        await writer.close()

    assert pid is not None and writer.pid is None
    stored, same_key, forged_out = first
    assert isinstance(stored, SubmitResult) and stored.created and stored.township == "xj"
    assert isinstance(same_key, SubmitResult) and same_key.created
    assert isinstance(forged_out, TokenInvalid)
    replay, reused, again, invalid = second
    assert replay == SubmitResult(same_key.response_id, False, "fazhi-2026", None)
    assert isinstance(reused, IdempotencyKeyReused) and reused.response_id == same_key.response_id
    assert isinstance(again, AlreadyAnswered) and again.response_id == same_key.response_id
    assert isinstance(invalid, InvalidAnswers)
    assert set(invalid.errors) == {"public_service"}
    assert invalid.errors["public_service"].code == "invalid_option"
    assert await _count(sessions, SurveyResponse.id) == 2
    assert await _count(sessions, SurveyAnswer.id) > 2


async def test_the_writer_process_stores_the_rows_the_in_process_path_stores(
    db_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The writer process binds each row's columns itself; the in-process path reads them out
    of JSON. The same submissions, one of each pair by each path, must give the same rows."""
    await seed_surveys(sessions)
    tokens = await make_invitations(sessions, 2, township="xj")
    odd = "引号\"与\\反斜杠 <b>&amp;</b> 'OR 1=1; -- 𠀀 é\t"
    variants = [
        {"comment": odd, "level": "very_satisfied"},
        {"comment": "", "channels": ["website"], "level": "dissatisfied"},
    ]

    def pair(n: int, path: str, overrides: dict[str, object]) -> Submission:
        item = _item(f"{path}-{n}", f"key-{path}-{n}", **overrides)
        if n == 0:
            item.token_hash = invitation_hash(SECRET, tokens[0 if path == "writer" else 1])
        if n == 1:
            item.sample = True
        return item

    writer = SQLiteWriterProcess(_path(db_url))
    try:
        by_writer = await writer.store([pair(n, "writer", v) for n, v in enumerate(variants)])
    finally:
        await writer.close()
    async with sessions() as session:
        in_process = await submit_many(
            session, [pair(n, "session", v) for n, v in enumerate(variants)]
        )
        await session.commit()
    outcomes = [*by_writer, *in_process]
    assert all(isinstance(o, SubmitResult) and o.created for o in outcomes), outcomes

    async def stored(outcome: object) -> tuple[dict[str, Any], tuple[bool, bool], list[Any]]:
        """The response's columns (but its own keys), whether it has an invitation and a
        request fingerprint, and its answers' columns."""
        assert isinstance(outcome, SubmitResult)
        async with sessions() as session:
            response = await session.get(SurveyResponse, outcome.response_id)
            assert response is not None
            answers = (
                await session.execute(
                    select(SurveyAnswer).where(SurveyAnswer.response_id == outcome.response_id)
                )
            ).scalars()
            own = ("id", "respondent", "idempotency_key", "invitation_id", "request_hash")
            return (
                {k: v for k, v in response.model_dump().items() if k not in own},
                (response.invitation_id is not None, response.request_hash is not None),
                sorted(
                    (a.survey, a.question, a.value, a.text, a.township, a.channel, a.sample)
                    for a in answers
                ),
            )

    for ours, theirs in zip(by_writer, in_process, strict=True):
        assert await stored(ours) == await stored(theirs)
    columns, (invited, fingerprinted), answers = await stored(by_writer[0])
    assert invited and fingerprinted
    assert (columns["created_at"], columns["township"], columns["sample"]) == (NOW, "xj", False)
    assert ("fazhi-2026", "comment", None, odd.strip(), "xj", "api", False) in answers
    assert (await stored(by_writer[1]))[0]["sample"] is True


async def test_the_writer_process_starts_before_the_first_batch_and_stops_unused(
    db_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Started with the web server, so the first submission does not wait for it to be
    ready; a server stopped before any submission does not wait for it either."""
    await seed_surveys(sessions)
    writer = SQLiteWriterProcess(_path(db_url))
    await writer.start()
    pid = writer.pid
    assert pid is not None and _alive(pid)
    await writer.start()  # already running: the same process
    assert writer.pid == pid
    await writer.close()
    assert writer.pid is None and not _alive(pid)

    await writer.start()
    used = writer.pid
    try:
        (stored,) = await writer.store([_item("first")])
        assert writer.pid == used  # the batch went to the process started beforehand
    finally:
        await writer.close()
    assert isinstance(stored, SubmitResult) and stored.created
    assert used is not None and not _alive(used)


async def test_a_writer_process_that_died_is_replaced(
    db_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await seed_surveys(sessions)
    writer = SQLiteWriterProcess(_path(db_url))
    try:
        (one,) = await writer.store([_item("one")])
        first = writer.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(first) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        (two,) = await writer.store([_item("two")])
        assert writer.pid not in (None, first)
    finally:
        await writer.close()
    assert isinstance(one, SubmitResult) and isinstance(two, SubmitResult)
    assert await _count(sessions, SurveyResponse.id) == 2


async def test_a_writer_process_killed_mid_batch_loses_nothing_and_stores_nothing_twice(
    db_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Killed while one batch waits for the database and another waits behind it: both fail
    as a lost connection (the group committer's retry), and the retry stores each submission
    once."""
    path = _path(db_url)
    await seed_surveys(sessions)
    writer = SQLiteWriterProcess(path)
    items = [_item(f"p{n}", f"k{n}") for n in range(5)]
    try:
        await writer.store([_item("warm-up")])
        pid = writer.pid
        assert pid is not None
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # the batch waits for this lock
        try:
            # Two batches in flight: the first waits for the lock, the second in the pipe.
            pending = [asyncio.ensure_future(writer.store(part)) for part in (items[:3], items[3:])]
            await asyncio.sleep(1.0)
            assert not any(one.done() for one in pending)
            os.kill(pid, signal.SIGKILL)
            for one in pending:
                with pytest.raises(OperationalError):
                    await asyncio.wait_for(one, timeout=30)
        finally:
            other.execute("ROLLBACK")
            other.close()
        retried = await writer.store(items)
        again = await writer.store(items)  # a second retry: replays, nothing new
    finally:
        await writer.close()
    assert all(isinstance(o, SubmitResult) and o.created for o in retried)
    assert all(isinstance(o, SubmitResult) and not o.created for o in again)
    assert [o.response_id for o in again] == [o.response_id for o in retried]  # type: ignore[union-attr]
    assert await _count(sessions, SurveyResponse.id) == 6


async def test_batches_in_flight_together_are_stored_in_order_each_with_its_own_outcomes(
    db_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The second batch is sent while the first waits for the database; the process stores
    them one after the other, so the second sees the first's respondent as already answered,
    and each batch gets its own outcomes back."""
    path = _path(db_url)
    await seed_surveys(sessions)
    writer = SQLiteWriterProcess(path)
    try:
        await writer.store([_item("warm-up")])
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # the first batch waits for this lock
        try:
            first = asyncio.ensure_future(writer.store([_item("a"), _item("b")]))
            await asyncio.sleep(0.3)
            second = asyncio.ensure_future(writer.store([_item("c"), _item("a")]))
            await asyncio.sleep(0.3)
            assert not first.done() and not second.done()
        finally:
            other.execute("ROLLBACK")
            other.close()
        a, b = await asyncio.wait_for(first, timeout=30)
        c, a_again = await asyncio.wait_for(second, timeout=30)
    finally:
        await writer.close()
    assert isinstance(a, SubmitResult) and a.created
    assert isinstance(b, SubmitResult) and b.created
    assert isinstance(c, SubmitResult) and c.created
    assert isinstance(a_again, AlreadyAnswered)
    assert len({a.response_id, b.response_id, c.response_id}) == 3
    assert await _count(sessions, SurveyResponse.id) == 4


_PARENT = """
import asyncio, sys
from surveys.sqlite_writer import SQLiteWriterProcess
from tests.surveys.test_sqlite_writer_process import _item

writer = SQLiteWriterProcess(sys.argv[1])
asyncio.run(writer.store([_item("parent")]))
print(writer.pid, flush=True)
sys.stdin.read()
"""


async def test_the_writer_process_exits_when_the_web_server_process_is_killed(
    db_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await seed_surveys(sessions)
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, _path(db_url)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
        text=True,
    )
    try:
        assert parent.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(parent.stdout.readline), timeout=60)
        child = int(line)
        assert _alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not _alive(child), "the writer process outlived the web server's process"
    finally:
        parent.kill()
        parent.wait()
    assert await _count(sessions, SurveyResponse.id) == 1


def _write_blobs(conn: sqlite3.Connection, commits: int, *, every: int | None) -> None:
    """``commits`` transactions of one 4 KiB row each (a WAL page or more each); with
    ``every``, the writer's own passive checkpoint after every ``every`` of them, as the writer
    process runs one between batches."""
    for n in range(commits):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO blob (body) VALUES (?)", (os.urandom(4096),))
        conn.execute("COMMIT")
        if every is not None:
            if n % every == every - 1:
                checkpoint(conn)
            time.sleep(0.0005)  # the writer waits for its next batch now and then


@pytest.mark.parametrize("checkpointed", [True, False])
def test_the_wal_is_copied_back_beside_the_writer_and_starts_again(
    tmp_path: Path, checkpointed: bool
) -> None:
    """With SQLite's automatic checkpoint off (as in the writer process, so that no batch's
    COMMIT waits for one), the checkpoint thread and the writer's own passive checkpoints keep
    the WAL small; without them it grows with every commit (the control)."""
    path = str(tmp_path / "wal.db")
    conn = sqlite3.connect(path, isolation_level=None)
    sqlite_pragmas(conn)
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE blob (id INTEGER PRIMARY KEY, body BLOB)")
    checkpointer = WalCheckpointer(path)
    if checkpointed:
        checkpointer.start()
    try:
        for _ in range(3):
            _write_blobs(conn, 400, every=100 if checkpointed else None)
            checkpointer.wrote()
    finally:
        if checkpointed:
            checkpointer.stop()
    wal_mb = os.path.getsize(path + "-wal") / 2**20
    assert conn.execute("SELECT count(*) FROM blob").fetchone() == (1200,)
    conn.close()
    if checkpointed:
        assert checkpointer.passes >= 1
        assert wal_mb < 2.5, wal_mb  # 1,200 commits of 4 KiB and more: about 10 MB unchecked
    else:
        assert wal_mb > 9, wal_mb


def test_the_writer_checkpoints_just_after_a_pass_of_the_thread_or_when_it_is_late(
    tmp_path: Path,
) -> None:
    """The writer's own checkpoint (which the batches behind it wait for) is due after
    OWN_CHECKPOINT_INTERVAL, but runs only just after one of the thread's passes, when least
    is left to copy, unless OWN_CHECKPOINT_LATEST has passed."""
    early, due, late = OWN_CHECKPOINT_INTERVAL / 2, OWN_CHECKPOINT_INTERVAL, OWN_CHECKPOINT_LATEST
    assert [own_checkpoint_due(since, True) for since in (early, due, late)] == [False, True, True]
    assert [own_checkpoint_due(since, False) for since in (early, due, late)] == [
        False,
        False,
        True,
    ]

    path = str(tmp_path / "pass.db")
    conn = sqlite3.connect(path, isolation_level=None)
    sqlite_pragmas(conn)
    conn.execute("CREATE TABLE blob (id INTEGER PRIMARY KEY, body BLOB)")
    checkpointer = WalCheckpointer(path)
    assert not checkpointer.just_passed(time.monotonic())  # no pass yet
    checkpointer.start()
    try:
        _write_blobs(conn, 10, every=None)
        checkpointer.wrote()
        deadline = time.monotonic() + 10
        while checkpointer.passes < 1 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert checkpointer.passes == 1
        passed_at = checkpointer.passed_at
        assert passed_at <= time.monotonic()
        assert checkpointer.just_passed(passed_at + FRESH_PASS / 2)
        assert not checkpointer.just_passed(passed_at + FRESH_PASS * 2)  # no longer fresh
    finally:
        checkpointer.stop()
        conn.close()


async def test_the_writer_process_copies_its_batches_back_into_the_database_file(
    db_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """Soon after a batch, its rows are in the database file itself, not only in the WAL:
    the writer process checkpoints (a few pages: SQLite's own automatic checkpoint would wait
    for 10,000). Read from a copy of the file alone, without its WAL."""
    path = _path(db_url)
    await seed_surveys(sessions)
    writer = SQLiteWriterProcess(path)
    try:
        outcomes = await writer.store([_item(f"f{n}") for n in range(3)])
        assert all(isinstance(o, SubmitResult) and o.created for o in outcomes)
        copy = tmp_path / "file-alone.db"
        in_file = 0
        deadline = time.monotonic() + 10
        while in_file < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            copy.write_bytes(Path(path).read_bytes())
            Path(f"{copy}-wal").unlink(missing_ok=True)
            alone = sqlite3.connect(copy)
            try:
                in_file = alone.execute("SELECT count(*) FROM survey_response").fetchone()[0]
            except sqlite3.DatabaseError:
                in_file = 0  # copied mid-checkpoint: try again
            finally:
                alone.close()
    finally:
        await writer.close()
    assert in_file == 3


def test_the_writer_s_commits_sync_the_wal(tmp_path: Path) -> None:
    """A submission is answered 201 after its batch's COMMIT: the writer's connection gets
    pufa's pragmas, so that COMMIT syncs the WAL (``synchronous=FULL``) and the answer holds
    through a power cut (pufa's other connections: tests/foundation/test_db.py)."""
    from sqlalchemy.dialects import sqlite

    writer = SQLiteBatchWriter(str(tmp_path / "sync.db"), sqlite.dialect())
    conn, _ = writer._connect()
    try:
        assert conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        writer._close()
