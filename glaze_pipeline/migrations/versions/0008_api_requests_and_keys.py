"""Single-record API: keys with a rate limit and a daily spending cap, requests as a durable queue, table owners.

0001 created `glaze.requests` and `glaze.api_keys` as stubs; this revision gives them what the API and the
`enrich_record` job need: a key id to look keys up by (the secret is only ever stored hashed), per-key limits,
the request's entity, idempotency, its run, timings and result, and the owner of tables uploaded over HTTP.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    op.execute(
        """
ALTER TABLE glaze.api_keys
    ADD COLUMN IF NOT EXISTS key_id text UNIQUE,
    ADD COLUMN IF NOT EXISTS rate_per_min integer NOT NULL DEFAULT 60 CHECK (rate_per_min > 0),
    ADD COLUMN IF NOT EXISTS burst integer NOT NULL DEFAULT 10 CHECK (burst > 0),
    ADD COLUMN IF NOT EXISTS daily_cap_usd numeric(20, 10) NOT NULL DEFAULT 5 CHECK (daily_cap_usd >= 0);

ALTER TABLE glaze.requests
    ADD COLUMN IF NOT EXISTS key_id text REFERENCES glaze.api_keys (key_id),
    ADD COLUMN IF NOT EXISTS normalized_url text,
    ADD COLUMN IF NOT EXISTS entity_type text,
    ADD COLUMN IF NOT EXISTS row_key text,
    ADD COLUMN IF NOT EXISTS idempotency_key text,
    ADD COLUMN IF NOT EXISTS body_hash text,
    ADD COLUMN IF NOT EXISTS max_cost_usd numeric(20, 10),
    ADD COLUMN IF NOT EXISTS budget_usd numeric(20, 10),
    ADD COLUMN IF NOT EXISTS cost_usd numeric(20, 10) NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS cache_hit boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS batch_id text,
    ADD COLUMN IF NOT EXISTS run_id text,
    -- The ledger run ids this request's paid calls were recorded under, one per attempt: its cost sums them.
    ADD COLUMN IF NOT EXISTS ledger_runs text[] NOT NULL DEFAULT '{}',
    ADD COLUMN IF NOT EXISTS attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS error text,
    ADD COLUMN IF NOT EXISTS launched_at timestamptz,
    ADD COLUMN IF NOT EXISTS started_at timestamptz,
    ADD COLUMN IF NOT EXISTS timings jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE glaze.requests
    ADD CONSTRAINT requests_status CHECK (status IN ('queued', 'running', 'completed', 'failed'));
-- A retried POST with the same Idempotency-Key finds its request; one key's keys never meet another's.
CREATE UNIQUE INDEX IF NOT EXISTS requests_idempotency ON glaze.requests (key_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- The sensor reads the queue oldest first; the stuck-request check reads what is running.
CREATE INDEX IF NOT EXISTS requests_open ON glaze.requests (status, created_at)
    WHERE status IN ('queued', 'running');
CREATE INDEX IF NOT EXISTS requests_by_key ON glaze.requests (key_id, created_at);
CREATE INDEX IF NOT EXISTS requests_batch ON glaze.requests (batch_id);

-- Tables uploaded over HTTP belong to the key that uploaded them; NULL: uploaded from the CLI or the inbox.
ALTER TABLE glaze.tables ADD COLUMN IF NOT EXISTS api_key_id text REFERENCES glaze.api_keys (key_id);
CREATE INDEX IF NOT EXISTS tables_by_key ON glaze.tables (api_key_id) WHERE api_key_id IS NOT NULL;

-- A key's spending today is summed from the ledger, whose table_id for API runs is `api:<key_id>`.
CREATE INDEX IF NOT EXISTS provider_calls_table_at ON glaze.provider_calls (table_id, at);
"""
    )
