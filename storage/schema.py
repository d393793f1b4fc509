"""Imports every table module so ``SQLModel.metadata`` is complete (used by Alembic and tests)."""

from sqlmodel import SQLModel

import storage.models
import storage.models_console
import storage.models_dialogs
import storage.models_outbox
import storage.models_rota
import storage.models_surveys
import storage.models_volunteers
import storage.models_wecom  # noqa: F401

metadata = SQLModel.metadata

#: Foreign keys the models declare that PostgreSQL checks with statement-level triggers instead
#: of a declared constraint (migration 0018: one check a statement, not one a row), as
#: ``(table, column)``. SQLite declares them.
STATEMENT_CHECKED_FOREIGN_KEYS: frozenset[tuple[str, str]] = frozenset(
    {("survey_answer", "response_id")}
)
