"""Tables of the chat dialogs: conversation state, processed events and invite codes.

- :class:`Conversation` holds one chat identity's current flow and its state as JSON, with a
  ``version`` that every step increments; button payloads carry the version they were drawn
  for, so a stale button is recognised.
- :class:`ProcessedEvent` records each inbound platform event (Telegram ``update_id``, WeCom
  ``MsgId``) in the same transaction as the step it caused, so a redelivery is answered once.
- :class:`InviteCode` is a single-use, expiring bind code that gives a chat account a role
  (township staff, lecture unit, rota coordinator). Only a keyed hash of the code is stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, PrimaryKeyConstraint
from sqlmodel import Field, SQLModel

from storage.models import ts_field
from storage.types import UTCDateTime


class Conversation(SQLModel, table=True):
    """The conversation state of one chat identity (one row per identity)."""

    __tablename__ = "dialog_conversation"
    __table_args__ = (Index("ix_dialog_conversation_updated_at", "updated_at"),)

    identity_id: int = Field(primary_key=True, foreign_key="chat_identity.id")
    flow: str | None = Field(default=None, max_length=32, description="current flow or None")
    state: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    version: int = Field(default=0, description="incremented by every step that changes state")
    updated_at: datetime = ts_field()


class ProcessedEvent(SQLModel, table=True):
    """An inbound platform event that has been handled (deduplication of redeliveries)."""

    __tablename__ = "dialog_processed_event"
    __table_args__ = (
        PrimaryKeyConstraint("channel", "event_id", name="pk_dialog_processed_event"),
        Index("ix_dialog_processed_event_at", "processed_at"),
    )

    channel: str = Field(max_length=16)
    event_id: str = Field(max_length=64)
    processed_at: datetime = ts_field()


class InviteCode(SQLModel, table=True):
    """A single-use bind code for a role and its scope."""

    __tablename__ = "invite_code"

    id: int | None = Field(default=None, primary_key=True)
    code_hash: str = Field(max_length=64, unique=True, description="HMAC-SHA256 of the code")
    role: str = Field(max_length=16, description="staff, unit or coordinator")
    township_id: int | None = Field(default=None, foreign_key="township.id")
    unit_id: int | None = Field(default=None, foreign_key="unit.id")
    created_at: datetime = ts_field()
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    used_by: int | None = Field(default=None, foreign_key="chat_identity.id")
    created_by: str = Field(default="cli", max_length=128)
