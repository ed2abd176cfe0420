"""The read-only role `glaze_reader` that `glaze sql` and the API's read paths connect as.

Created here when the migrating user may create roles (the embedded server, a superuser URL);
otherwise an administrator runs the same SQL (`glaze sql --role-sql`), and `glaze sql` refuses
until then. The SQL lives in core/storage/readonly.py so the two can never differ.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

from glaze_pipeline.core.storage.readonly import ROLE_SQL

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.execute(ROLE_SQL)
