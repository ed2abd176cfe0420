"""The paid-call ledger knows which run, table and row each call was for, so budgets can sum it; costs keep 10 decimals.

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
-- A call's cost is split across the fields it filled (0.01 / 13 fields): six decimals lose cents over
-- a large table, so shares keep ten.
ALTER TABLE glaze.field_values ALTER COLUMN cost_usd TYPE numeric(20, 10);
ALTER TABLE glaze.records ALTER COLUMN cost_usd TYPE numeric(20, 10);
ALTER TABLE glaze.provider_calls ALTER COLUMN cost_usd TYPE numeric(20, 10);
-- Budgets sum a run's spending; never-pay-twice reads the newest answer per request (the primary key).
CREATE INDEX IF NOT EXISTS provider_calls_run ON glaze.provider_calls (run_id);
"""
    )
