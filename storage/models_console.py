"""Tables of the web console: accounts, failed logins and import files awaiting confirmation.

- :class:`ConsoleAccount` is a person who logs in to ``/admin/``: a unique name, an argon2
  hash of the password (never the password), a role (``admin``, ``coordinator``, ``staff``,
  ``analyst``) and, for ``staff``, the code of the one township they work for.
- :class:`LoginFailure` is one failed login, kept per account name and per client address so
  that throttling counts failures across every ``pufa serve`` process sharing the database.
  Rows older than the throttling window are deleted as new ones arrive.
- :class:`ConsoleUpload` is an import file (villages or liaisons) checked and previewed but not
  yet written: the parsed sheet, sealed (it holds names and mobile numbers), kept for the
  account that uploaded it until it confirms or discards the import, or for a couple of hours.
  Kept in the database, not on one server's disk, so any ``pufa serve`` process can finish it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel

from storage.models import CODE_MAX, ts_field
from storage.types import UTCDateTime

CONSOLE_ROLES: tuple[str, ...] = ("admin", "coordinator", "staff", "analyst")
"""Roles of a console account."""


class ConsoleAccount(SQLModel, table=True):
    """A console login."""

    __tablename__ = "console_account"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True, index=True)
    password_hash: str = Field(max_length=255, description="argon2id hash")
    role: str = Field(max_length=16)
    township: str | None = Field(default=None, max_length=CODE_MAX, description="staff only")
    active: bool = Field(default=True)
    created_at: datetime = ts_field()
    last_login_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class LoginFailure(SQLModel, table=True):
    """One failed login attempt, counted per ``kind`` (``account`` or ``address``) and ``key``."""

    __tablename__ = "console_login_failure"
    __table_args__ = (Index("ix_login_failure_key_at", "kind", "key", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=8)
    key: str = Field(max_length=128)
    at: datetime = ts_field()


class ConsoleUpload(SQLModel, table=True):
    """An import file checked in the console and waiting for its confirmation."""

    __tablename__ = "console_upload"

    id: int | None = Field(default=None, primary_key=True)
    token: str = Field(max_length=64, unique=True, index=True, description="random, in the URL")
    account_id: int = Field(foreign_key="console_account.id", index=True)
    kind: str = Field(max_length=16, description="villages or volunteers")
    township: str | None = Field(
        default=None, max_length=CODE_MAX, description="the staff account's township"
    )
    filename: str = Field(default="", max_length=200)
    rows: int = Field(default=0)
    sealed: str = Field(sa_column=Column(Text, nullable=False), description="the sheet, sealed")
    created_at: datetime = ts_field()
