"""The outbox worker against the fake Bot API over HTTP with the real python-telegram-bot stack:
faults, pacing, leases, the circuit breaker, waking, alerts and gauges."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from bot.channels.telegram import TelegramSender
from bot.outbox.queue import Outgoing, Recipient, enqueue, wake_on_commit
from bot.outbox.sender import OutboundItem, Sender
from bot.outbox.worker import SLACK
from core.clock import utcnow
from core.messages import Reply
from core.metrics import Metrics
from storage.db import transaction
from storage.models import ChatIdentity
from storage.models_outbox import OutboxMessage
from tests.fakes.telegram_api import FakeBotApi
from tests.outbox.conftest import (
    ARRIVAL_JITTER,
    Timed,
    counter,
    delivered,
    make_worker,
    most_in_window,
    queue_texts,
    rows,
    send_times,
)


async def test_faults_every_message_delivered_once_and_every_fault_counted(
    sessions: async_sessionmaker[AsyncSession], fake: FakeBotApi, sender: TelegramSender
) -> None:
    texts = [f"通知 {i}" for i in range(60)]
    await queue_texts(sessions, [(str(1000 + i % 30), text) for i, text in enumerate(texts)])
    fake.inject_faults("sendMessage", error_rate=0.2, seed=7)  # a fifth answered 500
    fake.inject_429("sendMessage", retry_after=1, times=3)  # a burst of flood control
    fake.stall_next("sendMessage", times=2, seconds=30)  # hangs past the 0.5 s read timeout
    fake.drop_next("sendMessage", times=2)  # connection closed without an answer
    metrics = Metrics()
    worker = make_worker(
        sessions, {"telegram": sender}, metrics, max_attempts=30, breaker_threshold=100
    )

    await worker.drain(timeout=60)

    assert sorted(delivered(fake)) == sorted(texts)  # every message, none twice
    faults = fake.faults
    assert faults["429"] == 3 and faults["timeout"] == 2 and faults["drop"] == 2
    assert faults["500"] >= 5, faults
    # the worker saw every fault as a transient failure and tried again
    assert counter(metrics, "retried") == sum(faults.values())
    assert counter(metrics, "sent") == 60 and counter(metrics, "failed") == 0
    stored = await rows(sessions)
    assert {r.status for r in stored} == {"sent"}
    assert all(r.lease_until is None and r.sent_at is not None for r in stored)
    # each fault but flood control (429, which costs no attempt) took one attempt
    spent = sum(r.attempts for r in stored) - len(stored)
    assert spent == sum(faults.values()) - faults["429"]


async def test_a_long_message_cut_short_by_failures_is_not_sent_twice(
    sessions: async_sessionmaker[AsyncSession], fake: FakeBotApi, sender: TelegramSender
) -> None:
    lines = [f"{n}. 第{n}村 法律明白人 缺 2 名（贫困村须 3 名）" for n in range(1, 301)]
    long = Outgoing("test:long", Recipient("telegram", "42", "zh_CN"), Reply("\n".join(lines)))
    async with transaction(sessions) as session:
        assert await enqueue(session, [long], utcnow()) == 1
    fake.fail_next("sendMessage", error_code=500, after=1)  # the second piece: 500
    fake.inject_429("sendMessage", retry_after=1)  # then flood control on the retry
    worker = make_worker(sessions, {"telegram": sender})

    await worker.drain(timeout=30)

    sent = fake.sent_messages(42)
    assert len(sent) == 3  # three pieces, none twice (the fake refuses > 4,096 characters)
    assert [line for message in sent for line in message["text"].split("\n")] == lines
    [row] = await rows(sessions)
    assert (row.status, row.attempts) == ("sent", 2)  # the 500 took an attempt, the 429 not
    assert fake.faults["500"] == 1 and fake.faults["429"] == 1


async def test_pacing_never_exceeds_the_channel_rate_or_one_message_a_second_to_a_chat(
    sessions: async_sessionmaker[AsyncSession], fake: FakeBotApi, sender: TelegramSender
) -> None:
    rate = 20.0
    many = [(str(2000 + i), f"m{i}") for i in range(60)]
    one_chat = [("77", f"c{i}") for i in range(3)]
    group = [("-1001234", f"g{i}") for i in range(2)]
    await queue_texts(sessions, many + one_chat + group)
    timed = Timed(sender)
    worker = make_worker(sessions, {"telegram": timed}, rate=rate)

    await worker.drain(timeout=30)

    assert sorted(delivered(fake)) == sorted(t for _c, t in many + one_chat + group)
    # where the worker hands messages over (no network jitter): exact
    handed = sorted(timed.all)
    for k in (SLACK + 1, 10, 40):  # k messages never within less than (k - SLACK) / rate
        gaps = [b - a for a, b in zip(handed, handed[k - 1 :], strict=False)]
        assert min(gaps) >= (k - SLACK) / rate - 0.005, (k, min(gaps))
    # at the fake, each message arrives up to ARRIVAL_JITTER after it was handed over (the first
    # ones wait for their connections), so a second there holds no more than the worker handed
    # over in a second and that jitter
    times = send_times(fake)
    assert most_in_window(times, 1.0) <= most_in_window(handed, 1.0 + ARRIVAL_JITTER)
    bulk = sorted(t for chat in range(2000, 2060) for t in timed.times[str(chat)])
    overall = (len(bulk) - SLACK) / (bulk[-1] - bulk[0])  # the first SLACK go at once
    assert rate * 0.8 <= overall <= rate * 1.08
    chat = timed.times["77"]
    assert all(b - a >= 0.995 for a, b in itertools.pairwise(chat)), chat  # one a second
    in_group = timed.times["-1001234"]
    assert in_group[1] - in_group[0] >= 2.995  # 20 a minute to one group
    # waiting for a chat's turn costs no attempt
    assert {r.attempts for r in await rows(sessions)} == {1}


async def test_a_message_whose_lease_ran_out_is_taken_again(
    sessions: async_sessionmaker[AsyncSession], fake: FakeBotApi, sender: TelegramSender
) -> None:
    await queue_texts(sessions, [("5", "one"), ("6", "two")])
    crashed = make_worker(sessions, {"telegram": sender}, lease=0.5)
    claimed = await crashed._claim_all(utcnow())  # claimed, then the process "dies"
    assert len(claimed) == 2
    other = make_worker(sessions, {"telegram": sender}, lease=0.5)
    assert await other.run_once() == 0  # leased by the dead worker: not taken yet
    await other.drain(timeout=10)
    assert sorted(delivered(fake)) == ["one", "two"]
    assert [r.attempts for r in await rows(sessions)] == [2, 2]


async def test_permanent_failures_fail_at_once_and_the_coordinator_is_told_once(
    sessions: async_sessionmaker[AsyncSession], fake: FakeBotApi, sender: TelegramSender
) -> None:
    async with transaction(sessions) as session:
        session.add(
            ChatIdentity(channel="telegram", external_id="900", role="coordinator", locale="zh_CN")
        )
    fake.block(666)
    fake.strict_chats = True
    for chat in (900, 10, 666):
        fake.add_chat({"id": chat, "type": "private", "first_name": "x"})
    await queue_texts(
        sessions, [("666", "blocked"), ("13", "gone"), ("10", "fine")], kind="reminder"
    )
    metrics = Metrics()
    worker = make_worker(sessions, {"telegram": sender}, metrics)

    await worker.drain(timeout=15)

    by_text = {r.body["text"]: r for r in await rows(sessions)}
    assert by_text["fine"].status == "sent"
    for failed in ("blocked", "gone"):
        assert by_text[failed].status == "failed" and by_text[failed].attempts == 1
        assert by_text[failed].alerted_at is not None
    assert "blocked" in (by_text["blocked"].last_error or "")
    assert "chat not found" in (by_text["gone"].last_error or "").lower()
    alerts = fake.sent_messages(900)
    assert len(alerts) == 1
    text = alerts[0]["text"]
    assert text.startswith("有 2 条消息未能送达，需要人工处理：")
    assert "• 发给 telegram 666 的提醒：该聊天已屏蔽机器人" in text
    assert "• 发给 telegram 13 的提醒：该聊天已不存在，或机器人已被移出" in text
    assert "pufa outbox retry --failed" in text
    assert counter(metrics, "failed") == 2
    # nothing new failed: looking again tells nobody anything
    assert (await worker.housekeeping()).queued == 0
    assert len([r for r in await rows(sessions) if r.kind == "alert"]) == 1


async def test_a_failed_alert_is_not_reported_again(
    sessions: async_sessionmaker[AsyncSession], fake: FakeBotApi, sender: TelegramSender
) -> None:
    async with transaction(sessions) as session:
        session.add(ChatIdentity(channel="telegram", external_id="901", role="coordinator"))
    fake.block(666)
    fake.block(901)  # the coordinator's chat fails too
    await queue_texts(sessions, [("666", "blocked")])
    worker = make_worker(sessions, {"telegram": sender})

    await worker.drain(timeout=15)
    await worker.housekeeping()

    stored = await rows(sessions)
    assert [(r.kind, r.status) for r in stored] == [("notice", "failed"), ("alert", "failed")]
    assert stored[1].alerted_at is None  # alerts are never reported


async def test_transient_failures_give_up_after_the_last_attempt(
    sessions: async_sessionmaker[AsyncSession], fake: FakeBotApi, sender: TelegramSender
) -> None:
    fake.inject_faults("sendMessage", error_rate=1.0)
    await queue_texts(sessions, [("31", "never")])
    metrics = Metrics()
    worker = make_worker(sessions, {"telegram": sender}, metrics, max_attempts=3)

    await worker.drain(timeout=15)

    (row,) = await rows(sessions)
    assert (row.status, row.attempts) == ("failed", 3)
    assert "Internal Server Error" in (row.last_error or "")
    assert fake.faults["500"] == 3
    assert counter(metrics, "retried") == 2 and counter(metrics, "failed") == 1


async def test_a_failing_platform_is_probed_one_message_at_a_time(
    sessions: async_sessionmaker[AsyncSession], fake: FakeBotApi, sender: TelegramSender
) -> None:
    """After failures in a row the channel pauses and sends one message at a time, so an
    outage does not spend every queued message's attempts."""
    fake.inject_faults("sendMessage", error_rate=1.0)
    await queue_texts(sessions, [(str(100 + i), f"p{i}") for i in range(20)])
    worker = make_worker(
        sessions,
        {"telegram": sender},
        breaker_threshold=3,
        breaker_pause=0.3,
        batch_size=3,
        max_attempts=10,
    )
    running = asyncio.create_task(worker.run())
    await fake.wait_for_count("sendMessage", 5, timeout=10)
    await asyncio.sleep(1.0)  # a second of outage: probes only, a few hundred ms apart
    outage_calls = len(fake.calls_to("sendMessage"))
    assert outage_calls <= 8, outage_calls
    untouched = [r for r in await rows(sessions) if r.attempts == 0]
    assert len(untouched) >= 12
    fake.inject_faults("sendMessage", error_rate=0)  # the platform is back
    worker.stop()
    await running
    await worker.drain(timeout=30)
    assert sorted(delivered(fake)) == sorted(f"p{i}" for i in range(20))


