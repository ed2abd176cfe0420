"""Run the table job for one table in this process, on the Dagster instance under GLAZE_HOME, so it shows in the UI."""

from __future__ import annotations

import dataclasses
import json
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
from glaze_pipeline.core.intake.lifecycle import ProcessIdentity
from glaze_pipeline.core.pipeline.estimate import StageEstimate, estimate_waterfall
from glaze_pipeline.core.pipeline.runtime import BudgetLimits, open_runtime
from glaze_pipeline.core.pipeline.waterfall import TableWork
from glaze_pipeline.defs.jobs import ENRICH_TABLE_JOB
from glaze_pipeline.defs.resources import TABLES, ProgressListener, ProgressResource, read_progress

_INSTANCE_YAML = """\
# Written by glaze: local Dagster instance (SQLite storage under this folder).
# Production uses dagster-postgres storage, see docker/dagster.yaml.
telemetry:
  enabled: false
# Runs that never start are failed; runs whose process died are found by glaze's lost_table_runs sensor.
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
# The requests sensor listens within its tick (GLAZE_REQUESTS_WAIT_S): sensors run side by side, and
# queued runs are dequeued every second (the shortest interval Dagster takes) and launched side by side,
# so an API request's run waits neither for a tick nor behind another run's launch.
sensors:
  use_threads: true
  num_workers: 4
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
    dequeue_use_threads: true
"""
_CLI_INSTANCE_YAML = """\
# Written by glaze: the instance in the folder above, as `glaze enrich` uses it for its in-process runs.
telemetry:
  enabled: false
storage:
  sqlite:
    base_dir: {base_dir}
compute_logs:
  module: dagster.core.storage.noop_compute_log_manager
  class: NoOpComputeLogManager
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


def cli_run_instance(settings: Settings) -> dg.DagsterInstance:
    """The same local instance (runs show in the UI), without capturing the process's stdout and stderr.

    Dagster's local compute-log capture points file descriptors 1 and 2 at a file and mirrors it back
    with `tail` helpers in our process group: a Ctrl-C kills the helpers, and the CLI's own last words
    (the interrupted table, what to do next) would go into that file instead of the terminal. The run's
    events and messages are in the instance either way.
    """
    dagster_instance(settings)  # creates the instance folder and its dagster.yaml on first use
    folder = settings.dagster_home / "cli-runs"
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "dagster.yaml"
    wanted = _CLI_INSTANCE_YAML.format(base_dir=json.dumps(str(settings.dagster_home)))
    if not config.exists() or config.read_text() != wanted:
        config.write_text(wanted)
    return dg.DagsterInstance.from_config(str(folder))


IN_PROGRESS = (
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
)


def partition_runs(instance: dg.DagsterInstance, table_id: str, *, going: bool = False) -> list[dg.DagsterRun]:
    """The runs of one table's partition (every job), newest first; with `going`, only those still in progress."""
    tags = {"dagster/partition": table_id}
    statuses = list(IN_PROGRESS) if going else None
    return list(instance.get_runs(filters=dg.RunsFilter(tags=tags, statuses=statuses)))


