"""Read-only SQL by construction: user queries run as the role `glaze_reader`, one SELECT at a time, under a row cap.

Nothing here trusts the query text. The role (migration 0007, or an administrator running `ROLE_SQL`)
has SELECT on the glaze schema and the dbt marts and nothing else; read-only transactions and a
statement timeout are set on the role itself; every connection is checked before the query runs.
The query is sent as `DECLARE … CURSOR FOR <query>` over the extended protocol, which takes exactly
one statement and only a SELECT (or VALUES, TABLE, WITH … SELECT); rows come back in chunks up to a
cap, and the transaction is always rolled back. `glaze sql` and the API's read paths come through here.

`query_stage_files` does the same for the Parquet stage files with DuckDB: file access limited to the
stage folder, configuration locked, one SELECT per call.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import psycopg
from psycopg import errors as pg_errors

from glaze_pipeline.errors import UserFacingError

READER_ROLE = "glaze_reader"
READABLE_SCHEMAS = ("glaze", "glaze_staging", "glaze_marts")  # the dbt schemas, from dbt/dbt_project.yml
_FETCH_CHUNK = 500

# Creates the role if the caller may, sets its limits, grants what it may read. Idempotent; run by
# migration 0007 as the glaze user, or by an administrator (`glaze sql --role-sql` prints it).
# Tables created later in these schemas by the same owner are readable through default privileges;
# a migration that adds a table readers must not see revokes it, as api_keys is revoked here.
ROLE_SQL = """\
DO $glaze_reader$
DECLARE
    caller record;
    owner text := (SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'glaze');
    wanted text[] := ARRAY['default_transaction_read_only=on', 'statement_timeout=60s',
                           'idle_in_transaction_session_timeout=60s', 'lock_timeout=5s'];
BEGIN
    SELECT rolsuper, rolsuper OR rolcreaterole AS manages_roles INTO caller FROM pg_roles WHERE rolname = current_user;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'glaze_reader') THEN
        IF NOT caller.manages_roles THEN
            RAISE WARNING 'glaze_reader does not exist and % may not create roles; see glaze sql --role-sql',
                current_user;
            RETURN;
        END IF;
        BEGIN
            CREATE ROLE glaze_reader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
                NOINHERIT CONNECTION LIMIT 20;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- another database on this server created it meanwhile
        END;
    END IF;
    -- Only when different: two databases migrating at once must not both rewrite the shared role.
    IF caller.manages_roles AND NOT coalesce((SELECT rolconfig FROM pg_roles WHERE rolname = 'glaze_reader')
                                              @> wanted, false) THEN
        ALTER ROLE glaze_reader SET default_transaction_read_only = on;
        ALTER ROLE glaze_reader SET statement_timeout = '60s';
        ALTER ROLE glaze_reader SET idle_in_transaction_session_timeout = '60s';
        ALTER ROLE glaze_reader SET lock_timeout = '5s';
    END IF;
    IF caller.rolsuper THEN
        ALTER ROLE glaze_reader NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
        IF NOT coalesce((SELECT rolconfig FROM pg_roles WHERE rolname = 'glaze_reader')
                        @> ARRAY['temp_file_limit=1GB'], false) THEN
            ALTER ROLE glaze_reader SET temp_file_limit = '1GB';
        END IF;
        -- A read-only transaction still lets anyone create large objects; glaze uses none.
        REVOKE EXECUTE ON FUNCTION lo_create(oid), lo_creat(integer), lo_from_bytea(oid, bytea) FROM PUBLIC;
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO glaze_reader', current_database());
    -- dbt's schemas (dbt/dbt_project.yml), made here so the grants exist before dbt first builds them.
    EXECUTE format('CREATE SCHEMA IF NOT EXISTS glaze_staging AUTHORIZATION %I', owner);
    EXECUTE format('CREATE SCHEMA IF NOT EXISTS glaze_marts AUTHORIZATION %I', owner);
    GRANT USAGE ON SCHEMA glaze, glaze_staging, glaze_marts TO glaze_reader;
    GRANT SELECT ON ALL TABLES IN SCHEMA glaze, glaze_staging, glaze_marts TO glaze_reader;
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA glaze, glaze_staging, glaze_marts '
                   'GRANT SELECT ON TABLES TO glaze_reader', owner);
    IF to_regclass('glaze.api_keys') IS NOT NULL THEN
        REVOKE ALL ON glaze.api_keys FROM glaze_reader;  -- key hashes are not for readers
    END IF;
END
$glaze_reader$;
"""

_CHECK_SQL = """\
SELECT session_user::text, current_user::text, r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolreplication
       OR r.rolbypassrls,
       (SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid),
       coalesce(r.rolconfig, '{}'),
       has_schema_privilege(r.oid, 'glaze', 'CREATE')
         OR has_table_privilege(r.oid, 'glaze.records', 'INSERT, UPDATE, DELETE, TRUNCATE'),
       has_function_privilege(r.oid, 'lo_from_bytea(oid, bytea)', 'EXECUTE'),
       (SELECT setting::bigint FROM pg_settings WHERE name = 'statement_timeout')
