"""Writing to the append-only audit log."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditLog


def record(
    session: AsyncSession, actor: str, action: str, subject: str = "", **detail: Any
) -> AuditLog:
    """Add an audit entry to ``session`` (committed with the caller's transaction)."""
    entry = AuditLog(actor=actor, action=action, subject=subject, detail=detail)
    session.add(entry)
    return entry
