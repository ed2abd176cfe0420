"""`glaze`: upload, enrich, export and query tables; manage the local servers; run the demo and the UI."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import click
import polars as pl
import psycopg
from rich.table import Table

from glaze_pipeline.config import PACKAGE_DIR, Settings, settings
from glaze_pipeline.core.intake.export import export_frame, write_export
from glaze_pipeline.core.intake.tables import (
    TableNotFound,
    TableStatus,
    list_tables,
    set_status,
    set_wanted_fields,
    table_info,
)
from glaze_pipeline.core.intake.uploads import Uploaded, upload_file
from glaze_pipeline.core.model.fields import FIELD_NAMES, parse_wanted
from glaze_pipeline.core.pipeline.runtime import BudgetLimits, open_database
from glaze_pipeline.core.storage import db, services
from glaze_pipeline.errors import UserFacingError
from glaze_pipeline.terminal import console, database, enrich_table, out, print_rows


class GlazeGroup(click.Group):
    """The CLI's edge: a user-facing error prints its sentence (exit code 2), never a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except UserFacingError as exc:
            raise UsageProblem(str(exc)) from exc


class UsageProblem(click.ClickException):
    exit_code = 2


def _settings() -> Settings:
    return settings()


@click.group(cls=GlazeGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail to stderr.")
def main(verbose: bool) -> None:
    """glaze-pipeline: enrich tables of company and person URLs through a provider waterfall."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(message)s")


# --- services --------------------------------------------------------------------------------------


@main.group()
def services_cmd() -> None:
    """Start, stop or show the PostgreSQL and Redis servers glaze uses."""


main.add_command(services_cmd, name="services")


def _print_services(states: list[services.ServiceState]) -> None:
    table = Table("service", "running", "kind", "url")
    for s in states:
        table.add_row(
            s.name,
            "yes" if s.running else "no",
            "embedded" if s.embedded else "configured",
            services.redact(s.url),
        )
    out.print(table)


@services_cmd.command("up")
def services_up() -> None:
    """Start the embedded servers (no-op for configured URLs) and apply migrations."""
    s = _settings()
    open_database(s)
    _print_services(services.services_up(s))


@services_cmd.command("down")
def services_down() -> None:
    """Stop the embedded servers (configured servers are left alone)."""
    _print_services(services.services_down(_settings()))


@services_cmd.command("status")
def services_status() -> None:
    """Show whether each server answers."""
    _print_services(services.services_status(_settings()))


# --- upload / enrich ---------------------------------------------------------------------------------


def _upload(
    conn: psycopg.Connection,
    path: Path,
    name: str | None,
    url_column: str | None,
    fields: str | None,
    status: str,
) -> Uploaded:
    uploaded = upload_file(conn, path, name=name, url_column=url_column, fields=fields, status=status)
    c = uploaded.counts
    console.print(
        f"[bold]{path.name}[/] → table [bold cyan]{uploaded.table_id}[/] (URL column {uploaded.url_column!r}): "
        f"{c.rows_in} rows in = {c.accepted} accepted + {c.rejected} rejected + {c.duplicates} duplicates"
    )
    if c.rejected:
        console.print(
            f'  rejected rows and reasons: glaze sql "SELECT * FROM glaze.rejects WHERE table_id = '
            f"'{uploaded.table_id}'\""
        )
    return uploaded


_file_options = [
    click.option("--name", help="Table name (slugged into the table id); default: the file name."),
    click.option("--url-column", help="Column holding the URLs; detected when not given."),
    click.option("--fields", help=f"Comma-separated fields to fill; default all. Known: {', '.join(FIELD_NAMES)}"),
]


def _with_file_options(func: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(_file_options):
        func = option(func)
    return func


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_with_file_options
def upload(file: Path, name: str | None, url_column: str | None, fields: str | None) -> None:
    """Register FILE (CSV or Parquet); the inbox sensor launches its run in the Dagster daemon."""
    s = _settings()
    with database(s) as conn:
        _upload(conn, file, name, url_column, fields, TableStatus.PENDING)


@main.command()
@click.argument("source")
@_with_file_options
@click.option(
    "--max-cost",
    type=float,
    help="Budget of this run in USD, all paid providers together (default: GLAZE_MAX_COST_USD).",
)
@click.option("--max-cost-per-row", type=float, help="Budget per row in USD (default: GLAZE_MAX_COST_PER_ROW_USD).")
@click.option(
    "--dry-run", is_flag=True, help="Print how many rows each provider would be called for, and the cost; pay nothing."
)
@click.option(
    "--no-marts", is_flag=True, help="Do not refresh the SQL marts afterwards (when enriching many tables in a row)."
)
def enrich(
    source: str,
    name: str | None,
    url_column: str | None,
    fields: str | None,
    max_cost: float | None,
    max_cost_per_row: float | None,
    dry_run: bool,
    no_marts: bool,
) -> None:
    """Enrich SOURCE (a file to upload, or an uploaded TABLE_ID) now, in this process, and print a summary."""
    s = _settings()
    path = Path(source)
    with database(s) as conn:
        if path.is_file():
            status = TableStatus.PLANNED if dry_run else TableStatus.RUNNING
            table_id = _upload(conn, path, name, url_column, fields, status).table_id
        else:
            try:
                table_id = table_info(conn, source).table_id
            except TableNotFound as exc:
                raise UsageProblem(f"{source!r} is neither a file nor an uploaded table id") from exc
            if fields is not None:  # re-run an uploaded table for other fields
                set_wanted_fields(conn, table_id, parse_wanted(fields))
            if not dry_run:
                set_status(conn, table_id, TableStatus.RUNNING)
    if dry_run:
        dry_run_table(s, table_id)
        return
    enrich_table(s, table_id, BudgetLimits(max_cost, max_cost_per_row), refresh_marts=not no_marts)


def dry_run_table(s: Settings, table_id: str) -> None:
    from glaze_pipeline.runner import estimate_table

    estimates = estimate_table(s, table_id)
    table = Table("provider", "price/call", "rows with gaps", "cached", "would call", "est. cost", "note")
    for e in estimates:
        table.add_row(
            e.provider,
            f"${e.price_usd:g}",
            str(e.rows_with_gaps),
            str(e.cached),
            str(e.calls),
            f"${e.cost_usd:.4f}",
            e.note,
        )
    out.print(table)
    total = sum(e.cost_usd for e in estimates)
    out.print(
        f"dry run of table {table_id}: no paid provider was called. Estimated cost at most ${total:.4f}"
        f" (budget ${s.max_cost_usd:g} per run, ${s.max_cost_per_row_usd:g} per row).\n"
        f"run it: glaze enrich {table_id}"
    )


# --- extract ---------------------------------------------------------------------------------------


@main.command("extract")
@click.argument("pages", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--url", required=True, help="The site's address: the first page is read as this URL, the others below it."
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print only a JSON array of {field, value, confidence, evidence, reason}."
)
def extract_cmd(pages: tuple[Path, ...], url: str, as_json: bool) -> None:
    """Extract company facts from saved HTML pages with the website provider's extractor; no network, no servers."""
    import json

    from glaze_pipeline.core.web.extract import Page, extract

    site = [
        Page(url if i == 0 else f"{url.rstrip('/')}/{path.stem}", path.read_bytes()) for i, path in enumerate(pages)
    ]
    found = sorted(extract(site, url), key=lambda f: (f.field, -f.confidence, f.value))
    logging.getLogger(__name__).info("%d candidates from %d page(s)", len(found), len(site))
    if as_json:
        rows = [
            {"field": f.field, "value": f.value, "confidence": f.confidence, "evidence": f.evidence, "reason": f.reason}
            for f in found
        ]
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not found:
        console.print("nothing found")
        return
    print_rows(
        ["field", "value", "confidence", "evidence", "choice"],
        [(f.field, f.value, f.confidence, f.evidence, f.reason) for f in found],
    )


@main.command("tables")
def tables_cmd() -> None:
    """List uploaded tables with their row counts and status."""
    with database(_settings()) as conn:
        infos = list_tables(conn)
    table = Table("table_id", "rows in", "accepted", "rejected", "duplicates", "status", "uploaded")
    for i in infos:
        table.add_row(
            i.table_id,
            str(i.rows_in),
            str(i.accepted),
            str(i.rejected),
            str(i.duplicates),
            i.status,
            i.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    out.print(table)


@main.command()
@click.argument("table_id")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
def export(table_id: str, fmt: str, output: Path) -> None:
    """Write the user's rows (same order, duplicates included) plus enriched columns and glaze_status."""
    with database(_settings()) as conn:
        frame = export_frame(conn, table_info(conn, table_id))
    write_export(frame, output, fmt)
    console.print(f"wrote {frame.height} rows × {frame.width} columns to {output}")


# --- SQL ----------------------------------------------------------------------------------------------


@main.command("sql")
@click.argument("query")
@click.option("--duckdb", "use_duckdb", is_flag=True, help="Query the Parquet stage files with DuckDB instead.")
@click.option("--limit", default=200, show_default=True, help="Rows to print.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every row of the result to this .csv or .parquet file instead of printing it.",
)
def sql_cmd(query: str, use_duckdb: bool, limit: int, output: Path | None) -> None:
    """Run read-only SQL on the enriched tables (schemas glaze, glaze_marts, glaze_staging) and print the result."""
    if output is not None and output.suffix.lower() not in (".csv", ".parquet"):
        raise UsageProblem(f"{output}: name a .csv or .parquet file for -o")
    s = _settings()
    if use_duckdb:
        columns, rows = _duckdb_query(s, query)
    else:
        url = open_database(s)
        try:
            with psycopg.connect(url, options="-c default_transaction_read_only=on -c statement_timeout=60000") as conn:
                cur = conn.execute(query.encode())  # the user's own query, in a read-only transaction
                columns = [d.name for d in cur.description or []]
                rows = cur.fetchall() if cur.description else []
        except psycopg.Error as exc:
            raise UsageProblem(f"SQL error: {exc}".strip()) from exc
    if output is None:
        print_rows(columns, rows, limit)
        return
    frame = result_frame(columns, rows)
    write_export(frame, output, output.suffix.lower().lstrip("."))
    console.print(f"wrote {frame.height} rows × {frame.width} columns to {output}")


def result_frame(columns: list[str], rows: list[tuple[object, ...]]) -> pl.DataFrame:
    """A query result as a frame CSV and Parquet can hold: JSON and array values become JSON text."""
    if len(set(columns)) != len(columns):
        raise UsageProblem(f"the result has two columns of the same name ({', '.join(columns)}): name each with AS")
    cells = [tuple(json.dumps(v, default=str) if isinstance(v, dict | list) else v for v in row) for row in rows]
    return pl.DataFrame(cells, schema=columns, orient="row", infer_schema_length=None)


def _duckdb_query(s: Settings, query: str) -> tuple[list[str], list[tuple[object, ...]]]:
    import duckdb

    con = duckdb.connect()
    for folder in sorted(p for p in s.stages.glob("*") if p.is_dir()):
        files = str(folder / "*.parquet").replace("'", "''")
        con.execute(f"CREATE VIEW \"{folder.name}\" AS SELECT * FROM read_parquet('{files}', filename = true)")
    try:
        result = con.execute(query)
    except duckdb.Error as exc:
        raise UsageProblem(f"SQL error: {exc}") from exc
    return [d[0] for d in result.description], result.fetchall()


# --- the HTTP API ---------------------------------------------------------------------------------------


@main.command("api")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to bind; keep it local or behind a proxy."
)
@click.option("--port", default=8000, show_default=True)
@click.option("--workers", default=1, show_default=True, help="uvicorn worker processes.")
def api_cmd(host: str, port: int, workers: int) -> None:
    """Serve the single-record API, table uploads and the console (docs at /docs)."""
    import uvicorn

    s = _settings()
    open_database(s)  # migrations before the first request, and one clear error if Postgres is unreachable
    console.print(f"glaze API on http://{host}:{port} · docs http://{host}:{port}/docs · console http://{host}:{port}/")
    uvicorn.run(
        "glaze_pipeline.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=False,
        server_header=False,
    )


@main.group("keys")
def keys_cmd() -> None:
    """Create, list and revoke API keys."""


@keys_cmd.command("create")
@click.argument("name")
@click.option("--rate-per-min", default=300, show_default=True, help="Requests per minute this key may make.")
@click.option("--burst", default=30, show_default=True, help="Requests allowed back to back after a quiet spell.")
@click.option(
    "--daily-cap", "daily_cap", default=5.0, show_default=True, help="USD its requests may spend per UTC day."
)
def keys_create(name: str, rate_per_min: int, burst: int, daily_cap: float) -> None:
    """Create a key for NAME and print it once: glaze keeps only its hash."""
    from glaze_pipeline.core.storage.api_keys import create_key

    with database(_settings()) as conn:
        key, token = create_key(conn, name, rate_per_min=rate_per_min, burst=burst, daily_cap_usd=daily_cap)
    console.print(f"key [bold]{key.key_id}[/] for {key.name}: {key.rate_per_min}/min, ${key.daily_cap_usd:g} a day")
    console.print("Store it now; it is not shown again. Send it as the X-API-Key header:")
    click.echo(token)


@keys_cmd.command("list")
def keys_list() -> None:
    """Key ids, names, limits and whether they are revoked (never the keys)."""
    from glaze_pipeline.core.storage.api_keys import list_keys

    with database(_settings()) as conn:
        keys = list_keys(conn)
    table = Table("key_id", "name", "rate/min", "burst", "daily cap", "created", "revoked")
    for k in keys:
        table.add_row(
            k.key_id,
            k.name,
            str(k.rate_per_min),
            str(k.burst),
            f"${k.daily_cap_usd:g}",
            k.created_at.strftime("%Y-%m-%d %H:%M"),
            k.revoked_at.strftime("%Y-%m-%d %H:%M") if k.revoked_at else "-",
        )
    out.print(table)


@keys_cmd.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke KEY_ID for good: its next request gets 401."""
    from glaze_pipeline.core.storage.api_keys import revoke_key

    with database(_settings()) as conn:
        key = revoke_key(conn, key_id)
    console.print(f"key {key.key_id} ({key.name}) revoked")


@main.command(
    "dbt",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def dbt_cmd(args: tuple[str, ...]) -> None:
    """Run dbt on the SQL models in dbt/, connected to glaze's database (e.g. glaze dbt docs generate --static)."""
    from glaze_pipeline.defs.dbt.project import DBT_EXECUTABLE, DBT_PROJECT_DIR

    url = open_database(_settings())
    env = os.environ | db.libpq_environment(url)  # the profile reads PGHOST & co.: the pipeline's own database
    result = subprocess.run([str(DBT_EXECUTABLE), *args], cwd=DBT_PROJECT_DIR, env=env, check=False)  # noqa: S603
    sys.exit(result.returncode)


# --- dev and demo ---------------------------------------------------------------------------------------


@main.command()
@click.option("--port", default=3000, show_default=True)
def dev(port: int) -> None:
    """Start the servers and the Dagster UI + daemon on this project (Ctrl-C stops the UI)."""
    s = _settings()
    open_database(s)
    services.ensure_redis(s)
    from glaze_pipeline.runner import dagster_instance

    dagster_instance(s)
    console.print(f"Dagster UI on http://127.0.0.1:{port} · instance {s.dagster_home}")
    dg = Path(sys.executable).with_name("dg")
    subprocess.run(  # noqa: S603 - our own venv's dg, on this project, bound to localhost
        [str(dg), "dev", "--port", str(port), "--host", "127.0.0.1"],
        check=False,
        cwd=PACKAGE_DIR.parent,
        env=os.environ | {"DAGSTER_HOME": str(s.dagster_home), "VIRTUAL_ENV": sys.prefix},
    )


@main.command()
def demo() -> None:
    """Enrich the bundled fictional companies from a loopback website server, end to end, and show the result."""
    from glaze_pipeline.sandbox.demo import run_demo

    run_demo()


if __name__ == "__main__":
    main()
