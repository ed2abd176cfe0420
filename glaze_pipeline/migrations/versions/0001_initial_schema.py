"""Initial glaze schema: uploads, input rows, records, audit trail, rejects, ledger, requests.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None

# Frozen copy of the catalog at this revision: a later field gets its own migration,
# and a test checks that every catalog field has its column.
FIELDS = (
    "company_name",
    "company_description",
    "company_website",
    "company_hq_location",
    "company_city",
    "company_country",
    "company_employee_count",
    "company_industry",
    "company_founded_year",
    "company_revenue",
    "company_funding",
    "company_linkedin",
    "company_twitter",
    "company_email",
    "company_phone",
    "person_name",
    "person_email",
    "person_phone",
    "person_title",
    "person_linkedin",
    "person_location",
    "person_company",
)


def upgrade() -> None:
    field_columns = ",\n".join(f"    {name} text" for name in FIELDS)
    op.execute(
        f"""
CREATE TABLE glaze.tables (
    table_id text PRIMARY KEY CHECK (table_id ~ '^[a-z][a-z0-9_]{{0,62}}$'),
    name text NOT NULL,
    source_file text,
    url_column text NOT NULL,
    columns jsonb NOT NULL,
    wanted_fields text[] NOT NULL,
    hint_fields text[] NOT NULL DEFAULT '{{}}',
    rows_in integer NOT NULL,
    accepted integer NOT NULL,
    rejected integer NOT NULL,
    duplicates integer NOT NULL,
    status text NOT NULL,
    last_run_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (rows_in = accepted + rejected + duplicates)
);

CREATE TABLE glaze.input_rows (
    table_id text NOT NULL REFERENCES glaze.tables ON DELETE CASCADE,
    row_number integer NOT NULL,
    original jsonb NOT NULL,
    input_url text,
    normalized_url text,
    entity_type text,
    row_key text,
    outcome text NOT NULL CHECK (outcome IN ('accepted', 'rejected', 'duplicate')),
    reason text,
    PRIMARY KEY (table_id, row_number)
);
CREATE INDEX input_rows_row_key ON glaze.input_rows (table_id, row_key);

CREATE TABLE glaze.records (
    table_id text NOT NULL REFERENCES glaze.tables ON DELETE CASCADE,
    row_key text NOT NULL,
    input_url text NOT NULL,
    normalized_url text NOT NULL,
    entity_type text NOT NULL,
{field_columns},
    provenance jsonb NOT NULL,
    cost_usd numeric(14, 6) NOT NULL DEFAULT 0,
    status text NOT NULL,
    enriched_at timestamptz NOT NULL,
    PRIMARY KEY (table_id, row_key)
);

CREATE TABLE glaze.field_values (
    table_id text NOT NULL REFERENCES glaze.tables ON DELETE CASCADE,
    row_key text NOT NULL,
    field text NOT NULL,
    source text NOT NULL,
    fetched_at timestamptz NOT NULL,
    value text NOT NULL,
    confidence smallint NOT NULL CHECK (confidence BETWEEN 0 AND 100),
    evidence text,
    cost_usd numeric(14, 6) NOT NULL DEFAULT 0,
    cached boolean NOT NULL DEFAULT false,
    PRIMARY KEY (table_id, row_key, field, source, fetched_at)
);

CREATE TABLE glaze.rejects (
    table_id text NOT NULL REFERENCES glaze.tables ON DELETE CASCADE,
    stage text NOT NULL CHECK (stage IN ('upload', 'validation')),
    row_ref text NOT NULL,
    row_number integer,
    row_key text,
    reasons jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (table_id, stage, row_ref)
);

CREATE TABLE glaze.provider_calls (
    provider text NOT NULL,
    request_hash text NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    entity text,
    status text NOT NULL,
    cost_usd numeric(14, 6) NOT NULL DEFAULT 0,
    response jsonb,
    PRIMARY KEY (provider, request_hash, at)
);

CREATE TABLE glaze.requests (
    request_id uuid PRIMARY KEY,
    input_url text NOT NULL,
    wanted_fields text[] NOT NULL,
    status text NOT NULL,
    result jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);

CREATE TABLE glaze.api_keys (
    key_hash text PRIMARY KEY,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
"""
    )
