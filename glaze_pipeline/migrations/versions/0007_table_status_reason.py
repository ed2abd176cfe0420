"""Why a table is in its state, and the last sign of life of the run working on it.

`status_reason` says why a table failed (the run's error, "interrupted", "its process is gone");
`heartbeat_at` is refreshed by a running run, so a run whose process died is found and its table
released instead of staying `running` for good.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.execute(
        """
ALTER TABLE glaze.tables ADD COLUMN status_reason text, ADD COLUMN heartbeat_at timestamptz;
"""
    )
