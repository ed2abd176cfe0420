"""`glaze`: upload, enrich, export and query tables; manage the local servers; run the demo and the UI."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import click
import polars as pl
import psycopg
from rich.table import Table

from glaze_pipeline import logs
from glaze_pipeline.config import PACKAGE_DIR, Settings, dollars, settings
from glaze_pipeline.core.intake.export import export_frame, write_export
from glaze_pipeline.core.intake.lifecycle import release_table
from glaze_pipeline.core.intake.tables import (
    TableNotFound,
    TableStatus,
    ask_for_fields,
    list_tables,
    table_info,
)
from glaze_pipeline.core.intake.uploads import Uploaded, upload_file
from glaze_pipeline.core.model.fields import ALL_FIELDS, FIELD_NAMES, parse_wanted
from glaze_pipeline.core.pipeline.runtime import BudgetLimits, open_database
from glaze_pipeline.core.storage import db, readonly, services
from glaze_pipeline.errors import UserFacingError
from glaze_pipeline.terminal import (
    claim_table_run,
    console,
    coverage_notes,
    database,
    enrich_table,
    follow_run,
    out,
    print_rows,
    print_summary,
    refresh_marts_now,
)

DEBUG = "glaze.debug"


class GlazeGroup(click.Group):
    """The CLI's edge: a user-facing error prints its sentence (exit code 2), never a traceback (unless --debug)."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except UserFacingError as exc:
            if ctx.meta.get(DEBUG):
                traceback.print_exc()
            raise UsageProblem(str(exc), getattr(exc, "exit_code", UsageProblem.exit_code)) from exc


class UsageProblem(click.ClickException):
    """What the user sees: the sentence, and exit code 2 (130 when Ctrl-C stopped a run)."""

    exit_code = 2

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]


class Dollars(click.ParamType):
    """A budget flag: a finite amount of US dollars, 0 or more, refused before anything is uploaded or run."""

    name = "usd"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            return dollars("the budget", float(value))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            flag = param.opts[0] if param is not None else "a budget"
            # One sentence, without click's usage block: the flag was understood, its value was not.
            raise UsageProblem(f"{flag} takes a finite amount of US dollars, 0 or more; got {value!r}") from None


def _settings() -> Settings:
    """The configuration, validated now: a bad variable stops the command before anything is queued."""
    return settings()


@click.group(cls=GlazeGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log info and debug detail to stderr (default: warnings).")
@click.option("--debug", is_flag=True, help="Show the traceback behind an error message.")
@click.pass_context
def main(ctx: click.Context, verbose: bool, debug: bool) -> None:
    """glaze-pipeline: enrich tables of company and person URLs through a provider waterfall.

    Logs go to stderr as JSON lines; results go to stdout.
    """
    ctx.meta[DEBUG] = debug
    logs.configure("cli", _settings(), level=logging.DEBUG if verbose else logging.WARNING)


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
    click.option(
        "--fields",
        help=f"Comma-separated fields to fill, or '{ALL_FIELDS}' (the default when not given). "
        f"Known: {', '.join(FIELD_NAMES)}",
    ),
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
    type=Dollars(),
    help="Budget of this run in USD, all paid providers together (default: GLAZE_MAX_COST_USD).",
)
@click.option("--max-cost-per-row", type=Dollars(), help="Budget per row in USD (default: GLAZE_MAX_COST_PER_ROW_USD).")
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
    wanted = parse_wanted(fields) if fields is not None else None  # a bad list stops here, before anything is stored
    path = Path(source)
    repair_tables(s)
    with database(s) as conn:
        if path.is_file():
            status = TableStatus.PLANNED if dry_run else TableStatus.RUNNING
            table_id = _upload(conn, path, name, url_column, fields, status).table_id
            run_id = None if dry_run else claim_table_run(conn, table_id)
        else:
            try:
                table_id = table_info(conn, source).table_id
            except TableNotFound as exc:
                raise UsageProblem(f"{source!r} is neither a file nor an uploaded table id") from exc
            run_id = None if dry_run else claim_table_run(conn, table_id)  # another run's table is refused here
            if wanted is not None:  # an enriched table gains these fields, and the run asks only for them
                ask_for_fields(conn, table_id, wanted)
    if dry_run:
        dry_run_table(s, table_id)
        return
    enrich_table(s, table_id, BudgetLimits(max_cost, max_cost_per_row), refresh_marts=not no_marts, run_id=run_id)


