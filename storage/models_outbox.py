"""Tables of the outbox: messages pufa starts itself, and where pushes may go.

- :class:`OutboxMessage` is one outbound message (a reminder, an escalation, a notice, a
  shortfall nudge), written in the same transaction as the decision that made it. Its
  ``dedupe_key`` is unique, so re-planning the same reminder or running a scheduler twice
  never queues it twice. The worker claims due rows (``status`` and ``next_attempt_at``),
  leases them while sending and records every attempt. A message that fails for good is
  reported to the coordinator once (``alerted_at``).
- :class:`PushTarget` is a destination that is not one person's private chat: a group chat
  bound to a unit or township (``/bind`` in a group), or a WeCom group robot. Its secret (a
  robot URL) is stored encrypted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.models import ts_field
from storage.types import UTCDateTime

OUTBOX_STATUSES = ("pending", "sending", "sent", "failed", "cancelled")
"""``pending`` waits for its ``next_attempt_at``; ``sending`` is leased by a worker until
``lease_until``; ``sent`` and ``failed`` are final; ``cancelled`` was withdrawn before sending
(a moved meeting's old reminders)."""


class OutboxMessage(SQLModel, table=True):
    """One message pufa sends on its own initiative."""

    __tablename__ = "outbox_message"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_outbox_dedupe_key"),
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_created", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=200)
    channel: str = Field(max_length=16, description="telegram, wecom, wecom_robot, console")
    recipient: str = Field(max_length=128, description="chat id, WeCom user id or target id")
    locale: str = Field(default="zh_CN", max_length=8)
    kind: str = Field(default="notice", max_length=24)
    body: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column(JSON, nullable=False),
        description='{"text", "buttons": [[{"label", "payload"}]], "links": [{"label", "url"}]}',
    )
    status: str = Field(default="pending", max_length=12)
    attempts: int = Field(default=0)
    parts_sent: int = Field(
        default=0,
        sa_column_kwargs={"server_default": "0"},
        description="pieces of a message too long for one send already delivered; a retry"
        " sends only the rest",
    )
    next_attempt_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = ts_field()
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    last_attempt_at: datetime | None = Field(
        default=None,
        sa_type=UTCDateTime,
        nullable=True,
        description="when the last attempt to send it ended",
    )
    alerted_at: datetime | None = Field(
        default=None,
        sa_type=UTCDateTime,
        nullable=True,
        description="when the coordinator was told that this message failed",
    )


class PushTarget(SQLModel, table=True):
    """A group chat or group robot that receives a role's pushes."""

    __tablename__ = "push_target"
    __table_args__ = (UniqueConstraint("channel", "address", name="uq_push_target_address"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    address: str = Field(max_length=128, description="group chat id, or robot id")
    role: str = Field(max_length=16, description="unit, staff or coordinator")
    unit_id: int | None = Field(default=None, foreign_key="unit.id", index=True)
    township_id: int | None = Field(default=None, foreign_key="township.id", index=True)
    locale: str = Field(default="zh_CN", max_length=8)
    label: str = Field(default="", max_length=100)
    secret: str | None = Field(
        default=None,
        sa_column=Column(Text, nullable=True),
        description="encrypted (core.crypto), e.g. a WeCom robot webhook URL",
    )
    active: bool = Field(default=True)
    created_at: datetime = ts_field()
