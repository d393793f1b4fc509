"""Column types shared by every table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from core.clock import utcnow

__all__ = ["UTCDateTime", "table_of", "utcnow"]


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always returned timezone-aware.

    SQLite keeps no zone, PostgreSQL does; this type makes both behave the same: naive values
    are refused on the way in so a local time never slips in by mistake.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        """Convert to UTC (naive on SQLite) before writing."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def table_of(model: type[Any]) -> Table:
    """The Core :class:`~sqlalchemy.Table` of a SQLModel table class (for Core statements)."""
    table = model.__table__
    if not isinstance(table, Table):  # pragma: no cover - every table model has one
        raise TypeError(f"{model.__name__} is not a table model")
    return table
