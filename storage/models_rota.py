"""Tables of the 普法学法微课堂 lecture rota (the feature in ``bot/rota``).

- :class:`RotaMeeting` is one 区委常委会 (``standing``) or 政府常务会 (``executive``) meeting
  before which a unit gives its lecture. Its ``revision`` goes up whenever its time or the unit
  on duty changes, so the reminders of an earlier revision are recognised (and withdrawn) and
  never sent again; ``notice_at`` is when the current time and unit became known.
- :class:`RotaTurn` is what a unit said about one of its turns: the ``turn``-th lecture of a
  committee's rota (``turn % 20`` is the period). The confirmation names the meeting and
  revision it was given for; the topic follows the turn if the turn moves to another meeting.
- :class:`RotaSwap` is a request by one unit to exchange turns with another (with the reason
  given, if any), and its outcome.
- :class:`RotaFeedKey` numbers a unit's calendar-feed links: the secret key is derived from
  the secret key and this generation, so issuing a new link revokes the old one and no key is
  stored.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.models import ts_field
from storage.types import UTCDateTime

MEETING_STATUSES = ("scheduled", "cancelled")
OUTCOMES = ("delivered", "missed")
SWAP_STATUSES = ("requested", "accepted", "declined", "expired")


class RotaMeeting(SQLModel, table=True):
    """A committee meeting with a 普法学法微课堂 lecture before it."""

    __tablename__ = "rota_meeting"
    __table_args__ = (Index("ix_rota_meeting_committee_starts", "committee", "starts_at"),)

    id: int | None = Field(default=None, primary_key=True)
    committee: str = Field(max_length=16, description="standing (区委常委会) or executive")
    starts_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    status: str = Field(default="scheduled", max_length=12)
    revision: int = Field(default=1, description="bumped when the time or the unit changes")
    notice_at: datetime = ts_field(description="when the current time and unit became known")
    outcome: str | None = Field(default=None, max_length=12, description="delivered or missed")
    outcome_unit_id: int | None = Field(default=None, foreign_key="unit.id")
    outcome_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    sample: bool = Field(default=False, description="demo data, not real")
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()


class RotaTurn(SQLModel, table=True):
    """A unit's confirmation and topic for one turn of a committee's rota."""

    __tablename__ = "rota_turn"
    __table_args__ = (UniqueConstraint("committee", "turn", name="uq_rota_turn"),)

    id: int | None = Field(default=None, primary_key=True)
    committee: str = Field(max_length=16)
    turn: int = Field(description="0-based count of lectures in this rota; period = turn % 20 + 1")
    unit_id: int = Field(foreign_key="unit.id", index=True)
    confirmed_meeting_id: int | None = Field(default=None, foreign_key="rota_meeting.id")
    confirmed_revision: int | None = None
    confirmed_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    confirmed_by: str | None = Field(default=None, max_length=160)
    topic_title: str | None = Field(default=None, max_length=200)
    topic_outline: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    topic_file_id: str | None = Field(default=None, max_length=256)
    topic_file_name: str | None = Field(default=None, max_length=256)
    topic_file_mime: str | None = Field(default=None, max_length=128)
    topic_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    topic_by: str | None = Field(default=None, max_length=160)


class RotaSwap(SQLModel, table=True):
    """A request to exchange two turns of one rota (accepted by the other unit or approved
    by the coordinator)."""

    __tablename__ = "rota_swap"

    id: int | None = Field(default=None, primary_key=True)
    committee: str = Field(max_length=16)
    turn_a: int = Field(description="the asking unit's turn")
    turn_b: int = Field(description="the other unit's turn")
    meeting_a_id: int = Field(foreign_key="rota_meeting.id")
    meeting_b_id: int = Field(foreign_key="rota_meeting.id")
    unit_a_id: int = Field(foreign_key="unit.id")
    unit_b_id: int = Field(foreign_key="unit.id")
    status: str = Field(default="requested", max_length=12)
    requested_by: str = Field(max_length=160)
    requested_at: datetime = ts_field()
    reason: str | None = Field(
        default=None, max_length=500, description="why the unit asks, as it was typed"
    )
    decided_by: str | None = Field(default=None, max_length=160)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class RotaFeedKey(SQLModel, table=True):
    """The generation of a unit's secret calendar-feed link (the key itself is derived)."""

    __tablename__ = "rota_feed_key"

    unit_id: int = Field(primary_key=True, foreign_key="unit.id")
    generation: int = Field(default=1)
    created_at: datetime = ts_field()
