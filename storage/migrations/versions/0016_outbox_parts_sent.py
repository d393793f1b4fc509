"""outbox_message.parts_sent: a retry of a long message sends only the pieces still missing

A text over a platform's limit (4,096 UTF-16 units on Telegram, 2,048 bytes on WeCom) goes as
several messages. When one of them failed, the retry used to send the earlier pieces again, so
the recipient saw them twice. The count of pieces already delivered is now kept on the row.

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("parts_sent", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_column("parts_sent")
