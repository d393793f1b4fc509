"""Imports every table module so ``SQLModel.metadata`` is complete (used by Alembic and tests)."""

from sqlmodel import SQLModel

import storage.models  # noqa: F401
import storage.models_dialogs  # noqa: F401

metadata = SQLModel.metadata
