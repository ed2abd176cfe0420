"""Company fields for the deeper website extractor and the LinkedIn data API.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"

FIELDS = (
    "company_employee_range",
    "company_specialities",
    "company_logo_url",
    "company_facebook",
    "company_instagram",
    "company_youtube",
    "company_github",
)


def upgrade() -> None:
    for name in FIELDS:
        op.execute(f"ALTER TABLE glaze.records ADD COLUMN IF NOT EXISTS {name} text")
