"""Helpers of the rota tests: the real ``pufa`` command, chat accounts bound with real invite
codes, the dialog runtime on a clock the test moves, and readable outbox rows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col
from telegram import Bot

from bot.binding.invites import create_invite
from bot.channels.telegram import TelegramSender
from bot.dialogs import DialogRuntime
from bot.outbox.queue import reply_of
from bot.outbox.worker import OutboxWorker, WorkerConfig
from core.messages import Attachment, Inbound, Reply
from storage.db import transaction
from storage.models_outbox import OutboxMessage
from tests.fakes.telegram_api import FakeBotApi
from tests.helpers import TEST_SECRET

PUFA = [sys.executable, "-m", "bot"]
CST = timezone(timedelta(hours=8))


def at(text: str) -> datetime:
    """A Beijing time, e.g. ``at("2027-03-04 10:00")``."""
    return datetime.fromisoformat(text).replace(tzinfo=CST)


def iso(moment: datetime) -> str:
    """The ISO form ``pufa`` takes."""
    return moment.isoformat(timespec="minutes")


def run_pufa(cwd: Path, db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real ``pufa`` command (same secret key as the in-process runtime)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUFA_")}
    env.update(
        {
            "PUFA_DATABASE_URL": db_url,
            "PUFA_SECRET_KEY": TEST_SECRET,
            "PUFA_LOG_FORMAT": "text",
            "PUFA_PUBLIC_URL": "https://pufa.example.gov.cn",
        }
    )
    return subprocess.run(
        [*PUFA, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )


@dataclass(frozen=True)
class Ran:
    """What a command run in-process printed: exit status, stdout, stderr (with the one-line
    ``pufa: …`` message ``pufa`` prints for a failure)."""

    returncode: int
    stdout: str
    stderr: str
    args: tuple[str, ...] = ()


def cli_run(db_url: str, *args: str) -> Ran:
    """Run ``pufa ARGS`` in-process (click's runner) with the test settings."""
    from click.testing import CliRunner

    from bot.cli import cli, register
    from core.errors import PufaError

    if "rota" not in cli.commands:
        register(cli)
    env = {
        "PUFA_DATABASE_URL": db_url,
        "PUFA_SECRET_KEY": TEST_SECRET,
        "PUFA_PUBLIC_URL": "https://pufa.example.gov.cn",
        "PUFA_LOG_FORMAT": "text",
    }
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=True)
    stderr = result.stderr
    if isinstance(result.exception, PufaError):
        stderr += f"pufa: {result.exception}\n"
    elif result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Ran(result.exit_code, result.stdout, stderr, args)


def ok(result: subprocess.CompletedProcess[str] | Ran) -> str:
    """The stdout of a command that must succeed."""
    assert result.returncode == 0, f"{result.args}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@dataclass
