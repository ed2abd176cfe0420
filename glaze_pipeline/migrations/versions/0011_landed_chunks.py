"""Chunks of a table a run has landed, so a re-run after a crash redoes only the chunks that did not land.

A chunk is a range of the table's input row numbers. Its row is written in the same transaction as its
records, so "landed" here and the records in `glaze.records` never disagree. The rows are removed when
the table's run finishes, so the next run of the table (a refresh) does every chunk again.

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    op.execute(
        """
CREATE TABLE glaze.landed_chunks (
    table_id text NOT NULL REFERENCES glaze.tables ON DELETE CASCADE,
    first_row integer NOT NULL,
    last_row integer NOT NULL,
    fields text[] NOT NULL,
    run_id text NOT NULL,
    landed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (table_id, first_row, last_row)
);
"""
    )
