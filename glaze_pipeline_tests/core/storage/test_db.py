import subprocess
import sys
from datetime import UTC, datetime

import polars as pl
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


def test_copy_frame_lands_the_same_rows_as_copy_row_by_row(servers, conn):
    """Landing's bulk COPY (CSV written by polars) against psycopg's row-by-row COPY, on awkward values."""
    fetched = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
    frame = pl.DataFrame(
        {
            "text": ["", None, 'say "hi",\nthen\tgo \\ home', "Zürich – 東京 😀", "NULL", "\\N"],
            "cost": [0.0001, None, 1e-10, 12345678.123456789, 0.1 + 0.2, 0.0],
            "flag": [True, None, False, True, False, True],
            "at": [fetched, None, fetched.replace(microsecond=0), fetched, fetched, fetched],
            "small": [0, None, 100, 7, 80, 1],
        },
        schema={
            "text": pl.String,
            "cost": pl.Float64,
            "flag": pl.Boolean,
            "at": pl.Datetime("us", "UTC"),
            "small": pl.UInt8,
        },
    )
    columns = "(n serial, text text, cost numeric(20,10), flag boolean, at timestamptz, small smallint)"
    for name in ("by_frame", "by_row"):
        conn.execute(f"CREATE TEMP TABLE {name} {columns}")
    db.copy_frame(conn, "by_frame", frame)
    db.copy_rows(conn, "by_row", frame.columns, frame.iter_rows())
    read = "SELECT text, cost, flag, at, small FROM {} ORDER BY n"
    assert conn.execute(read.format("by_frame")).fetchall() == conn.execute(read.format("by_row")).fetchall()
    assert conn.execute("SELECT text IS NULL, text = '' FROM by_frame ORDER BY n LIMIT 2").fetchall() == [
        (False, True),
        (True, None),
    ]
    conn.rollback()