def dry_run_table(s: Settings, table_id: str, refresh_fields: list[str] | None = None) -> None:
    from glaze_pipeline.runner import estimate_table

    estimates = estimate_table(s, table_id, refresh_fields)
    table = Table("provider", "at most/call", "rows with gaps", "cached", "would call", "est. cost", "note")
    for e in estimates:
        table.add_row(
            e.provider,
            f"${e.price_usd:.4g}",
            str(e.rows_with_gaps),
            str(e.cached),
            str(e.calls),
            f"${e.cost_usd:.4f}",
            e.note,
        )
    out.print(table)
    total = sum(e.cost_usd for e in estimates)
    for field, why in coverage_notes(s, table_id, asked_only=True).items():
        console.print(f"[yellow]note[/] {field}: {why}")
    again = (
        f"glaze refresh {table_id} --fields {','.join(refresh_fields)}"
        if refresh_fields
        else f"glaze enrich {table_id}"
    )
    out.print(
        f"dry run of table {table_id}: no paid provider was called. Estimated cost at most ${total:.4f}"
        f" (budget ${s.max_cost_usd:g} per run, ${s.max_cost_per_row_usd:g} per row).\n"
        f"run it: {again}"
    )


def _days(age: str | None) -> float | None:
    """'30d', '12h' or a plain number of days."""
    if age is None:
        return None
    unit = {"d": 1.0, "h": 1 / 24, "w": 7.0}.get(age.strip()[-1:].lower())
    try:
        return float(age.strip()[:-1]) * unit if unit else float(age)
    except ValueError:
        raise UsageProblem(f"--older-than {age!r}: give an age such as 30d, 12h or 2w") from None


@main.command("refresh")
@click.argument("table_id", required=False)
@click.option(
    "--older-than", help="Ask again for values older than this (30d, 12h, 2w); default: GLAZE_REFRESH_AFTER*."
)
@click.option("--fields", help="Only these fields (comma-separated); default: every stale wanted field.")
@click.option("--dry-run", is_flag=True, help="Print what would be asked again and its price; pay nothing.")
def refresh_cmd(table_id: str | None, older_than: str | None, fields: str | None, dry_run: bool) -> None:
    """Ask the providers again for stale values (of TABLE_ID, or of every table), past the cache."""
    from glaze_pipeline.core.pipeline.refresh import stale_tables
    from glaze_pipeline.runner import cli_run_instance, run_table

    s = _settings()
    wanted = parse_wanted(fields) if fields else None
    with database(s) as conn:
        if table_id is not None:
            table_info(conn, table_id)  # an unknown id says so
        stale = stale_tables(conn, s.refresh, table_id=table_id, fields=wanted, older_than_days=_days(older_than))
    if not stale:
        out.print("nothing to refresh: no landed value is older than its refresh age")
        return
    for table in stale:
        out.print(
            f"table {table.table_id}: {table.values} values of {', '.join(table.fields)} are stale"
            f" (oldest {table.oldest:%Y-%m-%d}, from {', '.join(table.providers)})"
        )
        if dry_run:
            dry_run_table(s, table.table_id, list(table.fields))
            continue
        outcome = run_table(table.table_id, cli_run_instance(s), refresh_fields=list(table.fields))
        if not outcome.success:
            with database(s) as conn:
                reason = f"refresh run {outcome.run_id[:8]} failed: {outcome.failure}"
                release_table(conn, table.table_id, reason, run_id=outcome.run_id)
            raise UsageProblem(f"{reason}\n  details: glaze dev, then open the run")
        out.print(f"  refreshed in run {outcome.run_id[:8]}; `glaze status {table.table_id}` shows the result")


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
    """List uploaded tables with their row counts and status (and why, for a failed one)."""
    s = _settings()
    repair_tables(s)
    with database(s, create=False) as conn:
        infos = list_tables(conn)
    table = Table("table_id", "rows in", "accepted", "rejected", "duplicates", "status", "uploaded", "reason")
    for i in infos:
        table.add_row(
            i.table_id,
            str(i.rows_in),
            str(i.accepted),
            str(i.rejected),
            str(i.duplicates),
            i.status,
            i.created_at.strftime("%Y-%m-%d %H:%M"),
            i.status_reason or "",
        )
    out.print(table)


def repair_tables(s: Settings) -> None:
    """The start-up check: tables whose run died (or whose run request was lost) are released and said so."""
    from glaze_pipeline.defs.lifecycle.runs import repair_tables as repair
    from glaze_pipeline.runner import dagster_instance

    if not services.database_exists(s):
        return  # a home with no database yet has nothing to repair (and is not created just to look)
    with database(s) as conn:
        for r in repair(dagster_instance(s), conn, s.run_lost_after_s):
            console.print(f"[yellow]table {r.table_id} {r.action}[/]: {r.reason}")


