"""The Dagster side of the table lifecycle: match tables still `running`/`queued` with the runs behind them.

Called by the sensors here and at the start of `glaze enrich`, `glaze tables` and `glaze dev`, so a run
killed with SIGKILL (or a crashed daemon) is noticed the next time anything looks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dagster as dg
import psycopg

from glaze_pipeline.core.intake.lifecycle import (
    ProcessIdentity,
    TableRun,
    active_tables,
    release_table,
    requeue_table,
)
from glaze_pipeline.core.intake.tables import TableStatus
from glaze_pipeline.defs.jobs import ENRICH_TABLE_JOB

IN_PROGRESS = frozenset({dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING})
WAITING = frozenset({dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED})
ENDED_BADLY = frozenset({dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED})


@dataclass(frozen=True)
class Repair:
    table_id: str
    action: str  # "failed" or "requeued"
    reason: str


def repair_tables(instance: dg.DagsterInstance, conn: psycopg.Connection, lost_after_s: float) -> list[Repair]:
    """Release tables whose run ended or died, requeue tables whose run request was lost; commit; say what changed."""
    repairs: list[Repair] = []
    for table in active_tables(conn):
        if table.status == TableStatus.RUNNING:
            repair = _repair_running(instance, conn, table, lost_after_s)
        else:
            repair = _repair_queued(instance, conn, table, lost_after_s)
        if repair is not None:
            repairs.append(repair)
    conn.commit()
    return repairs


def _repair_running(
    instance: dg.DagsterInstance, conn: psycopg.Connection, table: TableRun, lost_after_s: float
) -> Repair | None:
    run = instance.get_run_by_id(table.run_id) if table.run_id else None
    reason: str | None
    if run is not None and run.status in ENDED_BADLY:
        reason = run_failure_reason(instance, run)
    elif run is not None and run.status in (IN_PROGRESS | WAITING):
        reason = _lost_reason(run, table, lost_after_s)
        if reason is not None:
            instance.report_run_failed(run, reason)  # the UI shows the run failed, with this sentence
    elif run is None and table.seconds_quiet > lost_after_s:
        reason = f"interrupted: no sign of life from its run for {table.seconds_quiet:.0f} s"
    else:
        return None
    if reason is None or not release_table(conn, table.table_id, with_next_step(reason, table.table_id)):
        return None
    return Repair(table.table_id, TableStatus.FAILED, reason)


def _lost_reason(run: dg.DagsterRun, table: TableRun, lost_after_s: float) -> str | None:
    """Why this in-progress run is surely dead, or None while it may still be working."""
    identity = ProcessIdentity.from_tags(dict(run.tags))
    gone = identity.is_gone() if identity is not None else None
    if gone:
        assert identity is not None
        return f"interrupted: run {run.run_id[:8]} stopped without finishing (its process {identity.pid} is gone)"
    if gone is None and table.seconds_quiet > lost_after_s:
        return f"interrupted: run {run.run_id[:8]} gave no sign of life for {table.seconds_quiet:.0f} s"
    return None


def _repair_queued(
    instance: dg.DagsterInstance, conn: psycopg.Connection, table: TableRun, lost_after_s: float
) -> Repair | None:
    records = instance.get_run_records(
        dg.RunsFilter(job_name=ENRICH_TABLE_JOB, tags={"dagster/partition": table.table_id}), limit=1
    )
    newest = records[0] if records else None
    requested = newest is not None and newest.create_timestamp.timestamp() >= table.updated_at.timestamp() - 5
    if requested and newest is not None and newest.dagster_run.status in ENDED_BADLY:
        reason = run_failure_reason(instance, newest.dagster_run)
        if release_table(conn, table.table_id, with_next_step(reason, table.table_id)):
            return Repair(table.table_id, TableStatus.FAILED, reason)
        return None
    if not requested and table.seconds_quiet > lost_after_s and requeue_table(conn, table.table_id):
        return Repair(table.table_id, "requeued", "its run request never reached Dagster")
    return None


def run_failure_reason(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    """One line on why a run ended badly: the first failed step's error, else the run's own message."""
    if run.status == dg.DagsterRunStatus.CANCELED:
        return f"run {run.run_id[:8]} was canceled"
    for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        event = record.dagster_event
        error = getattr(event.event_specific_data, "error", None) if event else None
        if error is not None and event is not None:
            return f"run {run.run_id[:8]} failed in {event.step_key}: {_step_error(error)}"
    failures = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    message = failures[-1].message if failures else "no reason recorded"
    return f"run {run.run_id[:8]} failed: {_first_line(message)}"


def _step_error(error: Any) -> str:
    """The step's own error; for a step that used up its retries, the error it kept raising (Dagster's
    failure then says only "Exceeded max_retries of 2" and keeps the error as its cause)."""
    said = _first_line(error.message)
    if not said.startswith("Exceeded max_retries") or error.cause is None:
        return said
    root = error
    while root.cause is not None:
        root = root.cause
    return f"{_first_line(root.message)} ({said[0].lower()}{said[1:]})"


def with_next_step(reason: str, table_id: str) -> str:
    return f"{reason}; run it again with `glaze enrich {table_id}`"


def _first_line(text: str | None) -> str:
    return (str(text or "").strip().splitlines() or ["no message"])[0][:500]