class _Switch:
    """A sender whose platform is down until switched on; records what it sends."""

    def __init__(self) -> None:
        self.up = False
        self.sent: list[str] = []

    @property
    def ready(self) -> bool:
        return self.up

    async def send(self, item: OutboundItem) -> None:
        self.sent.append(item.reply.text)


async def test_a_channel_that_is_not_ready_keeps_its_messages_untouched(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    switch = _Switch()
    metrics = Metrics()
    await queue_texts(sessions, [("1", "a"), ("2", "b")], channel="wecom")
    worker = make_worker(sessions, {"wecom": switch}, metrics)
    assert await worker.run_once() == 0
    await worker.refresh_metrics()
    queue = metrics.registry.get_sample_value(
        "pufa_outbox_queue_messages", {"channel": "wecom", "status": "pending"}
    )
    assert queue == 2
    assert {(r.status, r.attempts) for r in await rows(sessions)} == {("pending", 0)}
    switch.up = True
    await worker.drain(timeout=10)
    assert sorted(switch.sent) == ["a", "b"]
    await worker.refresh_metrics()
    assert "pufa_outbox_queue_messages{" not in metrics.render().decode()


async def test_messages_queued_here_go_at_once_and_others_by_polling(
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeBotApi,
    sender: TelegramSender,
    engine: object,
) -> None:
    worker = make_worker(sessions, {"telegram": sender}, poll_interval=30)
    wake_on_commit(sessions, worker.wake)
    running = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0.2)  # the worker has looked once and now waits 30 s
        await queue_texts(sessions, [("41", "here")])
        await fake.wait_for("sendMessage", timeout=2, text="here")
    finally:
        worker.stop()
        await running
    from storage.db import session_factory

    elsewhere = session_factory(sessions.kw["bind"])  # another process's sessions
    polling = make_worker(sessions, {"telegram": sender}, poll_interval=0.3)
    running = asyncio.create_task(polling.run())
    try:
        await asyncio.sleep(0.2)
        await queue_texts(elsewhere, [("42", "there")])
        await fake.wait_for("sendMessage", timeout=2, text="there")
    finally:
        polling.stop()
        await running