class Clock:
    """A clock the test moves."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Chats:
    """People talking to pufa through the dialog runtime (as the Telegram channel would)."""

    runtime: DialogRuntime
    clock: Clock
    sessions: async_sessionmaker[AsyncSession]
    counter: int = 0
    languages: dict[str, str] = field(default_factory=dict)

    async def send(
        self,
        user: str,
        text: str | None,
        *,
        chat: str | None = None,
        attachment: Attachment | None = None,
    ) -> list[Reply]:
        """``user`` writes ``text`` in ``chat`` (default: the private chat)."""
        self.counter += 1
        return await self.runtime.handle(
            Inbound(
                channel="telegram",
                external_id=user,
                chat_id=chat or user,
                text=text,
                language=self.languages.get(user, "zh-hans"),
                event_id=f"ev{self.counter}",
                attachment=attachment,
            )
        )

    async def press(self, user: str, payload: str, *, chat: str | None = None) -> list[Reply]:
        """``user`` presses a button with ``payload`` in ``chat``."""
        self.counter += 1
        return await self.runtime.handle(
            Inbound(
                channel="telegram",
                external_id=user,
                chat_id=chat or user,
                payload=payload,
                language=self.languages.get(user, "zh-hans"),
                event_id=f"ev{self.counter}",
                source_message_id="1",
            )
        )

    async def bind(
        self, user: str, role: str, unit: str | None = None, *, chat: str | None = None
    ) -> str:
        """Bind ``user`` (and ``chat``, a group) with a real invite code and ``/bind``."""
        async with transaction(self.sessions) as session:
            created = await create_invite(
                session,
                TEST_SECRET.encode(),
                role,  # type: ignore[arg-type]
                now=self.clock.now,
                unit=unit,
            )
        replies = await self.send(user, f"/bind {created.code}", chat=chat)
        return replies[-1].text


def button(reply: Reply, label: str) -> str:
    """The payload of the button whose label contains ``label``."""
    found = [b.payload for b in reply.flat_buttons if label in b.label]
    assert found, f"no button {label!r} in {[b.label for b in reply.flat_buttons]}"
    return found[0]


@dataclass(frozen=True)
class Row:
    """An outbox row as the tests compare it."""

    id: int
    to: str
    what: str
    about: str
    status: str
    kind: str
    locale: str
    text: str
    buttons: tuple[str, ...]
    payloads: tuple[str, ...]


_MEETING = re.compile(r"rota:m(\d+):r(\d+):u(\d+):(\w+)$")
_MONTH = re.compile(r"rota:month:(\w+):(\d{4}-\d{2}):(\d+):month_short$")
_TURN = re.compile(r"rota:(\w+):t(\d+):m(\d+)r(\d+):turn_moved$")
_SWAP = re.compile(r"rota:swap(\d+):(\w+)$")
_TOPIC = re.compile(r"rota:(\w+):t(\d+):topic:\d+$")


def describe(key: str, channel: str, address: str, names: dict[int, str]) -> tuple[str, str]:
    """``(what, about)`` of a rota dedupe key: e.g. ``("heads_up", "S1r1")``."""
    base = key.removesuffix(f":{channel}:{address}")
    if m := _MEETING.match(base):
        return m.group(4), f"{names.get(int(m.group(1)), m.group(1))}r{m.group(2)}"
    if m := _MONTH.match(base):
        return "month_short", f"{m.group(1)}:{m.group(2)}:{m.group(3)}"
    if m := _TURN.match(base):
        return "turn_moved", f"{names.get(int(m.group(3)), m.group(3))}r{m.group(4)}"
    if m := _SWAP.match(base):
        return f"swap_{m.group(2)}", f"swap{m.group(1)}"
    if m := _TOPIC.match(base):
        return "topic_received", f"{m.group(1)}:t{m.group(2)}"
    raise AssertionError(f"unexpected dedupe key {key}")


async def outbox_rows(
    sessions: async_sessionmaker[AsyncSession], names: dict[int, str], after: int = 0
) -> list[Row]:
    """Every outbox row with id > ``after``, oldest first."""
    async with sessions() as session:
        found = (
            (
                await session.execute(
                    select(OutboxMessage)
                    .where(col(OutboxMessage.id) > after)
                    .order_by(col(OutboxMessage.id))
                )
            )
            .scalars()
            .all()
        )
    rows = []
    for m in found:
        assert m.id is not None
        what, about = describe(m.dedupe_key, m.channel, m.recipient, names)
        buttons = [b for row in m.body.get("buttons", []) for b in row]
        rows.append(
            Row(
                m.id,
                f"{m.channel}:{m.recipient}",
                what,
                about,
                m.status,
                m.kind,
                m.locale,
                m.body["text"],
                tuple(b["label"] for b in buttons),
                tuple(b["payload"] for b in buttons),
            )
        )
    return rows


class _Unpaced(TelegramSender):
    """pufa's Telegram sender without the one-a-second wait per chat: a month of reminders
    is sent in a moment (pacing is tested in tests/outbox)."""

    CHAT_INTERVAL = 0.0
    GROUP_INTERVAL = 0.0


class Delivery:
    """The outbox worker with the Telegram sender, sending to the fake Bot API over HTTP."""

    def __init__(self, fake: FakeBotApi, bot: Bot) -> None:
        self.fake = fake
        self.sender = _Unpaced(bot)

    async def __call__(self, sessions: async_sessionmaker[AsyncSession], now: datetime) -> int:
        """Send everything due at ``now`` and check each chat got exactly what was queued:
        the same text, and buttons with the same labels. Returns how many were sent."""
        async with sessions() as session:
            due = (
                (
                    await session.execute(
                        select(OutboxMessage)
                        .where(
                            col(OutboxMessage.status) == "pending",
                            col(OutboxMessage.next_attempt_at) <= now,
                        )
                        .order_by(col(OutboxMessage.id))
                    )
                )
                .scalars()
                .all()
            )
        before = len(self.fake.sent_messages())
        worker = OutboxWorker(
            sessions,
            {"telegram": self.sender},
            config=WorkerConfig(rate=500.0, poll_interval=0.05, backoff_base=0.05),
            clock=lambda: now,
        )
        await worker.drain(timeout=60)
        got = sorted(
            (
                str(m["chat"]["id"]),
                m["text"],
                tuple(
                    b["text"]
                    for row in m.get("reply_markup", {}).get("inline_keyboard", [])
                    for b in row
                ),
            )
            for m in self.fake.sent_messages()[before:]
        )
        expected = sorted(
            (
                row.recipient,
                reply_of(row.body).text,
                tuple(b.label for b in reply_of(row.body).flat_buttons)
                + tuple(link.label for link in reply_of(row.body).links),
            )
            for row in due
        )
        assert got == expected
        async with sessions() as session:
            states = {
                s
                for s in (
                    await session.execute(
                        select(col(OutboxMessage.status)).where(
                            col(OutboxMessage.id).in_([r.id for r in due])
                        )
                    )
                ).scalars()
            }
        assert states <= {"sent"}, states
        return len(due)


def texts_of(replies: list[Reply]) -> str:
    """Every reply's text, joined."""
    return "\n".join(r.text for r in replies)
