"""Sensors that keep `glaze.tables` true to the runs: failed and canceled runs, lost runs, lost run requests."""

from __future__ import annotations

import dagster as dg

from glaze_pipeline.core.intake.lifecycle import release_table
from glaze_pipeline.defs.jobs import ENRICH_TABLE_JOB
from glaze_pipeline.defs.lifecycle.runs import repair_tables, run_failure_reason, with_next_step
from glaze_pipeline.defs.resources import RuntimeResource


def _release(context: dg.RunStatusSensorContext, runtime: RuntimeResource) -> dg.SkipReason:
    run = context.dagster_run
    table_id = run.tags.get("dagster/partition")
    if run.job_name != ENRICH_TABLE_JOB or not table_id:
        return dg.SkipReason(f"run {run.run_id[:8]} is not a table run")
    reason = run_failure_reason(context.instance, run)
    with runtime.runtime.connection() as conn:
        released = release_table(conn, table_id, with_next_step(reason, table_id), run_id=run.run_id)
        conn.commit()
    return dg.SkipReason(f"table {table_id} marked failed: {reason}" if released else f"table {table_id} unchanged")


@dg.run_failure_sensor(name="table_run_failed", default_status=dg.DefaultSensorStatus.RUNNING)
def table_run_failed(context: dg.RunFailureSensorContext, runtime: RuntimeResource) -> dg.SkipReason:
    """A failed table run marks its table `failed`, with the failed step's error as the reason."""
    return _release(context, runtime)


@dg.run_status_sensor(
    name="table_run_canceled", run_status=dg.DagsterRunStatus.CANCELED, default_status=dg.DefaultSensorStatus.RUNNING
)
def table_run_canceled(context: dg.RunStatusSensorContext, runtime: RuntimeResource) -> dg.SkipReason:
    """A canceled table run marks its table `failed` ("canceled"), so the next `glaze enrich` can run it."""
    return _release(context, runtime)


@dg.sensor(name="lost_table_runs", minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def lost_table_runs(context: dg.SensorEvaluationContext, runtime: RuntimeResource) -> dg.SkipReason:
    """Tables whose run died (no heartbeat, process gone) become `failed`; lost run requests are made again."""
    rt = runtime.runtime
    with rt.connection() as conn:
        repairs = repair_tables(context.instance, conn, rt.settings.run_lost_after_s)
    for repair in repairs:
        context.log.warning(f"table {repair.table_id} {repair.action}: {repair.reason}")
    return dg.SkipReason(f"{len(repairs)} table(s) repaired" if repairs else "every running table is alive")
