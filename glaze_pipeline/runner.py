"""Run the table job for one table in this process, on the Dagster instance under GLAZE_HOME, so it shows in the UI."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
# The requests sensor listens within its tick (GLAZE_REQUESTS_WAIT_S): sensors run side by side, and
# queued runs start within a second, so an API request waits for neither.
sensors:
  use_threads: true
  num_workers: 4
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
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
    budget = {k: v for k, v in vars(limits or BudgetLimits()).items() if v is not None}
    run = _InProcessRun(
        ENRICH_TABLE_JOB,
        table_id,
        {"resources": {"budget": {"config": budget}}},
        {"progress": ProgressResource.listening(on_progress)} if on_progress else None,
    )
    return run.watch(instance, on_message, poll_s)


def refresh_marts(
    instance: dg.DagsterInstance, *, on_message: OnMessage | None = None, poll_s: float = 0.3
) -> RunOutcome:
    """Execute `refresh_marts` (dbt build over every landed table) here, for commands that run without the daemon."""
    from glaze_pipeline.defs.dbt.definitions import REFRESH_MARTS_JOB

    return _InProcessRun(REFRESH_MARTS_JOB).watch(instance, on_message, poll_s)


@dataclass(frozen=True)
class _InProcessRun:
    """One job of the code location, executed in a thread of this process on a persistent instance."""

    job_name: str
    partition_key: str | None = None
    run_config: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, Any] | None = None

    def watch(self, instance: dg.DagsterInstance, on_message: OnMessage | None, poll_s: float) -> RunOutcome:
        """Run it, passing each of its own log messages to `on_message` as they come."""
        run_id = str(uuid.uuid4())
        outcome: dict[str, object] = {}
        worker = threading.Thread(
            target=self._execute,
            args=(instance, run_id, outcome),
            name=f"glaze-run-{self.partition_key or self.job_name}",
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

    def _execute(self, instance: dg.DagsterInstance, run_id: str, outcome: dict[str, object]) -> None:
        from glaze_pipeline.definitions import defs

        job = defs.resolve_job_def(self.job_name)
        try:
            result = job.execute_in_process(
                instance=instance,
                partition_key=self.partition_key,
                run_id=run_id,
                raise_on_error=False,
                tags={"glaze/launched_by": "cli"},
                # The terminal shows progress and our messages; the full log is in the instance (UI).
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}} | self.run_config,
                resources=self.resources,
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