async def test_gauges_show_the_queue_and_the_oldest_wait(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    metrics = Metrics()
    await queue_texts(sessions, [("1", "late"), ("2", "later")], channel="wecom")
    async with transaction(sessions) as session:
        await session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.dedupe_key) == "test:late")
            .values(next_attempt_at=utcnow() - timedelta(minutes=5))
        )
        await session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.dedupe_key) == "test:later")
            .values(status="failed")
        )
    worker = make_worker(sessions, {}, metrics)
    await worker.refresh_metrics()
    sample = metrics.registry.get_sample_value
    assert sample("pufa_outbox_queue_messages", {"channel": "wecom", "status": "pending"}) == 1
    assert sample("pufa_outbox_queue_messages", {"channel": "wecom", "status": "failed"}) == 1
    age = sample("pufa_outbox_oldest_pending_age_seconds", {})
    assert age is not None and 299 <= age <= 330


class _Recorder:
    """A sender that records the order messages reach it."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()

    async def send(self, item: OutboundItem) -> None:
        self.seen[item.reply.text] += 1


async def test_two_workers_on_one_database_send_each_message_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Claims are exclusive: two workers draining one queue together send each message once
    (SKIP LOCKED on PostgreSQL, one writer on SQLite)."""
    texts = [f"x{i}" for i in range(120)]
    await queue_texts(sessions, [(str(i), t) for i, t in enumerate(texts)], channel="robot")
    one, two = _Recorder(), _Recorder()
    senders_one: dict[str, Sender] = {"robot": one}
    senders_two: dict[str, Sender] = {"robot": two}
    first = make_worker(sessions, senders_one, rate=400, batch_size=10)
    second = make_worker(sessions, senders_two, rate=400, batch_size=10)
    await asyncio.gather(first.drain(timeout=30), second.drain(timeout=30))
    together = one.seen + two.seen
    assert sorted(together) == sorted(texts) and set(together.values()) == {1}
    assert one.seen and two.seen  # both took part
    async with sessions() as session:
        statuses = (await session.execute(select(col(OutboxMessage.status)))).scalars()
        assert set(statuses) == {"sent"}


async def test_a_claim_takes_at_most_its_batch_and_only_what_is_due(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await queue_texts(sessions, [(str(i), f"b{i}") for i in range(30)], channel="robot")
    async with transaction(sessions) as session:
        await session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.dedupe_key) == "test:b0")
            .values(next_attempt_at=utcnow() + timedelta(hours=1))
        )
    worker = make_worker(sessions, {"robot": _Recorder()}, batch_size=7)
    first = await worker._claim_all(utcnow())
    second = await worker._claim_all(utcnow())
    assert len(first) == 7 and len(second) == 7
    assert not {r.id for r in first} & {r.id for r in second}
    assert "b0" not in {r.body["text"] for r in first + second}  # not due yet
    # the lease bounds the batch: no more than a quarter of a lease's worth at the rate
    short = make_worker(sessions, {"robot": _Recorder()}, rate=2, lease=4, batch_size=100)
    assert len(await short._claim_all(utcnow())) == 2