FROM pg_roles r WHERE r.rolname = current_user"""


class ReadOnlyRoleProblem(UserFacingError):
    """The read-only role is missing, cannot log in, or could do more than read; `glaze sql` refuses."""


class QueryRefused(UserFacingError):
    """The query was refused or stopped; the message says why and what to change."""


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple[object, ...]]
    truncated: bool  # the query had more rows than the cap


def reader_url(database_url: str, readonly_url: str | None) -> str:
    """GLAZE_READONLY_DATABASE_URL, else the main URL with the reader as user and no password or options."""
    if readonly_url:
        return readonly_url
    params = psycopg.conninfo.conninfo_to_dict(database_url)
    for key in ("password", "options", "passfile"):
        params.pop(key, None)
    params["user"] = READER_ROLE
    return psycopg.conninfo.make_conninfo("", **params)


def connect_reader(url: str) -> psycopg.Connection:
    try:
        return psycopg.connect(url, connect_timeout=10, application_name="glaze read-only")
    except psycopg.OperationalError as exc:
        text = str(exc)
        user = psycopg.conninfo.conninfo_to_dict(url).get("user") or READER_ROLE
        if f'role "{user}" does not exist' in text:
            raise ReadOnlyRoleProblem(
                f"the read-only role {user} does not exist on this server: have an administrator run the "
                "SQL that `glaze sql --role-sql` prints, then try again"
            ) from exc
        detail = _first_line(exc).removeprefix("connection failed: ")
        if "authentication" in text or "password" in text:
            raise ReadOnlyRoleProblem(
                f"could not log in as {user} ({detail}): set GLAZE_READONLY_DATABASE_URL to its URL with its password"
            ) from exc
        raise QueryRefused(f"could not reach PostgreSQL as {user} ({detail}): check the server") from exc


def check_reader(conn: psycopg.Connection) -> float:
    """Refuse a connection that could do more than read; returns the role's statement timeout in seconds."""
    row = conn.execute(_CHECK_SQL).fetchone()
    conn.rollback()
    if row is None:
        raise ReadOnlyRoleProblem("the read-only connection has no role: check GLAZE_READONLY_DATABASE_URL")
    session, current, powerful, memberships, config, writes, large_objects, timeout_ms = row
    problems = []
    if session != current:
        problems.append(f"it runs as {current} for {session}")
    if powerful or memberships:  # a member of any role could become it (set_config('role', …))
        problems.append(f"{current} is a privileged role or a member of other roles")
    if "default_transaction_read_only=on" not in config or not any(c.startswith("statement_timeout=") for c in config):
        problems.append(f"{current} has no default_transaction_read_only and statement_timeout of its own")
    if not timeout_ms:
        problems.append("its statement timeout is off")
    if writes:
        problems.append(f"{current} may write to the glaze schema")
    if large_objects:
        problems.append(f"{current} may create large objects")
    if problems:
        raise ReadOnlyRoleProblem(
            f"refusing to run: the read-only connection is not read-only ({'; '.join(problems)}); "
            "have an administrator run the SQL that `glaze sql --role-sql` prints"
        )
    return float(timeout_ms) / 1000


def run_query(
    database_url: str,
    query: str,
    *,
    max_rows: int,
    readonly_url: str | None = None,
    deadline_s: float | None = None,
) -> QueryResult:
    """Run one SELECT as the reader; at most `max_rows` rows are fetched, never more in memory."""
    with stream_query(database_url, query, max_rows=max_rows, readonly_url=readonly_url, deadline_s=deadline_s) as (
        columns,
        chunks,
    ):
        rows = [row for chunk in chunks for row in chunk]
        return QueryResult(columns, rows, chunks.truncated)


class _Watchdog:
    """Cancels whatever the connection runs once the deadline has passed, again every second until stopped.

    The role's statement timeout covers one statement, and a query can change it for the next FETCH
    (`set_config`); this bounds the whole call from the client side.
    """

    def __init__(self, conn: psycopg.Connection, deadline_s: float) -> None:
        self.expired = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(conn, deadline_s), daemon=True)
        self._thread.start()

    def _watch(self, conn: psycopg.Connection, deadline_s: float) -> None:
        if self._stop.wait(deadline_s):
            return
        self.expired = True
        while True:
            conn.cancel_safe()
            if self._stop.wait(1.0):
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class _Chunks:
    """Row chunks from the open cursor, up to the cap; `truncated` is known once they are consumed."""

    def __init__(self, query: stream_query, cursor: psycopg.ServerCursor, max_rows: int) -> None:
        self._query = query
        self._cursor = cursor
        self._max_rows = max_rows
        self.truncated = False

    def __iter__(self) -> Iterator[list[tuple[object, ...]]]:
        left = self._max_rows
        try:
            while left > 0:
                rows = self._fetch(min(_FETCH_CHUNK, left))
                if not rows:
                    return
                left -= len(rows)
                yield rows
            self.truncated = bool(self._fetch(1))
        except psycopg.Error as exc:
            raise self._query.refusal(exc) from exc

    def _fetch(self, n: int) -> list[tuple[object, ...]]:
        self._query.check_deadline()
        return self._cursor.fetchmany(n)


