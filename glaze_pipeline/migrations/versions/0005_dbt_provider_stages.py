"""What each provider stage did per run and table (cache hits, ledger hits, calls, cost), for the provider_costs mart.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.execute(
        """
CREATE TABLE glaze.provider_stages (
    run_id text NOT NULL,
    table_id text NOT NULL REFERENCES glaze.tables ON DELETE CASCADE,
    provider text NOT NULL,
    rows_with_gaps integer NOT NULL,
    cache_hits integer NOT NULL,
    ledger_hits integer NOT NULL,
    calls integer NOT NULL,
    paid_calls integer NOT NULL,
    cost_usd numeric(20, 10) NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, table_id, provider)
);
"""
    )
