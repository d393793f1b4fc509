"""uq_response_invitation: one response per invitation, kept by the database

An invitation token is single-use. Until now that rested on the submission path checking the
token's ``used_at`` and then marking it in the same transaction; two writers could only be
kept apart by that guarded update. With this unique index the database itself refuses a second
response carrying the same invitation, whoever writes it, and a batch of submissions can store
its responses, answers and the invitations' use in one statement without a transaction around
its checks. Responses without an invitation (``NULL``) are not affected.

Fails if a database already holds two responses with one invitation (which the checks never
allowed): such rows need looking at before upgrading.

Revision ID: 0014
Revises: 0013
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "uq_response_invitation", "survey_response", ["invitation_id"], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_response_invitation", table_name="survey_response")
