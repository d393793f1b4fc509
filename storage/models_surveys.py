"""Tables of the survey product.

- ``survey_state``: one row per survey code, synced from the YAML catalog (title, answering
  window) plus the operator's override (``scheduled`` follows the window, ``open`` / ``closed``
  were set by hand with ``pufa surveys open|close``).
- ``survey_response``: one completed response. The respondent is a keyed pseudonym (HMAC of
  the chat identity or invitation token), never a raw chat id. One response per respondent per
  survey; an ``Idempotency-Key`` is unique per survey so a retried submission is recognised, and
  ``request_hash`` (a fingerprint of the submission) tells a retry from a reused key.
- ``survey_answer``: one row per answered option (a multiple-choice answer gives several rows,
  a free-text answer one row with ``text``). Survey, township, channel and the ``sample`` mark
  are copied from the response so that results (real answers only, unless sample answers are
  asked for) are one ``GROUP BY`` over a covering index, without a join.
- ``survey_invitation``: single-use invitation tokens, stored as keyed hashes, per township and
  batch.
- ``api_token``: bearer tokens for the results API, stored as hashes, by role, revocable.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint, false
from sqlmodel import Field, SQLModel

from storage.models import CODE_MAX, ts_field
from storage.types import UTCDateTime

SURVEY_STATUSES = ("scheduled", "open", "closed")
"""``scheduled``: open inside the catalog window; ``open`` / ``closed``: set by an operator."""


class SurveyState(SQLModel, table=True):
    """A survey known to the database and whether it accepts answers."""

    __tablename__ = "survey_state"

    code: str = Field(primary_key=True, max_length=CODE_MAX)
    title_zh: str = Field(max_length=200)
    title_en: str = Field(default="", max_length=200)
    opens_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    closes_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    status: str = Field(default="scheduled", max_length=16)
    updated_at: datetime = ts_field()


class SurveyResponse(SQLModel, table=True):
    """One completed response to a survey."""

    __tablename__ = "survey_response"
    __table_args__ = (
        UniqueConstraint("survey", "respondent", name="uq_response_respondent"),
        UniqueConstraint("survey", "idempotency_key", name="uq_response_idempotency"),
        # One response per invitation, whoever writes it (NULL: an open-link response).
        Index("uq_response_invitation", "invitation_id", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    survey: str = Field(max_length=CODE_MAX)
    respondent: str = Field(max_length=64, description="HMAC-SHA256 pseudonym, hex")
    channel: str = Field(max_length=16)
    township: str | None = Field(default=None, max_length=CODE_MAX)
    locale: str = Field(default="zh_CN", max_length=8)
    idempotency_key: str | None = Field(default=None, max_length=128)
    request_hash: str | None = Field(
        default=None,
        max_length=64,
        description="SHA-256 hex fingerprint of the submission, set with an idempotency key",
    )
    invitation_id: int | None = Field(default=None)
    sample: bool = Field(default=False, description="demo data, not real")
    created_at: datetime = ts_field()


class SurveyAnswer(SQLModel, table=True):
    """One answered option (or one free-text answer) of a response."""

    __tablename__ = "survey_answer"
    __table_args__ = (
        Index("ix_answer_agg", "survey", "question", "value", "township", "channel", "sample"),
    )

    id: int | None = Field(default=None, primary_key=True)
    response_id: int = Field(foreign_key="survey_response.id")
    survey: str = Field(max_length=CODE_MAX)
    question: str = Field(max_length=40)
    value: str | None = Field(default=None, max_length=40, description="option code")
    text: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    township: str | None = Field(default=None, max_length=CODE_MAX)
    channel: str = Field(max_length=16)
    sample: bool = Field(
        default=False,
        sa_column_kwargs={"server_default": false()},
        description="demo data (copied from the response); never counted unless asked",
    )


class SurveyInvitation(SQLModel, table=True):
    """A single-use invitation token (only its keyed hash is stored)."""

    __tablename__ = "survey_invitation"
    __table_args__ = (Index("ix_invitation_batch", "survey", "batch"),)

    id: int | None = Field(default=None, primary_key=True)
    survey: str = Field(max_length=CODE_MAX)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    township: str | None = Field(default=None, max_length=CODE_MAX)
    batch: str = Field(max_length=40)
    created_at: datetime = ts_field()
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class ApiToken(SQLModel, table=True):
    """A bearer token for the results API (only its hash is stored)."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    prefix: str = Field(max_length=16, description="first characters, to recognise a token")
    role: str = Field(max_length=16)
    township: str | None = Field(default=None, max_length=CODE_MAX)
    label: str = Field(default="", max_length=100)
    created_at: datetime = ts_field()
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
