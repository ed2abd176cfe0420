"""Run the table job for one table in this process, on the Dagster instance under GLAZE_HOME, so it shows in the UI."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from glaze_pipeline.config import Settings
from glaze_pipeline.core import aio
from glaze_pipeline.core.pipeline.estimate import StageEstimate, estimate_waterfall
from glaze_pipeline.core.pipeline.runtime import BudgetLimits, open_runtime
from glaze_pipeline.core.pipeline.waterfall import TableWork
from glaze_pipeline.defs.jobs import ENRICH_TABLE_JOB
from glaze_pipeline.defs.resources import TABLES, ProgressListener, ProgressResource

_INSTANCE_YAML = """\
# Written by glaze: local Dagster instance (SQLite storage under this folder).
# Production uses dagster-postgres storage, see docker/dagster.yaml.
telemetry:
  enabled: false
"""
# Dagster's own step events: the terminal shows our messages and progress; the UI keeps everything.
DAGSTER_CHATTER = (
    "Started",
    "Starting",
    "Finished",
    "Executing",
    "Loaded",
    "Writing",
    "Retrieving",
    "Capturing",
    "Yielded",
    "Got input",
    "Materialized",
    "Handled output",
)


def dagster_instance(settings: Settings) -> dg.DagsterInstance:
    """The persistent local instance that `glaze dev` (the UI) also uses."""
    home: Path = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(_INSTANCE_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    success: bool
    failure: str | None


OnMessage = Callable[[str], None]


def run_table(
    table_id: str,
    instance: dg.DagsterInstance,
    *,
    limits: BudgetLimits | None = None,
    on_progress: ProgressListener | None = None,
    on_message: OnMessage | None = None,
    poll_s: float = 0.3,
) -> RunOutcome:
    """Execute `enrich_table` for one partition in this process; watchers hear progress and messages as they come."""
    assert TABLES.name is not None
    instance.add_dynamic_partitions(TABLES.name, [table_id])
    run_id = str(uuid.uuid4())
    outcome: dict[str, object] = {}
    worker = threading.Thread(
        target=_execute, args=(table_id, instance, run_id, limits, on_progress, outcome), name=f"glaze-run-{table_id}"
    )
    worker.start()
    seen = 0
    while True:
        worker.join(poll_s)
        if on_message is not None:
            records = instance.all_logs(run_id)
            for record in records[seen:]:
                if record.user_message and not record.user_message.startswith(DAGSTER_CHATTER):
                    on_message(record.user_message)
            seen = len(records)
        if not worker.is_alive():
            break
    return RunOutcome(run_id, bool(outcome.get("success")), outcome.get("failure"))  # type: ignore[arg-type]


def _execute(
    table_id: str,
    instance: dg.DagsterInstance,
    run_id: str,
    limits: BudgetLimits | None,
    on_progress: ProgressListener | None,
    outcome: dict[str, object],
) -> None:
    from glaze_pipeline.definitions import defs

    job = defs.resolve_job_def(ENRICH_TABLE_JOB)
    budget = {k: v for k, v in vars(limits or BudgetLimits()).items() if v is not None}
    try:
        result = job.execute_in_process(
            instance=instance,
            partition_key=table_id,
            run_id=run_id,
            raise_on_error=False,
            tags={"glaze/launched_by": "cli"},
            # The terminal shows progress and our messages; the full log is in the instance (UI).
            run_config={
                "loggers": {"console": {"config": {"log_level": "WARNING"}}},
                "resources": {"budget": {"config": budget}},
            },
            resources={"progress": ProgressResource.listening(on_progress)} if on_progress else None,
        )
        outcome["success"] = result.success
        if not result.success:
            failures = [e.message for e in result.all_events if e.is_failure and e.message]
            outcome["failure"] = failures[-1] if failures else "run failed"
    except Exception as exc:  # surfaced to the caller with the run id
        outcome["success"] = False
        outcome["failure"] = f"{type(exc).__name__}: {exc}"


def estimate_table(settings: Settings, table_id: str) -> list[StageEstimate]:
    """The dry run: free providers run, paid ones are only looked up in the cache and the ledger."""
    with open_runtime(settings) as runtime:
        with runtime.connection() as conn:
            work = TableWork.load(conn, table_id)
        return aio.run(estimate_waterfall(runtime, work))