class stream_query:  # a context manager, named like open()
    """`with stream_query(url, q, max_rows=n) as (columns, chunks):` rows in chunks, for writers that stream."""

    def __init__(
        self,
        database_url: str,
        query: str,
        *,
        max_rows: int,
        readonly_url: str | None = None,
        deadline_s: float | None = None,
    ) -> None:
        _check_text(query)
        self._url = reader_url(database_url, readonly_url)
        self._query = query
        self._max_rows = max_rows
        self._deadline_s = deadline_s
        self._timeout_s = deadline_s or 0.0
        self._conn: psycopg.Connection | None = None
        self._watchdog: _Watchdog | None = None

    def __enter__(self) -> tuple[list[str], _Chunks]:
        conn = self._conn = connect_reader(self._url)
        try:
            role_timeout_s = check_reader(conn)
            self._timeout_s = self._deadline_s or role_timeout_s
            self._watchdog = _Watchdog(conn, self._timeout_s)
            conn.read_only = True
            cursor = conn.cursor(name="glaze_query", scrollable=False, withhold=False)
            cursor.execute(self._query)  # DECLARE over the extended protocol: one SELECT, nothing else
        except psycopg.Error as exc:
            self._close()
            raise self.refusal(exc) from exc
        except BaseException:
            self._close()
            raise
        return [d.name for d in cursor.description or []], _Chunks(self, cursor, self._max_rows)

    def __exit__(self, *exc_info: object) -> None:
        self._close()

    def check_deadline(self) -> None:
        if self._watchdog is not None and self._watchdog.expired:
            raise self.refusal(pg_errors.QueryCanceled("deadline"))

    def _close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.stop()
            self._watchdog = None
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.rollback()  # never commit: even a read-only transaction is not trusted to be harmless
            self._conn.close()
            self._conn = None

    def refusal(self, exc: psycopg.Error) -> QueryRefused:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if isinstance(exc, pg_errors.QueryCanceled):
            return QueryRefused(f"the query ran longer than {self._timeout_s:g} s and was stopped: narrow it down")
        if "multiple commands" in first:
            return QueryRefused("one statement per call: send each query on its own, without ';' between them")
        if isinstance(exc, pg_errors.SyntaxError):
            return QueryRefused(f"SQL error: {first} (read-only: one SELECT, VALUES or WITH … SELECT per call)")
        if isinstance(exc, pg_errors.InsufficientPrivilege):
            return QueryRefused(f"not allowed: {first} (the read-only role only reads glaze and the dbt schemas)")
        return QueryRefused(f"SQL error: {first}")


def _check_text(query: str) -> None:
    try:
        query.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise QueryRefused(
            f"the query is not valid UTF-8 text (at character {exc.start}): retype it or save it as UTF-8"
        ) from exc
    if "\x00" in query:
        raise QueryRefused("the query contains a NUL character: remove it")
    if not query.strip():
        raise QueryRefused("the query is empty: give one SELECT query")


# --- DuckDB over the stage files --------------------------------------------------------------------


def query_stage_files(stages: Path, query: str, *, max_rows: int, exports: Path | None = None) -> QueryResult:
    """One SELECT over the Parquet stage files (a view per asset); DuckDB may read the stage folder (and the
    exports folder, when given) and nothing else."""
    _check_text(query)
    con = _stage_connection(stages, exports)
    try:
        try:
            statements = con.extract_statements(query)
        except duckdb.Error as exc:
            raise QueryRefused(f"SQL error: {_first_line(exc)}") from exc
        allowed = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
        if len(statements) != 1 or statements[0].type not in allowed:
            raise QueryRefused(
                "glaze sql --duckdb runs exactly one SELECT over the stage files; "
                "ATTACH, COPY, INSTALL, SET and other statements are not allowed"
            )
        try:
            cursor = con.execute(query)
            columns = [d[0] for d in cursor.description or []]
            rows = cursor.fetchmany(max_rows + 1)
        except duckdb.Error as exc:
            raise QueryRefused(f"SQL error: {_first_line(exc)}") from exc
    finally:
        con.close()
    return QueryResult(columns, rows[:max_rows], truncated=len(rows) > max_rows)


def _stage_connection(stages: Path, exports: Path | None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "allow_community_extensions": False,
            "allow_persistent_secrets": False,
            "memory_limit": "1GB",
            "temp_directory": "",  # nothing spills to disk
        }
    )
    folders = [str(f.resolve()).rstrip("/") + "/" for f in (stages, exports) if f is not None]
    con.execute(f"SET allowed_directories = [{', '.join(_literal(f) for f in folders)}]")
    con.execute("SET enable_external_access = false")
    for asset in sorted(p for p in stages.glob("*") if p.is_dir() and any(p.glob("*.parquet"))):
        name = '"' + asset.name.replace('"', '""') + '"'
        files = _literal(str(asset.resolve() / "*.parquet"))
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({files}, filename = true)")
    con.execute("SET lock_configuration = true")
    return con


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
