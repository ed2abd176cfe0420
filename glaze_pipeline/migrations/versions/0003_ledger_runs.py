"""The paid-call ledger knows which run, table and row each call was for, so budgets can sum it.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.execute(
        """
ALTER TABLE glaze.provider_calls
    ADD COLUMN IF NOT EXISTS run_id text,
    ADD COLUMN IF NOT EXISTS table_id text,
    ADD COLUMN IF NOT EXISTS row_key text,
    ADD COLUMN IF NOT EXISTS provider_version text;
-- Budgets sum a run's spending; never-pay-twice reads the newest answer per request (the primary key).
CREATE INDEX IF NOT EXISTS provider_calls_run ON glaze.provider_calls (run_id);
"""
    )
