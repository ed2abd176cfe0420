"""Read-only SQL by construction: a table of attacks, each refused (or capped) with nothing changed on the server.

Runs on whichever server the `servers` fixture gives: the embedded one (GLAZE_DATABASE_URL unset) or a
configured one. The DuckDB half attacks `glaze sql --duckdb` over a stage folder of its own.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import polars as pl
import psycopg
import pytest
from psycopg import sql

from glaze_pipeline.core.intake.uploads import upload_file
from glaze_pipeline.core.storage import db
from glaze_pipeline.core.storage.readonly import (
    READER_ROLE,
    ROLE_SQL,
    QueryRefused,
    ReadOnlyRoleProblem,
    query_stage_files,
    reader_url,
    run_query,
)
from glaze_pipeline_tests.helpers import demo_urls, write_table

CANARY = Path("/tmp") / f"glaze-canary-{uuid.uuid4().hex[:8]}"


def server_state(conn: psycopg.Connection) -> tuple[object, ...]:
    """What an attack could change: the glaze tables, large objects, the reader role, the canary file."""
    tables = conn.execute(
        "SELECT count(*), md5(string_agg(table_id || status || coalesce(last_run_id, ''), ',' ORDER BY table_id))"
        " FROM glaze.tables"
    ).fetchone()
    rows = conn.execute("SELECT count(*) FROM glaze.input_rows").fetchone()
    large_objects = conn.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone()
    role = conn.execute(
        "SELECT rolsuper, rolcreaterole, rolconfig FROM pg_roles WHERE rolname = %s", (READER_ROLE,)
    ).fetchone()
    conn.rollback()
    return tables, rows, large_objects, role, CANARY.exists()


@pytest.fixture
def loaded(servers, conn, tmp_path) -> str:
    """A database with one uploaded table, so a DELETE that worked would show."""
    upload_file(conn, write_table(tmp_path / "attack_me.csv", demo_urls()))
    conn.commit()
    return servers.database_url


def _dblink(conn: psycopg.Connection) -> bool:
    available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'dblink'").fetchone()
    if available:
        conn.execute("CREATE EXTENSION IF NOT EXISTS dblink")
        conn.commit()
    return bool(available)


def _admin_dsn(url: str) -> str:
    return psycopg.conninfo.make_conninfo(url)


# (attack, what it tries) → every one must be refused; the outcome column of the closing note comes from here.
ATTACKS = [
    ("SET TRANSACTION READ WRITE; DELETE FROM glaze.tables", "a second statement switches the transaction"),
    ("ROLLBACK; BEGIN READ WRITE; DELETE FROM glaze.tables; COMMIT", "leave the read-only transaction"),
    ("DELETE FROM glaze.tables", "a plain write"),
    ("WITH gone AS (DELETE FROM glaze.tables RETURNING *) SELECT * FROM gone", "a write inside a SELECT"),
    ("SELECT 1 FROM glaze.tables FOR UPDATE", "row locks"),
    (f"COPY (SELECT 1) TO PROGRAM 'touch {CANARY}'", "run a shell command"),
    ("COPY glaze.tables FROM PROGRAM 'id -un'", "read a shell command's output"),
    ("SELECT pg_read_file('/etc/passwd')", "read a server file"),
    ("SELECT * FROM pg_ls_dir('.')", "list the data folder"),
    ("SELECT lo_import('/etc/passwd')", "import a file as a large object"),
    ("SELECT lo_from_bytea(0, 'x')", "create a large object"),
    ("SELECT lo_create(0)", "create a large object"),
    ("SET statement_timeout = 0", "lift the timeout"),
    ("SELECT set_config('role', 'postgres', false)", "become another role"),
    ("SELECT * FROM glaze.api_keys", "read the API key hashes"),
    ("CREATE TABLE glaze.evil (a int)", "create a table"),
    ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename <> current_user", "kill other sessions"),
]


@pytest.mark.parametrize(("attack", "intent"), ATTACKS, ids=[a[1] for a in ATTACKS])
def test_attack_is_refused_and_changes_nothing(loaded, conn, attack, intent):
    before = server_state(conn)
    with pytest.raises((QueryRefused, ReadOnlyRoleProblem)) as refused:
        run_query(loaded, attack, max_rows=10)
    assert str(refused.value).strip() and "\n" not in str(refused.value)
    assert server_state(conn) == before


def test_dblink_cannot_reach_the_server_as_another_role(loaded, conn):
    if not _dblink(conn):
        pytest.skip("dblink is not available on this server")
    before = server_state(conn)
    target = _admin_dsn(loaded).replace("'", "''")
    for attack in (
        f"SELECT dblink_exec('{target}', 'DELETE FROM glaze.tables')",
        f"SELECT * FROM dblink('{target}', 'SELECT 1') AS t(a int)",
    ):
        with pytest.raises(QueryRefused):
            run_query(loaded, attack, max_rows=10)
    assert server_state(conn) == before


def test_a_hundred_million_rows_stop_at_the_cap(loaded, conn):
    """10^8 rows streamed: only the capped rows ever reach the client, and the call says there were more."""
    result = run_query(loaded, "SELECT generate_series(1, 100000000) AS n", max_rows=50)
    assert len(result.rows) == 50 and result.truncated
    assert result.rows[-1] == (50,)


def test_a_query_that_must_read_everything_is_stopped(loaded, conn):
    """A count over 10^8 rows must materialise them: the deadline (or temp_file_limit) stops it."""
    before = server_state(conn)
    started = time.monotonic()
    with pytest.raises(QueryRefused):
        run_query(loaded, "SELECT count(*) FROM generate_series(1, 100000000)", max_rows=10, deadline_s=2)
    assert time.monotonic() - started < 30
    assert server_state(conn) == before


def test_set_config_cannot_lift_the_limit_between_fetches(loaded, conn):
    """The query sets statement_timeout to 0 for later FETCHes; the client-side deadline still stops it."""
    attack = "SELECT set_config('statement_timeout', '0', false), pg_sleep(0.5) FROM generate_series(1, 1000)"
    started = time.monotonic()
    with pytest.raises(QueryRefused, match="ran longer"):
        run_query(loaded, attack, max_rows=1000, deadline_s=2)
    assert time.monotonic() - started < 10
    fresh = run_query(loaded, "SELECT current_setting('statement_timeout')", max_rows=1)
    assert fresh.rows == [("1min",)]  # the role's own limit, untouched


def test_reading_works_and_json_comes_back_as_json(loaded):
    query = "SELECT DISTINCT name, columns FROM glaze.tables WHERE name LIKE 'attack%'"  # '%' is the user's
    result = run_query(loaded, query, max_rows=5)
    assert result.columns == ["name", "columns"]
    assert result.rows == [("attack_me", ["website"])]


def test_a_privileged_login_is_refused(loaded):
    """GLAZE_READONLY_DATABASE_URL pointing at a superuser: glaze sql refuses instead of running as it."""
    with pytest.raises(ReadOnlyRoleProblem, match="not read-only"):
        run_query(loaded, "SELECT 1", max_rows=1, readonly_url=loaded)


def test_a_missing_role_is_refused_with_the_way_out(loaded):
    missing = reader_url(loaded, None).replace(READER_ROLE, "glaze_reader_missing")
    with pytest.raises(ReadOnlyRoleProblem, match="--role-sql"):
        run_query(loaded, "SELECT 1", max_rows=1, readonly_url=missing)


def test_the_role_sql_an_administrator_runs_is_idempotent(loaded, conn):
    conn.execute(ROLE_SQL)
    conn.execute(ROLE_SQL)
    conn.commit()
    assert run_query(loaded, "SELECT 1", max_rows=1).rows == [(1,)]


def test_an_unprivileged_owner_migrates_and_an_administrator_finishes_the_role(servers, conn):
    """A configured server where glaze's user may not create roles: migrations pass, glaze sql refuses
    until the role SQL is run by an administrator, then it works."""
    token = uuid.uuid4().hex[:8]
    owner, database = f"glaze_owner_{token}", f"glaze_unpriv_{token}"
    admin = psycopg.conninfo.make_conninfo(servers.database_url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEROLE").format(sql.Identifier(owner)))
        c.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(owner)))
    owner_url = psycopg.conninfo.make_conninfo(servers.database_url, dbname=database, user=owner)
    try:
        db.migrate(owner_url)  # the role exists on this server already (the session's migration made it)
        with pytest.raises(ReadOnlyRoleProblem, match="large objects"):
            run_query(owner_url, "SELECT 1", max_rows=1)
        superuser_here = psycopg.conninfo.make_conninfo(servers.database_url, dbname=database)
        with psycopg.connect(superuser_here, autocommit=True) as c:
            c.execute(ROLE_SQL)
        assert run_query(owner_url, "SELECT count(*) FROM glaze.tables", max_rows=1).rows == [(0,)]
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
            c.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(owner)))


def test_query_text_that_is_not_utf8_is_refused(loaded):
    with pytest.raises(QueryRefused, match="not valid UTF-8"):
        run_query(loaded, "SELECT '\udcff'", max_rows=1)


# --- DuckDB over the stage files ----------------------------------------------------------------------


@pytest.fixture
def stages(tmp_path) -> Path:
    folder = tmp_path / "stages" / "website_candidates"
    folder.mkdir(parents=True)
    pl.DataFrame({"row_key": ["a", "b"], "value": ["x", "y"]}).write_parquet(folder / "t1.parquet")
    (tmp_path / "outside.csv").write_text("secret\n42\n")
    (tmp_path / "exports").mkdir()
    return tmp_path / "stages"


def _files(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*")}


DUCKDB_ATTACKS = [
    ("SELECT * FROM read_csv('/etc/passwd')", "read a system file"),
    ("SELECT * FROM read_csv('{stages}/../outside.csv')", "climb out of the stage folder"),
    ("SELECT * FROM read_text('{outside}')", "read a file beside the stage folder"),
    ("SELECT * FROM glob('/etc/*')", "list a system folder"),
    ("ATTACH '{stages}/evil.duckdb'", "create a database file"),
    ("ATTACH '{outside_db}'", "create a database file elsewhere"),
    ("INSTALL httpfs", "install an extension (network)"),
    ("LOAD httpfs", "load an extension"),
    ("SELECT * FROM read_csv('https://example.com/x.csv')", "reach the network"),
    ("COPY (SELECT 1) TO '{stages}/website_candidates/evil.parquet'", "write into the stage folder"),
    ("COPY (SELECT 1) TO '{outside_copy}'", "write a file elsewhere"),
    ("COPY (SELECT 1) TO '{exports}/evil.csv'", "write into the exports folder"),
    ("EXPORT DATABASE '{stages}/dump'", "export into the stage folder"),
    ("SET enable_external_access = true", "unlock file access"),
    ("SELECT 1; COPY (SELECT 1) TO '{outside_copy}'", "a second statement"),
    ("SELECT * FROM query('COPY (SELECT 1) TO ''{outside_copy}''')", "a statement inside query()"),
]


@pytest.mark.parametrize(("attack", "intent"), DUCKDB_ATTACKS, ids=[a[1] for a in DUCKDB_ATTACKS])
def test_duckdb_attack_is_refused_and_writes_nothing(stages, attack, intent):
    root = stages.parent
    query = attack.format(
        stages=stages,
        outside=root / "outside.csv",
        outside_db=root / "evil.duckdb",
        outside_copy=root / "copied.csv",
        exports=root / "exports",
    )
    before = _files(root)
    with pytest.raises(QueryRefused) as refused:
        query_stage_files(stages, query, max_rows=10, exports=root / "exports")
    assert str(refused.value).strip()
    assert _files(root) == before


def test_duckdb_reads_the_exports_folder_but_not_beside_it(stages):
    exports = stages.parent / "exports"
    pl.DataFrame({"mart": ["m"]}).write_parquet(exports / "mart.parquet")
    (stages.parent / "exports_evil").mkdir()
    pl.DataFrame({"x": [1]}).write_parquet(stages.parent / "exports_evil" / "x.parquet")
    found = query_stage_files(
        stages, f"SELECT mart FROM read_parquet('{exports}/mart.parquet')", max_rows=5, exports=exports
    )
    assert found.rows == [("m",)]
    with pytest.raises(QueryRefused):
        query_stage_files(
            stages, f"SELECT * FROM read_parquet('{stages.parent}/exports_evil/x.parquet')", max_rows=5, exports=exports
        )


def test_duckdb_reads_the_stage_files_under_a_cap(stages):
    result = query_stage_files(stages, "SELECT row_key, value FROM website_candidates ORDER BY row_key", max_rows=1)
    assert result.columns == ["row_key", "value"]
    assert result.rows == [("a", "x")] and result.truncated
    huge = query_stage_files(stages, "SELECT * FROM range(100000000)", max_rows=5)
    assert len(huge.rows) == 5 and huge.truncated


def test_the_reader_may_read_every_schema_dbt_builds():
    """A schema dbt writes to that the role cannot read would make the marts invisible to `glaze sql`."""
    import yaml

    from glaze_pipeline.core.storage.readonly import READABLE_SCHEMAS

    project = yaml.safe_load((Path(__file__).resolve().parents[3] / "dbt" / "dbt_project.yml").read_text())
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "+schema":
                    found.add(str(value))
                walk(value)

    walk(project)
    assert found and found <= set(READABLE_SCHEMAS)
    for schema in READABLE_SCHEMAS:
        assert f"SCHEMA IF NOT EXISTS {schema}" in ROLE_SQL or schema == "glaze"
