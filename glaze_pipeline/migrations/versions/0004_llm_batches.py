"""Message Batches submitted to the LLM provider, so a restarted run resumes a batch instead of paying twice.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.execute(
        """
CREATE TABLE glaze.llm_batches (
    batch_key text PRIMARY KEY,
    batch_id text NOT NULL,
    model text NOT NULL,
    requests integer NOT NULL,
    status text NOT NULL CHECK (status IN ('submitted', 'collected')),
    submitted_at timestamptz NOT NULL DEFAULT now(),
    collected_at timestamptz
);
"""
    )
