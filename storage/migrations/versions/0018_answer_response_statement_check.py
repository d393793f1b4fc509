"""PostgreSQL: survey_answer → survey_response checked once per statement, not once per row

The foreign key from ``survey_answer.response_id`` to ``survey_response.id`` ran one
referential-integrity query per answer row: a dozen per submission, each with its own executor
start and a ``FOR KEY SHARE`` lock on the response, all for responses inserted by the same
statement. Under the submission benchmark that check was the larger part of the write
statement (``auto_explain``, whose own timing inflates it); in isolation a submission of ten
answers took 100 µs with the key and 65 µs with no check, and a benchmark run with the key
dropped, in the same hour as one with it, stored 27–39% more submissions.

The key is replaced by statement-level triggers that keep what it guaranteed, with one query a
statement:

- inserting or updating answers: every ``response_id`` named must be a stored response, locked
  ``FOR KEY SHARE`` as the key locks it (so a concurrent delete of that response waits, then
  fails its own check);
- deleting responses, or changing their ``id``: no answer may still name an id that is gone
  (a scan of the answers, as ``ix_answer_response`` was dropped in 0015: pufa never deletes a
  response, so this costs nothing in use);
- ``TRUNCATE survey_response`` is refused while answers remain (truncating both in one
  statement, as the key allows, still works: the check runs after both are emptied).

Each raises ``foreign_key_violation`` (SQLSTATE 23503), the error the key raised. SQLite keeps
the declared key: it checks a row with one rowid lookup, has no statement-level triggers, and
the model still declares the key, so a new SQLite database gets it from the first migration.

Revision ID: 0018
Revises: 0017
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FOREIGN_KEY = "survey_answer_response_id_fkey"

_FUNCTIONS = (
    """
CREATE FUNCTION pufa_answers_name_responses() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[] := ARRAY(SELECT DISTINCT response_id FROM added);
BEGIN
    -- ANY(array) looks each id up in the primary key; an IN (subquery) was planned as a scan.
    IF cardinality(ids) <> (
        SELECT count(*) FROM (
            SELECT 1 FROM survey_response WHERE id = ANY (ids) FOR KEY SHARE
        ) AS found
    ) THEN
        RAISE foreign_key_violation USING
            MESSAGE = 'survey_answer.response_id names no survey_response',
            TABLE = 'survey_answer';
    END IF;
    RETURN NULL;
END $$""",
    """
CREATE FUNCTION pufa_no_answer_names_a_gone_response() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    gone bigint[] := ARRAY(
        SELECT o.id FROM removed AS o
        WHERE NOT EXISTS (SELECT 1 FROM survey_response AS r WHERE r.id = o.id)
    );
BEGIN
    IF cardinality(gone) > 0
        AND EXISTS (SELECT 1 FROM survey_answer WHERE response_id = ANY (gone)) THEN
        RAISE foreign_key_violation USING
            MESSAGE = 'survey_response is still named by survey_answer',
            TABLE = 'survey_response';
    END IF;
    RETURN NULL;
END $$""",
    """
CREATE FUNCTION pufa_no_answers_left_after_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM survey_answer) THEN
        RAISE foreign_key_violation USING
            MESSAGE = 'survey_response truncated while survey_answer names its rows',
            TABLE = 'survey_response';
    END IF;
    RETURN NULL;
END $$""",
)

# name: (table, event, transition table, function). A trigger with transition tables takes one
# event, hence one trigger per event.
_ADDED = "REFERENCING NEW TABLE AS added"
_REMOVED = "REFERENCING OLD TABLE AS removed"
_TRIGGERS = {
    "survey_answer_insert_names_responses": (
        "survey_answer", "INSERT", _ADDED, "pufa_answers_name_responses"
    ),
    "survey_answer_update_names_responses": (
        "survey_answer", "UPDATE", _ADDED, "pufa_answers_name_responses"
    ),
    "survey_response_delete_keeps_answers_named": (
        "survey_response", "DELETE", _REMOVED, "pufa_no_answer_names_a_gone_response"
    ),
    "survey_response_update_keeps_answers_named": (
        "survey_response", "UPDATE", _REMOVED, "pufa_no_answer_names_a_gone_response"
    ),
    "survey_response_truncate_keeps_answers_named": (
        "survey_response", "TRUNCATE", "", "pufa_no_answers_left_after_truncate"
    ),
}  # fmt: skip


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for function in _FUNCTIONS:  # one statement each: asyncpg prepares what it runs
        op.execute(function)
    for name, (table, event, transition, function) in _TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON {table} {transition}"
            f" FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )
    op.drop_constraint(FOREIGN_KEY, "survey_answer", type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_foreign_key(FOREIGN_KEY, "survey_answer", "survey_response", ["response_id"], ["id"])
    for name, (table, *_rest) in _TRIGGERS.items():
        op.execute(f"DROP TRIGGER {name} ON {table}")
    for function in dict.fromkeys(trigger[-1] for trigger in _TRIGGERS.values()):
        op.execute(f"DROP FUNCTION {function}()")
