"""Tables of the WeCom channel.

:class:`WeComChoice` remembers, for each WeCom member, the labels and payloads of the last
buttons pufa showed them. WeCom text messages have no buttons, so options are sent as a
numbered list, and people answer with the number or with the option's words ("满意"); the
channel turns those words back into the button's payload. The dialog runtime keeps only the
payloads, so the labels are kept here, written in the step's transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from storage.models import ts_field


class WeComChoice(SQLModel, table=True):
    """The options last shown to one WeCom member."""

    __tablename__ = "wecom_choice"

    user_id: str = Field(primary_key=True, max_length=64, description="WeCom userid")
    choices: list[Any] = Field(
        default_factory=list,
        sa_column=Column(JSON, nullable=False),
        description='[["label", "payload"], …] in the order they were numbered',
    )
    updated_at: datetime = ts_field()