@main.command()
@click.argument("table_id")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--explain", is_flag=True, help="Add <column>_source and <column>_status beside each field and its confidence."
)
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists, even the file the table was uploaded from.")
def export(table_id: str, fmt: str, output: Path, explain: bool, force: bool) -> None:
    """Write the user's rows (same order, duplicates included) plus enriched columns, their confidence, glaze_status."""
    with database(_settings(), create=False) as conn:
        info = table_info(conn, table_id)
        frame = export_frame(conn, info, explain=explain)
    inputs = (Path(info.source_file),) if info.source_file else ()
    write_export(frame, output, fmt, force=force, inputs=inputs)
    console.print(f"wrote {frame.height} rows × {frame.width} columns to {output}")


# --- status and lifecycle -------------------------------------------------------------------------------


@main.command("status")
@click.argument("table_id")
@click.option("--follow/--no-follow", default=True, show_default=True, help="While a run is going, show its progress.")
def status_cmd(table_id: str, follow: bool) -> None:
    """Coverage by field and cost by provider of TABLE_ID, after a live progress bar while a run is going."""
    s = _settings()
    with database(s, create=False) as conn:
        table_info(conn, table_id)  # an unknown table is a clear error before anything else
    run_id = follow_run(s, table_id) if follow else None
    print_summary(s, table_id, run_id, coverage_notes(s, table_id))


def _confirm(yes: bool, question: str) -> None:
    if not yes and not click.confirm(question, default=False, err=True):
        raise UsageProblem("nothing removed")


def _no_run_going(s: Settings, table_id: str | None) -> None:
    from glaze_pipeline.runner import dagster_instance, partition_runs, runs_going

    instance = dagster_instance(s)
    going = partition_runs(instance, table_id, going=True) if table_id else runs_going(instance)
    if going:
        what = f"table {table_id}" if table_id else "a table"
        raise UsageProblem(
            f"run {going[0].run_id[:8]} of {what} is still going; wait for it or terminate it in the UI, then try again"
        )


def _print_removed(title: str, lines: list[str]) -> None:
    out.print(title)
    for line in lines:
        out.print(f"  {line}")


_no_marts = click.option("--no-marts", is_flag=True, help="Do not rebuild the SQL marts afterwards.")


@main.command("delete")
@click.argument("table_id")
@click.option("--yes", is_flag=True, help="Do not ask before removing.")
@_no_marts
def delete_cmd(table_id: str, yes: bool, no_marts: bool) -> None:
    """Remove TABLE_ID everywhere: its Dagster partition and runs, input rows, records, field values, rejects,
    stage files and the cached answers only it used. The ledger keeps what was paid, not what was answered."""
    from glaze_pipeline.core.pipeline.removal import delete_table
    from glaze_pipeline.core.pipeline.runtime import open_runtime
    from glaze_pipeline.runner import dagster_instance, forget_partition

    s = _settings()
    with database(s, create=False) as conn:
        table_info(conn, table_id)
    _no_run_going(s, table_id)
    _confirm(yes, f"Remove table {table_id} and everything glaze holds for it?")
    with open_runtime(s) as runtime:
        removed = delete_table(runtime, table_id)
    removed.counts["Dagster runs"] = forget_partition(dagster_instance(s), table_id)
    _print_removed(f"deleted table {table_id}:", removed.lines())
    if not no_marts:  # the marts are tables built from what was there: rebuilt, they hold it no longer
        refresh_marts_now(s)


@main.command("purge")
@click.option("--entity", "url", required=True, help="The company's or person's URL, as it was uploaded.")
@click.option("--yes", is_flag=True, help="Do not ask before removing.")
@_no_marts
def purge_cmd(url: str, yes: bool, no_marts: bool) -> None:
    """Remove one company or person from every table, the cache, the ledger's stored answers and the stage
    files (a right-to-erasure request), and print what was removed. The ledger keeps what each call cost."""
    from glaze_pipeline.core.pipeline.removal import purge_entity
    from glaze_pipeline.core.pipeline.runtime import open_runtime

    s = _settings()
    open_database(s, create=False)
    _no_run_going(s, None)
    _confirm(yes, f"Remove {url} from every table, the cache and the ledger's answers?")
    with open_runtime(s) as runtime:
        removed = purge_entity(runtime, url)
    _print_removed(f"purged {url}:", removed.lines())
    if not no_marts:
        refresh_marts_now(s)


# --- SQL ----------------------------------------------------------------------------------------------


