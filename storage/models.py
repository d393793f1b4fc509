"""Core tables every feature shares.

Townships (镇/街道) contain villages (村/社区); responsible units (司法局, 法院, …) take turns in
the two 普法学法微课堂 rotas; satisfaction indicators carry their targets; chat identities tie a
channel account to a role; the audit log records who did what and is append-only.

Feature tables live next to these (``storage/models_*.py``) and are imported by
:mod:`storage.schema` so that Alembic sees every table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime, utcnow

CODE_MAX = 24


def ts_field(**kwargs: Any) -> Any:
    """A non-null UTC timestamp column defaulting to now."""
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, **kwargs)


class Township(SQLModel, table=True):
    """A 镇 (town, with villages) or 街道 (street office, with communities)."""

    __tablename__ = "township"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=CODE_MAX, unique=True, index=True)
    name: str = Field(max_length=64)
    kind: str = Field(max_length=16, description="town (镇) or street (街道)")
    sample: bool = Field(default=False, description="demo data, not real")
    created_at: datetime = ts_field()


class Village(SQLModel, table=True):
    """A 村 (village) or 社区 (community); poor villages need three legal liaisons, not two."""

    __tablename__ = "village"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=CODE_MAX, unique=True, index=True)
    township_id: int = Field(foreign_key="township.id", index=True)
    name: str = Field(max_length=64)
    kind: str = Field(max_length=16, description="village (村) or community (社区)")
    poor: bool = Field(default=False, description="贫困村")
    sample: bool = Field(default=False)
    created_at: datetime = ts_field()


class Unit(SQLModel, table=True):
    """A responsible unit (责任单位) that gives lectures in a rota."""

    __tablename__ = "unit"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=CODE_MAX, unique=True, index=True)
    name: str = Field(max_length=64, unique=True)
    name_en: str = Field(default="", max_length=128)


class RotaEntry(SQLModel, table=True):
    """One position in a lecture rota: ``standing`` (区委常委会) or ``executive`` (政府常务会)."""

    __tablename__ = "rota_entry"
    __table_args__ = (UniqueConstraint("committee", "position", name="uq_rota_position"),)

    id: int | None = Field(default=None, primary_key=True)
    committee: str = Field(max_length=16)
    position: int
    unit_id: int = Field(foreign_key="unit.id", index=True)


class Indicator(SQLModel, table=True):
    """A satisfaction indicator (满意度指标) with its target rate.

    ``target`` is a fraction (0.80); ``target_kind`` is ``min_rate`` for a number, ``increase``
    for "显著提高" (a significant rise over the previous period).
    """

    __tablename__ = "indicator"

    code: str = Field(primary_key=True, max_length=CODE_MAX)
    title_zh: str = Field(max_length=200)
    title_en: str = Field(max_length=200)
    target: float | None = None
    target_kind: str = Field(default="min_rate", max_length=16)
    audience: str = Field(default="public", max_length=32)
    source: str = Field(default="", max_length=64)


class ChatIdentity(SQLModel, table=True):
    """A chat account on one channel and the role it has been bound to."""

    __tablename__ = "chat_identity"
    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_identity_channel"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    external_id: str = Field(max_length=128)
    locale: str | None = Field(default=None, max_length=8)
    role: str = Field(default="resident", max_length=16)
    township_id: int | None = Field(default=None, foreign_key="township.id")
    unit_id: int | None = Field(default=None, foreign_key="unit.id")
    created_at: datetime = ts_field()


class AuditLog(SQLModel, table=True):
    """Append-only record of administrative actions (updates and deletes are refused)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = ts_field()
    actor: str = Field(max_length=128)
    action: str = Field(max_length=64)
    subject: str = Field(default="", max_length=200)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
