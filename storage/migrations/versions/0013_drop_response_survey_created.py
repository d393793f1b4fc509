"""Drop ix_response_survey_created: no query reads responses in time order by survey

The duplicate checks of every submission batch look responses up by ``(survey, respondent)``
and ``(survey, idempotency_key)``, both unique indexes. While a new survey's table had no
statistics yet, PostgreSQL's planner took this index on ``(survey, created_at)`` for those
lookups instead (matching ``survey`` alone and filtering the rest) and so read every response
of the survey for each batch. Nothing uses it otherwise; without it each response costs one
index entry less to write.

Revision ID: 0013
Revises: 0012
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_response_survey_created", table_name="survey_response")


def downgrade() -> None:
    op.create_index(
        "ix_response_survey_created", "survey_response", ["survey", "created_at"], unique=False
    )
