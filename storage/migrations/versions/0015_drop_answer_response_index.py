"""Drop ix_answer_response: no query reads a response's answers through it

Every query over ``survey_answer`` starts from the answers (the covering index
``ix_answer_agg`` for results, the survey for comments) and joins each to its response by the
response's primary key; none looks answers up by ``response_id``, and responses are never
deleted. The index only cost an entry per answer row written, about a dozen per submission.
The foreign key to ``survey_response`` stays.

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_answer_response", table_name="survey_answer")


def downgrade() -> None:
    op.create_index("ix_answer_response", "survey_answer", ["response_id"], unique=False)
