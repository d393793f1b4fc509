"""Imports every table module so ``SQLModel.metadata`` is complete (used by Alembic and tests)."""

from sqlmodel import SQLModel

import storage.models
import storage.models_dialogs
import storage.models_outbox
import storage.models_rota
import storage.models_surveys  # noqa: F401

metadata = SQLModel.metadata
