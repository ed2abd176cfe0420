"""What glaze shows in a terminal: tables of rows, a table run with progress bars, and its summary.

The CLI and the demo both print through here, so neither imports the other.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

import psycopg
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Column, Table
from rich.text import Text

from glaze_pipeline.config import Settings
from glaze_pipeline.core.intake.lifecycle import claim_table, release_table
from glaze_pipeline.core.intake.tables import TableInfo, table_info
from glaze_pipeline.core.pipeline.coverage import configured_providers, field_coverage
from glaze_pipeline.core.pipeline.report import TableReport, table_report
from glaze_pipeline.core.pipeline.runtime import BudgetLimits, open_database
from glaze_pipeline.core.pipeline.waterfall import TableWork
from glaze_pipeline.core.storage import db
from glaze_pipeline.errors import UserFacingError

ProgressListener = Callable[[str, int, int], None]  # (stage, done, total), as the progress resource calls it

if TYPE_CHECKING:
    import dagster as dg

    from glaze_pipeline.runner import RunOutcome

# Piped output (CI logs, `| less`) gets a wide fixed width instead of rich's 80 columns.
_WIDTH = None if Console().is_terminal else 200
console = Console(stderr=True, width=_WIDTH)  # progress, messages
out = Console(width=_WIDTH)  # results


@contextmanager
def database(s: Settings, *, create: bool = True) -> Iterator[psycopg.Connection]:
    """A connection to the migrated database (the embedded server is started when needed).

    `create=False` for commands that only read: with no database under GLAZE_HOME they say where they
    looked instead of starting a new, empty one.
    """
    with db.connect(open_database(s, create=create)) as conn:
        yield conn


def cell_text(value: object) -> Text:
    """A value as the user wrote it: JSON as JSON, and never read as markup (cells hold scraped text)."""
    if value is None:
        return Text("")
    if isinstance(value, dict | list):
        return Text(json.dumps(value, ensure_ascii=False, default=str))
    return Text(str(value))


def print_rows(columns: Sequence[str], rows: Sequence[Sequence[object]], limit: int = 200) -> None:
    table = Table(*(Column(Text(c)) for c in columns))
    for row in rows[: max(limit, 0)]:
        table.add_row(*(cell_text(v) for v in row))
    out.print(table)
    if len(rows) > limit:
        out.print(f"… {len(rows) - max(limit, 0)} more rows")


class RunFailed(UserFacingError):
    """A table run ended in failure; the message names the run so the user can open it in the UI."""


def _bars() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _listener(progress: Progress) -> ProgressListener:
    tasks: dict[str, TaskID] = {}

    def on_progress(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(stage, total=total)
        progress.update(tasks[stage], completed=done, total=total)

    return on_progress


def coverage_notes(s: Settings, table_id: str, *, asked_only: bool = False) -> dict[str, str]:
    """Wanted fields no configured provider can fill (or that fit no row), with the sentence that says why."""
    with database(s, create=False) as conn:
        work = TableWork.load(conn, table_id)
    entity_types = work.rows["entity_type"].unique().to_list()
    fields = work.asked if asked_only else work.wanted
    coverage = field_coverage(configured_providers(s), fields, entity_types, set(work.hints["field"].to_list()))
    return {c.field: c.why for c in coverage if c.why}


def coverage_before_run(s: Settings, table_id: str) -> dict[str, str]:
    """Say, before anything runs, which fields this run asks for that no configured provider can fill."""
    notes = coverage_notes(s, table_id, asked_only=True)
    for field, why in notes.items():
        console.print(f"[yellow]note[/] {field}: {why}")
    return notes


class RunStopped(UserFacingError):
    """Ctrl-C or SIGTERM stopped the run; the table is marked failed, and the exit code is 130."""

    exit_code = 130


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a service manager, `kill`) ends a run the way Ctrl-C does, so the table is released either way."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def claim_table_run(conn: psycopg.Connection, table_id: str) -> str:
    """A new run id that now holds the table (committed), or TableBusy when another run holds it."""
    from glaze_pipeline.runner import new_run_id

    run_id = new_run_id()
    claim_table(conn, table_id, run_id)
    conn.commit()
    return run_id


def enrich_table(
    s: Settings,
    table_id: str,
    limits: BudgetLimits | None = None,
    *,
    refresh_marts: bool = True,
    run_id: str | None = None,
) -> None:
    """Run one table now, in this process, with a progress bar per stage; print what it filled and cost; refresh
    the marts. The run's warnings reach the terminal once, as log lines; the bars and the summary are the rest.
    `run_id` is the run that already holds the table (`claim_table_run`); without it the table is claimed here.
    """
    from glaze_pipeline.runner import RunInterrupted, cli_run_instance

    if run_id is None:
        with database(s) as conn:
            run_id = claim_table_run(conn, table_id)
    try:
        notes = coverage_before_run(s, table_id)
        instance = cli_run_instance(s)
        with _sigterm_as_interrupt():
            outcome = _run_with_progress(table_id, instance, limits, run_id)
    except RunInterrupted as exc:
        reason = f"interrupted: run {exc.run_id[:8]} was stopped by Ctrl-C; run it again with `glaze enrich {table_id}`"
        _release(s, table_id, run_id, reason)
        raise RunStopped(
            f"stopped: table {table_id} is marked failed (run {exc.run_id[:8]}); run it again with "
            f"`glaze enrich {table_id}` (answers already paid for are not paid again)"
        ) from exc
    except BaseException:  # nothing ran, or a bug: the table must not stay held by a run that never was
        _release(s, table_id, run_id, f"run {run_id[:8]} did not start; run it again with `glaze enrich {table_id}`")
        raise
    if not outcome.success:
        _release(s, table_id, run_id, f"run {outcome.run_id[:8]} failed: {outcome.failure}")
        raise RunFailed(f"run {outcome.run_id} failed: {outcome.failure}\n  details: glaze dev, then open the run")
    print_summary(s, table_id, outcome.run_id, notes)
    if refresh_marts:
        refresh_marts_now(s)


def _release(s: Settings, table_id: str, run_id: str, reason: str) -> None:
    """Mark the table failed, unless another run holds it by now (its status is that run's to set)."""
    with database(s) as conn:
        release_table(conn, table_id, reason, run_id=run_id)
        conn.commit()


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


def _run_with_progress(
    table_id: str, instance: dg.DagsterInstance, limits: BudgetLimits | None, run_id: str
) -> RunOutcome:
    from glaze_pipeline.runner import run_table

    with _bars() as progress:  # the run's own words reach the terminal as log lines, once
        return run_table(table_id, instance, limits=limits, on_progress=_listener(progress), run_id=run_id)


def print_summary(s: Settings, table_id: str, run_id: str | None, notes: dict[str, str] | None = None) -> None:
    """The table's picture (coverage by field, cost by provider), then how to query and export it."""
    with database(s, create=False) as conn:
        info = table_info(conn, table_id)
        prices = {p.name: p.price_usd for p in configured_providers(s)}
        report = table_report(conn, table_id, prices, notes)
    print_report(report, info, run_id)
    out.print(f"query:  glaze sql \"SELECT * FROM glaze.records WHERE table_id = '{table_id}'\"")
    out.print(f"export: glaze export {table_id} --format csv -o {table_id}_enriched.csv  (--explain: why each cell)")


def print_report(report: TableReport, info: TableInfo, run_id: str | None = None) -> None:
    title = f"table {report.table_id} · {report.status}" + (f" · run {run_id[:8]}" if run_id else "")
    fields = Table("field", "filled", "of", "%", "why the rest is empty", title=title)
    for f in report.fields:
        why = "; ".join(x for x in (f.why_empty(), f.note) if x)
        fields.add_row(f.field, str(f.filled), str(f.rows), f"{f.percent:.0f}", why)
    out.print(fields)
    costs = Table("provider", "calls", "paid calls", "cost (USD)", title="cost by provider (the ledger)")
    for p in report.providers:
        calls = "free" if p.free else str(p.calls)
        costs.add_row(p.provider, calls, "" if p.free else str(p.paid_calls), f"{p.cost_usd:.4f}")
    costs.add_row("total", "", "", f"{report.cost_usd:.4f}")
    out.print(costs)
    rows = ", ".join(f"{status} {n}" for status, n in sorted(report.row_statuses.items()))
    out.print(
        f"rows in {info.rows_in} = {info.accepted} accepted + {info.rejected} rejected + "
        f"{info.duplicates} duplicates · entities {report.entities}: {rows or 'none enriched yet'}"
    )


def follow_run(s: Settings, table_id: str, poll_s: float = 1.0) -> str | None:
    """While a run of the table is going (in any process), draw its progress; returns the run's id, if any."""
    from glaze_pipeline.runner import RunWatch, dagster_instance, partition_runs

    instance = dagster_instance(s)
    going = partition_runs(instance, table_id, going=True)
    if not going:
        return None
    watch = RunWatch(instance, going[0].run_id)
    console.print(f"run {watch.run_id[:8]} of table {table_id} is going; following it (Ctrl-C stops watching)")
    with _bars() as progress:
        listener = _listener(progress)
        while not watch.poll():
            listener("steps", *watch.steps)
            for stage, (done, total) in watch.stages.items():
                listener(stage, done, total)
            time.sleep(poll_s)
    return watch.run_id
