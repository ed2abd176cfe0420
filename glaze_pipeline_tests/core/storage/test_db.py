from glaze_pipeline.core.model.fields import FIELD_NAMES
from glaze_pipeline.core.storage import db


def test_every_catalog_field_has_a_records_column(servers, conn):
    columns = {
        r[0]
        for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'glaze' AND table_name = 'records'"
        )
    }
    missing = set(FIELD_NAMES) - columns
    assert not missing, f"add a migration for: {sorted(missing)}"


def test_migrate_is_idempotent_and_at_head(servers):
    db.migrate(servers.database_url)
    db.migrate(servers.database_url)
    assert db.current_revision(servers.database_url) == "0008"
