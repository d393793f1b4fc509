"""Swap reasons and console uploads.

- ``rota_swap.reason``: why a unit asks to swap its lecture, as typed (optional); shown to the
  other unit and the coordinator with the request, and in the console next to the request.
- ``console_upload``: an import file (villages or liaisons) the console has checked and shown
  as a preview, kept sealed until the account confirms or discards the import, so nothing is
  written before the preview is confirmed and any ``pufa serve`` process can finish it.

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-02 00:43:13.462017
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision: str = "0012"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "console_upload",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("township", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=True),
        sa.Column("filename", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["console_account.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("console_upload", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_console_upload_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_console_upload_token"), ["token"], unique=True)

    with op.batch_alter_table("rota_swap", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("rota_swap", schema=None) as batch_op:
        batch_op.drop_column("reason")

    with op.batch_alter_table("console_upload", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_console_upload_token"))
        batch_op.drop_index(batch_op.f("ix_console_upload_account_id"))

    op.drop_table("console_upload")
