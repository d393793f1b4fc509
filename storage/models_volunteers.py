"""Tables of the 法律明白人 registry (village legal liaisons).

:class:`Volunteer` is one liaison of one village (村/社区). Personal data never sits in plain
text: the name and the mobile number are sealed with :class:`core.crypto.Sealer` (AES-GCM, one
key per purpose derived from ``PUFA_SECRET_KEY``), and ``mobile_hash`` is a keyed hash of the
number, so "the same number counts once in a township" is a unique constraint on
``(township_id, mobile_hash)`` that needs no decryption. ``township_id`` repeats the village's
township so that constraint and the township-scoped queries stay simple; the importer keeps it
in step when a village moves to another township.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.models import ts_field

GENDERS = ("m", "f")
"""Stored gender codes: ``m`` 男, ``f`` 女."""


class Volunteer(SQLModel, table=True):
    """A registered 法律明白人 of a village (names and numbers sealed)."""

    __tablename__ = "volunteer"
    __table_args__ = (
        UniqueConstraint("township_id", "mobile_hash", name="uq_volunteer_township_mobile"),
    )

    id: int | None = Field(default=None, primary_key=True)
    township_id: int = Field(foreign_key="township.id", index=True)
    village_id: int = Field(foreign_key="village.id", index=True)
    name_sealed: str = Field(sa_column=Column(Text, nullable=False))
    mobile_sealed: str = Field(sa_column=Column(Text, nullable=False))
    mobile_hash: str = Field(max_length=64, description="keyed hash of the mobile number")
    gender: str = Field(max_length=1, description="m or f")
    background: str = Field(max_length=16, description="code of the background (FACTS §4)")
    background_note: str = Field(default="", max_length=40, description="for background other")
    sample: bool = Field(default=False, description="demo data, not real")
    created_by: str = Field(default="", max_length=128)
    created_at: datetime = ts_field()
    updated_at: datetime = ts_field()