@main.command("sql")
@click.argument("query", required=False)
@click.option("--duckdb", "use_duckdb", is_flag=True, help="Query the Parquet stage files with DuckDB instead.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="Rows to fetch and print (at most GLAZE_SQL_MAX_ROWS).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every row of the result (at most GLAZE_SQL_MAX_ROWS) to this .csv or .parquet file instead.",
)
@click.option("--force", is_flag=True, help="With -o: replace the file if it exists.")
@click.option("--role-sql", is_flag=True, help="Print the SQL an administrator runs to create the read-only role.")
def sql_cmd(query: str | None, use_duckdb: bool, limit: int, output: Path | None, force: bool, role_sql: bool) -> None:
    """Run one read-only SELECT on the enriched tables (schemas glaze, glaze_marts, glaze_staging).

    It runs as the role glaze_reader, which can only read; see docs/usage.md.
    """
    if role_sql:
        click.echo(readonly.ROLE_SQL)
        return
    if query is None:
        raise UsageProblem('give a query, e.g. glaze sql "SELECT * FROM glaze.tables"')
    if output is not None and output.suffix.lower() not in (".csv", ".parquet"):
        raise UsageProblem(f"{output}: name a .csv or .parquet file for -o")
    s = _settings()
    if output is None and limit > s.sql_max_rows:
        raise UsageProblem(f"--limit is at most {s.sql_max_rows} (GLAZE_SQL_MAX_ROWS)")
    cap = s.sql_max_rows if output is not None else limit
    if use_duckdb:
        result = readonly.query_stage_files(s.stages, query, max_rows=cap, exports=s.exports)
    else:
        url = open_database(s, create=False)
        result = readonly.run_query(url, query, max_rows=cap, readonly_url=s.readonly_database_url)
    if output is None:
        print_rows(result.columns, result.rows, limit)
        if result.truncated:
            out.print(f"… more rows: showing the first {limit} (--limit)")
        return
    if result.truncated:
        raise UsageProblem(
            f"the result has more than {cap} rows (GLAZE_SQL_MAX_ROWS): narrow the query or raise the limit; "
            "nothing was written"
        )
    frame = result_frame(result.columns, result.rows)
    write_export(frame, output, output.suffix.lower().lstrip("."), force=force)
    console.print(f"wrote {frame.height} rows × {frame.width} columns to {output}")


def result_frame(columns: list[str], rows: list[tuple[object, ...]]) -> pl.DataFrame:
    """A query result as a frame CSV and Parquet can hold: JSON and array values become JSON text."""
    if len(set(columns)) != len(columns):
        raise UsageProblem(f"the result has two columns of the same name ({', '.join(columns)}): name each with AS")
    cells = [tuple(json.dumps(v, default=str) if isinstance(v, dict | list) else v for v in row) for row in rows]
    return pl.DataFrame(cells, schema=columns, orient="row", infer_schema_length=None)


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
    repair_tables(s)
    from glaze_pipeline.runner import dagster_instance

    dagster_instance(s)
    console.print(f"Dagster UI on http://127.0.0.1:{port} · instance {s.dagster_home}")
    dagster = Path(sys.executable).with_name("dagster")
    # workspace.yaml lists both code locations: the tables' and the small one for single-record API requests.
    child = subprocess.Popen(  # noqa: S603 - our own venv's dagster, on this project, bound to localhost
        [str(dagster), "dev", "-w", "workspace.yaml", "-p", str(port), "-h", "127.0.0.1", "--log-format", "json"],
        cwd=PACKAGE_DIR.parent,
        # GLAZE_HOME passed on as resolved here, so the UI's processes use this very home.
        env=os.environ | {"DAGSTER_HOME": str(s.dagster_home), "GLAZE_HOME": str(s.home), "VIRTUAL_ENV": sys.prefix},
    )
    _wait_stopping_on_sigterm(child)


def _wait_stopping_on_sigterm(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM stops `dagster dev` as Ctrl-C does (it then stops the webserver, the daemon and the code server);
    without this, the terminated CLI would leave them running on the port."""

    def forward(signum: int, frame: object) -> None:
        child.send_signal(signal.SIGINT)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        while True:
            try:
                child.wait()
                return
            except KeyboardInterrupt:  # Ctrl-C reached dagster dev too (same process group): wait for it to finish
                continue
    finally:
        signal.signal(signal.SIGTERM, previous)


@main.command()
def demo() -> None:
    """Enrich the bundled fictional companies from a loopback website server, end to end, and show the result."""
    from glaze_pipeline.sandbox.demo import run_demo

    run_demo()


if __name__ == "__main__":
    main()
