import subprocess
import sys

from alembic.script import ScriptDirectory

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
    scripts = ScriptDirectory(str(db.MIGRATIONS_DIR))
    assert db.current_revision(servers.database_url) == scripts.get_current_head()


def test_migrate_at_head_asks_one_query_and_imports_no_alembic(servers):
    """A run's process migrates when it starts: at head that must not cost SQLAlchemy's and alembic's import."""
    db.migrate(servers.database_url)
    assert db.at_head(servers.database_url)
    assert db.head_revision() == ScriptDirectory(str(db.MIGRATIONS_DIR)).get_current_head()
    probe = (
        "import sys; from glaze_pipeline.core.storage import db; db.migrate(sys.argv[1]); "
        "print(sorted(m for m in ('alembic', 'sqlalchemy') if m in sys.modules))"
    )
    command = [sys.executable, "-c", probe, servers.database_url]
    assert subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_migrations_form_one_numbered_chain():
    """Each revision is its file's number and follows the one before: parallel branches must re-chain at merge."""
    scripts = ScriptDirectory(str(db.MIGRATIONS_DIR))
    chain = list(reversed(list(scripts.walk_revisions())))
    assert [r.revision for r in chain] == [f"{n:04d}" for n in range(1, len(chain) + 1)]
    assert all(r.down_revision == (f"{n:04d}" if n else None) for n, r in enumerate(chain))
    files = sorted(p.name[:4] for p in (db.MIGRATIONS_DIR / "versions").glob("[0-9]*.py"))
    assert files == [r.revision for r in chain]


def test_libpq_environment_is_the_one_url_socket_directory_included():
    embedded = db.libpq_environment("postgresql://postgres:@/glaze?host=/srv/glaze/postgres")
    assert embedded == {
        "PGHOST": "/srv/glaze/postgres",
        "PGPORT": "5432",
        "PGUSER": "postgres",
        "PGDATABASE": "glaze",
        "PGPASSWORD": "",
    }
    remote = db.libpq_environment("postgresql://app:s%40cret@db.internal:6432/crm?sslmode=require")
    assert remote == {
        "PGHOST": "db.internal",
        "PGPORT": "6432",
        "PGUSER": "app",
        "PGPASSWORD": "s@cret",
        "PGDATABASE": "crm",
        "PGSSLMODE": "require",
    }
    assert db.libpq_environment("host=/tmp dbname=x user=u")["PGHOST"] == "/tmp"


def test_advisory_lock_admits_one_holder_at_a_time(servers):
    with db.advisory_lock(servers.database_url, 42), db.connect(servers.database_url, autocommit=True) as other:
        assert other.execute("SELECT pg_try_advisory_lock(42)").fetchone() == (False,)
    with db.connect(servers.database_url, autocommit=True) as other:
        assert other.execute("SELECT pg_try_advisory_lock(42)").fetchone() == (True,)
