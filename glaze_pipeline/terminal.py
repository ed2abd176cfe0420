"""What glaze shows in a terminal: tables of rows, a table run with progress bars, and its summary.

The CLI and the demo both print through here, so neither imports the other.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import psycopg
from psycopg import sql
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from glaze_pipeline.config import Settings
from glaze_pipeline.core.intake.tables import TableStatus, set_status, table_info
from glaze_pipeline.core.pipeline.runtime import BudgetLimits, open_database
from glaze_pipeline.core.storage import db
from glaze_pipeline.errors import UserFacingError

# Piped output (CI logs, `| less`) gets a wide fixed width instead of rich's 80 columns.
_WIDTH = None if Console().is_terminal else 200
console = Console(stderr=True, width=_WIDTH)  # progress, messages
out = Console(width=_WIDTH)  # results


@contextmanager
def database(s: Settings) -> Iterator[psycopg.Connection]:
    """A connection to the migrated database (the embedded server is started when needed)."""
    with db.connect(open_database(s)) as conn:
        yield conn


def print_rows(columns: Sequence[str], rows: Sequence[Sequence[object]], limit: int = 200) -> None:
    table = Table(*columns)
    for row in rows[:limit]:
        table.add_row(*(_cell(v) for v in row))
    out.print(table)
    if len(rows) > limit:
        out.print(f"… {len(rows) - limit} more rows")


def _cell(value: object) -> str:
    """A value as a user reads it; JSON columns (filled_by_source) as JSON, not Python's repr."""
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else str(value)


class RunFailed(UserFacingError):
    """A table run ended in failure; the message names the run so the user can open it in the UI."""


def enrich_table(s: Settings, table_id: str, limits: BudgetLimits | None = None, *, refresh_marts: bool = True) -> None:
    """Run one table now, in this process, with a progress bar per stage; print what it filled; refresh the marts."""
    from glaze_pipeline.runner import dagster_instance, run_table

    instance = dagster_instance(s)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        outcome = run_table(table_id, instance, limits=limits, on_progress=on_progress, on_message=console.log)
    if not outcome.success:
        with database(s) as conn:
            set_status(conn, table_id, TableStatus.FAILED)
        raise RunFailed(f"run {outcome.run_id} failed: {outcome.failure}\n  details: glaze dev, then open the run")
    print_summary(s, table_id, outcome.run_id)
    if refresh_marts:
        refresh_marts_now(s)


def refresh_marts_now(s: Settings) -> bool:
    """Rebuild the SQL marts through Dagster in this process: without the daemon, nothing else would."""
    from glaze_pipeline.defs.dbt.assets import BUILD_SUMMARY_PREFIX
    from glaze_pipeline.runner import dagster_instance, refresh_marts

    console.print("refreshing the SQL marts (dbt build over every landed table)…")
    said: list[str] = []
    # dagster-dbt echoes every dbt line to stdout and logs at INFO: the run log (UI) keeps them all, the
    # terminal shows the one-line summary.
    dagster_logger = logging.getLogger("dagster")
    propagate, dagster_logger.propagate = dagster_logger.propagate, False
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            outcome = refresh_marts(
                dagster_instance(s), on_message=lambda m: said.extend([m] if m.startswith(BUILD_SUMMARY_PREFIX) else [])
            )
    finally:
        dagster_logger.propagate = propagate
    if not outcome.success:
        console.print(
            f"[yellow]the SQL marts were not refreshed[/] (run {outcome.run_id}: {outcome.failure}); the table itself"
            " is enriched. Details: glaze dev, then open the run"
        )
        return False
    out.print(f'marts refreshed ({said[-1] if said else "dbt build"}): glaze sql "SELECT * FROM glaze_marts.companies"')
    return True


def print_summary(s: Settings, table_id: str, run_id: str) -> None:
    with database(s) as conn:
        info = table_info(conn, table_id)
        counts_sql = sql.SQL("").join(sql.SQL("count({}), ").format(sql.Identifier(f)) for f in info.wanted_fields)
        query = sql.SQL("SELECT {}count(*), coalesce(sum(cost_usd), 0) FROM glaze.records WHERE table_id = %s")
        filled = conn.execute(query.format(counts_sql), (table_id,)).fetchone()
    assert filled is not None
    *counts, entities, cost = filled
    table = Table("field", "filled", "of", title=f"table {table_id} · run {run_id[:8]}")
    for field, n in zip(info.wanted_fields, counts, strict=True):
        table.add_row(field, str(n), str(entities))
    out.print(table)
    out.print(
        f"rows in {info.rows_in} = {info.accepted} accepted + {info.rejected} rejected + "
        f"{info.duplicates} duplicates · total cost ${float(cost):.4f}"
    )
    out.print(f"query:  glaze sql \"SELECT * FROM glaze.records WHERE table_id = '{table_id}'\"")
    out.print(f"export: glaze export {table_id} --format csv -o {table_id}.csv")
