"""Postgres connections and migrations: every command that touches Postgres comes through here first."""

from __future__ import annotations

import getpass
import io
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import psycopg
from psycopg import sql

from glaze_pipeline.errors import UserFacingError

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
_MIGRATION_LOCK = 7_311_042  # pg_advisory_lock key: one migrator at a time across processes


class DatabaseUnreachable(UserFacingError, ConnectionError):
    """PostgreSQL did not answer; the message names the server (never the password) and what to check."""

    @classmethod
    def of(cls, url: str, exc: BaseException) -> DatabaseUnreachable:
        lines = [line for line in str(exc).strip().splitlines() if line.strip()]
        detail = lines[0].removeprefix("(psycopg.OperationalError) ") if lines else type(exc).__name__
        return cls(f"cannot reach PostgreSQL at {server_name(url)} ({detail}): start it, or fix GLAZE_DATABASE_URL")


def server_name(url: str) -> str:
    """host:port/database of a libpq URL, for messages: the password never appears."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "the configured URL"
    return f"{info.get('host') or 'localhost'}:{info.get('port') or 5432}/{info.get('dbname') or ''}"


# libpq's own variables, filled from the one database URL for tools that take their connection from the
# environment (dbt's profiles.yml reads them), so those tools and glaze always reach the same database.
LIBPQ_KEYS = {
    "host": "PGHOST",
    "port": "PGPORT",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "dbname": "PGDATABASE",
    "sslmode": "PGSSLMODE",
}
LIBPQ_VARIABLES = tuple(LIBPQ_KEYS.values())


def libpq_environment(url: str) -> dict[str, str]:
    """PGHOST, PGPORT, ... for `url` (a libpq URL or key=value string; the host may be a Unix socket directory)."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    env = {var: str(info[key]) for key, var in LIBPQ_KEYS.items() if info.get(key) not in (None, "")}
    # What libpq itself would assume for a part the URL leaves out.
    env.setdefault("PGHOST", "localhost")
    env.setdefault("PGPORT", "5432")
    env.setdefault("PGUSER", getpass.getuser())
    env.setdefault("PGDATABASE", env["PGUSER"])
    env.setdefault("PGPASSWORD", "")
    return env


@contextmanager
def advisory_lock(url: str, key: int) -> Iterator[None]:
    """Hold a session-level Postgres advisory lock while the block runs: one holder per database, across processes."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection:
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise DatabaseUnreachable.of(url, exc) from exc


def copy_rows(conn: psycopg.Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Bulk-load rows with COPY; `table` may be schema-qualified ("glaze.input_rows"). Names are ours, quoted."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(*table.split(".")), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    with conn.cursor().copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def head_revision() -> str:
    """The newest migration's revision: each revision is its file's number, in one chain (test_db checks both)."""
    return max(p.name[:4] for p in (MIGRATIONS_DIR / "versions").glob("[0-9]*.py"))


def at_head(url: str) -> bool:
    """Whether the database's glaze schema is already at the newest migration (one query, no alembic)."""
    with connect(url) as conn:
        row = conn.execute("SELECT to_regclass('glaze.alembic_version') IS NOT NULL").fetchone()
        if not row or not row[0]:
            return False
        version = conn.execute("SELECT version_num FROM glaze.alembic_version").fetchone()
    return version is not None and version[0] == head_revision()


def copy_frame(conn: psycopg.Connection, table: str, frame: pl.DataFrame) -> None:
    """Bulk-load a polars frame with one COPY in CSV, its columns named as the table's: polars writes the CSV
    in bulk (no Python object per cell). Every non-null text is quoted, so an empty string stays an empty
    string and only a null becomes NULL."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        sql.Identifier(*table.split(".")), sql.SQL(", ").join(sql.Identifier(c) for c in frame.columns)
    )
    with conn.cursor().copy(statement) as copy:
        for start in range(0, frame.height, _COPY_SLICE):
            buffer = io.BytesIO()
            frame.slice(start, _COPY_SLICE).write_csv(buffer, include_header=False, quote_style="non_numeric")
            copy.write(buffer.getbuffer())


_COPY_SLICE = 50_000  # rows written to the COPY stream at a time: the CSV text in memory stays bounded


def migrate(url: str) -> None:
    """Apply pending migrations; safe to call from many processes at once.

    Every run's process calls this when it opens its runtime. At head (nearly always), one query says
    so and SQLAlchemy and alembic are never imported (about a second of a run's start); otherwise they
    are imported here and alembic upgrades under an advisory lock.
    """
    if at_head(url):
        return
    import sqlalchemy
    from alembic import command
    from alembic.config import Config

    # A creator accepts any libpq string (URL or key=value, Unix sockets included) exactly as psycopg does.
    engine = sqlalchemy.create_engine(
        "postgresql+psycopg://", creator=lambda: connect(url), poolclass=sqlalchemy.pool.NullPool
    )
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
            conn.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS glaze")
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS_DIR))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    with connect(url) as conn:
        row = conn.execute(
            "SELECT version_num FROM glaze.alembic_version WHERE to_regclass('glaze.alembic_version') IS NOT NULL"
        ).fetchone()
    return str(row[0]) if row else None


def holds_glaze(url: str) -> bool:
    """Whether this database already holds glaze's tables (a migrated schema), before migrating it."""
    with connect(url) as conn:
        row = conn.execute("SELECT to_regclass('glaze.alembic_version') IS NOT NULL").fetchone()
    return bool(row and row[0])