def runs_going(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return list(instance.get_runs(filters=dg.RunsFilter(statuses=list(IN_PROGRESS))))


def forget_partition(instance: dg.DagsterInstance, table_id: str) -> int:
    """Remove a table from Dagster: its partition, and its runs with their events (so its run keys are free)."""
    runs = partition_runs(instance, table_id)
    for run in runs:
        instance.delete_run(run.run_id)
    assert TABLES.name is not None
    if instance.has_dynamic_partition(TABLES.name, table_id):
        instance.delete_dynamic_partition(TABLES.name, table_id)
    return len(runs)


class RunWatch:
    """Follows a run from any process through the instance's event log: steps done, and each stage's rows."""

    def __init__(self, instance: dg.DagsterInstance, run_id: str) -> None:
        self.instance = instance
        self.run_id = run_id
        run = instance.get_run_by_id(run_id)
        snapshot_id = run.execution_plan_snapshot_id if run else None
        plan = instance.get_execution_plan_snapshot(snapshot_id) if snapshot_id else None
        self.total_steps = len(plan.steps) if plan else 0
        self.done_steps = 0
        self.stages: dict[str, tuple[int, int]] = {}
        self.cursor: str | None = None

    @property
    def steps(self) -> tuple[int, int]:
        return self.done_steps, self.total_steps

    def poll(self) -> bool:
        """Read what the run logged since the last poll; True once the run has ended."""
        ended = dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.STEP_SKIPPED
        page = self.instance.get_records_for_run(self.run_id, cursor=self.cursor)
        for record in page.records:
            entry = record.event_log_entry
            if entry.dagster_event is not None:
                self.done_steps += entry.dagster_event.event_type in ended
            elif (progress := read_progress(entry.user_message)) is not None:
                stage, done, total = progress
                self.stages[stage] = (done, total)
        self.cursor = page.cursor
        run = self.instance.get_run_by_id(self.run_id)
        return run is None or (run.status not in IN_PROGRESS and not page.has_more)


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    success: bool
    failure: str | None


class RunInterrupted(Exception):
    """Ctrl-C (or SIGTERM) stopped a run started here; the run is already marked failed in Dagster."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id} interrupted")
        self.run_id = run_id


def new_run_id() -> str:
    return str(uuid.uuid4())


OnMessage = Callable[[str], None]


def run_table(
    table_id: str,
    instance: dg.DagsterInstance,
    *,
    limits: BudgetLimits | None = None,
    on_progress: ProgressListener | None = None,
    on_message: OnMessage | None = None,
    poll_s: float = 0.3,
    run_id: str | None = None,
    refresh_fields: list[str] | None = None,
) -> RunOutcome:
    """Execute `enrich_table` for one partition in this process; watchers hear progress and messages as they come.

    `refresh_fields`: ask the providers again for just those fields, past the cache (`glaze refresh`).

    Ctrl-C marks the run failed in Dagster and raises RunInterrupted (see `_InProcessRun.watch`).
    """
    assert TABLES.name is not None
    instance.add_dynamic_partitions(TABLES.name, [table_id])
    budget = {k: v for k, v in vars(limits or BudgetLimits()).items() if v is not None}
    resources: dict[str, Any] = {"budget": {"config": budget}}
    if refresh_fields:
        resources["refresh"] = {"config": {"fields": refresh_fields}}
    run = _InProcessRun(
        ENRICH_TABLE_JOB,
        table_id,
        {"resources": resources},
        {"progress": ProgressResource.listening(on_progress)} if on_progress else None,
    )
    return run.watch(instance, on_message, poll_s, run_id=run_id)


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

    def watch(
        self, instance: dg.DagsterInstance, on_message: OnMessage | None, poll_s: float, run_id: str | None = None
    ) -> RunOutcome:
        """Run it, passing each of its own log messages to `on_message` as they come.

        Ctrl-C marks the run failed in Dagster and raises RunInterrupted; the worker is a daemon thread,
        so the process can end at once (Postgres rolls back whatever it was writing).
        """
        run_id = run_id or new_run_id()
        outcome: dict[str, object] = {}
        worker = threading.Thread(
            target=self._execute,
            args=(instance, run_id, outcome),
            name=f"glaze-run-{self.partition_key or self.job_name}",
            daemon=True,
        )
        worker.start()
        seen = 0
        try:
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
        except KeyboardInterrupt:
            run = instance.get_run_by_id(run_id)
            if run is not None and not run.is_finished:
                instance.report_run_failed(run, "interrupted by Ctrl-C (or SIGTERM) in the glaze command that ran it")
            raise RunInterrupted(run_id) from None
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
                tags={"glaze/launched_by": "cli", **ProcessIdentity.current().tags()},
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


def estimate_table(settings: Settings, table_id: str, refresh_fields: list[str] | None = None) -> list[StageEstimate]:
    """The dry run: free providers run, paid ones are only looked up in the cache and the ledger.

    With `refresh_fields`, the run a refresh would make: only those fields, every paid answer bought again.
    """
    with open_runtime(settings) as runtime:
        with runtime.connection() as conn:
            work = TableWork.load(conn, table_id)
        if refresh_fields:
            work = dataclasses.replace(work, run_fields=tuple(refresh_fields), fresh=True)
        return aio.run(estimate_waterfall(runtime, work))
