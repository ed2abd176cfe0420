"""The audit trail keeps every candidate (two values of one provider no longer collide), marks the chosen one
and says why the others lost; a table remembers which fields its next run asks for.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.execute(
        """
-- The old key (table, row, field, source, fetched_at) kept one value per provider and fetch: a provider
-- that found two names for one company lost the second. The value's hash joins the key (a description
-- can be longer than a btree entry may be).
ALTER TABLE glaze.field_values DROP CONSTRAINT IF EXISTS field_values_pkey;
ALTER TABLE glaze.field_values ADD COLUMN IF NOT EXISTS value_md5 text GENERATED ALWAYS AS (md5(value)) STORED;
ALTER TABLE glaze.field_values ADD PRIMARY KEY (table_id, row_key, field, source, fetched_at, value_md5);
ALTER TABLE glaze.field_values
    ADD COLUMN IF NOT EXISTS chosen boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS reason text,
    ADD COLUMN IF NOT EXISTS detail text;
-- "Which value landed, and from where": one index probe per (table, row, field).
CREATE INDEX IF NOT EXISTS field_values_chosen ON glaze.field_values (table_id, row_key, field) WHERE chosen;
-- Fields the next run asks providers for (NULL: every wanted field). `glaze enrich TABLE --fields` on an
-- enriched table sets it to the new fields only; landing clears it.
ALTER TABLE glaze.tables ADD COLUMN IF NOT EXISTS run_fields text[];
-- Purge and delete find a person's or a table's paid answers by row.
CREATE INDEX IF NOT EXISTS provider_calls_row ON glaze.provider_calls (row_key);
CREATE INDEX IF NOT EXISTS provider_calls_table ON glaze.provider_calls (table_id);
"""
    )
