"""Claims on paid requests: one process pays for a (provider, request) at a time, the others wait for its answer.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.execute(
        """
-- A row says "this process is paying for this request now". Taken with INSERT … ON CONFLICT DO UPDATE … WHERE
-- the old claim expired, so of two askers exactly one gets it; the holder renews `expires_at` while it works and
-- deletes the row once the answer is in glaze.provider_calls. A SIGKILLed holder's row expires (GLAZE_LEASE_S).
CREATE TABLE IF NOT EXISTS glaze.paid_claims (
    provider text NOT NULL,
    provider_version text NOT NULL,
    request_hash text NOT NULL,
    owner text NOT NULL,
    run_id text NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (provider, provider_version, request_hash)
);
CREATE INDEX IF NOT EXISTS paid_claims_owner ON glaze.paid_claims (owner);
"""
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS glaze.paid_claims")
