"""survey_answer.sample: the demo mark on every answer row, in the results index

Results must leave out the sample (demo) responses of ``pufa seed --demo`` unless they are
asked for. Results are one GROUP BY over the covering index ``ix_answer_agg`` of
``survey_answer``; copying the response's ``sample`` mark onto its answers (as survey, township
and channel already are) and adding it to that index keeps them so, without a join. Existing
answers take the mark of their response.

Revision ID: 0011
Revises: 0009
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = ["survey", "question", "value", "township", "channel"]


def upgrade() -> None:
    with op.batch_alter_table("survey_answer", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sample", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.execute(
        "UPDATE survey_answer SET sample = TRUE WHERE response_id IN"
        " (SELECT id FROM survey_response WHERE sample)"
    )
    op.drop_index("ix_answer_agg", table_name="survey_answer")
    op.create_index("ix_answer_agg", "survey_answer", [*_OLD, "sample"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_answer_agg", table_name="survey_answer")
    op.create_index("ix_answer_agg", "survey_answer", _OLD, unique=False)
    with op.batch_alter_table("survey_answer", schema=None) as batch_op:
        batch_op.drop_column("sample")
