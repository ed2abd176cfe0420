"""Run the table job for one table in this process, on the Dagster instance under GLAZE_HOME, so it shows in the UI."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.utils import make_new_run_id

from glaze_pipeline.config import Settings
from glaze_pipeline.core.pipeline.estimate import StageEstimate
from glaze_pipeline.defs.ingest.sensors import ENRICH_TABLE_JOB
from glaze_pipeline.defs.resources import TABLES

_INSTANCE_YAML = """\
# Written by glaze: local Dagster instance (SQLite storage under this folder).
# Production uses dagster-postgres storage, see docker/dagster.yaml.
telemetry:
  enabled: false
"""


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


OnLog = Callable[[str], None]


def run_table(
    table_id: str,
    instance: dg.DagsterInstance,
    *,
    on_log: OnLog | None = None,
    poll_s: float = 0.3,
    resource_config: dict[str, float] | None = None,
) -> RunOutcome:
    """Execute `enrich_table` for one partition; `on_log` receives each run log message as it happens."""
    assert TABLES.name is not None
    instance.add_dynamic_partitions(TABLES.name, [table_id])
    run_config = {"resources": {"glaze": {"config": resource_config or {}}}}  # CLI budgets override GLAZE_MAX_COST_*
    return _run_job(ENRICH_TABLE_JOB, instance, table_id, run_config, on_log, poll_s)


def refresh_marts(instance: dg.DagsterInstance, *, on_log: OnLog | None = None, poll_s: float = 0.3) -> RunOutcome:
    """Execute `refresh_marts` (dbt build over every landed table) here, for commands that run without the daemon."""
    from glaze_pipeline.defs.dbt.definitions import REFRESH_MARTS_JOB

    return _run_job(REFRESH_MARTS_JOB, instance, None, {}, on_log, poll_s)


def _run_job(
    job_name: str,
    instance: dg.DagsterInstance,
    partition_key: str | None,
    run_config: dict[str, Any],
    on_log: OnLog | None,
    poll_s: float,
) -> RunOutcome:
    """Execute a job of the code location in this process, on `instance`, passing its log messages to `on_log`."""
    from glaze_pipeline.definitions import defs

    job = defs.resolve_job_def(job_name)
    run_id = make_new_run_id()
    outcome: dict[str, object] = {}

    def execute() -> None:
        try:
            result = job.execute_in_process(
                instance=instance,
                partition_key=partition_key,
                run_id=run_id,
                raise_on_error=False,
                tags={"glaze/launched_by": "cli"},
                # The terminal shows progress from `on_log`; the full log is in the instance (UI).
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}} | run_config,
            )
            outcome["success"] = result.success
            if not result.success:
                failures = [e.message for e in result.all_events if e.is_failure and e.message]
                outcome["failure"] = failures[-1] if failures else "run failed"
        except Exception as exc:  # surfaced to the caller with the run id
            outcome["success"] = False
            outcome["failure"] = f"{type(exc).__name__}: {exc}"

    worker = threading.Thread(target=execute, name=f"glaze-run-{partition_key or job_name}")
    worker.start()
    seen = 0
    while True:
        worker.join(poll_s)
        if on_log is not None:
            records = instance.all_logs(run_id)
            for record in records[seen:]:
                if record.user_message:
                    on_log(record.user_message)
            seen = len(records)
        if not worker.is_alive():
            break
    return RunOutcome(run_id, bool(outcome.get("success")), outcome.get("failure"))  # type: ignore[arg-type]


def estimate_table(settings: Settings, table_id: str) -> list[StageEstimate]:
    """The dry run: free providers run, paid ones are only looked up in the cache and the ledger."""
    from datetime import UTC

    from glaze_pipeline.core import aio
    from glaze_pipeline.core.intake.tables import load_source_rows, table_info
    from glaze_pipeline.core.pipeline.estimate import estimate_waterfall
    from glaze_pipeline.core.pipeline.gaps import hint_candidates
    from glaze_pipeline.core.providers.registry import build_provider
    from glaze_pipeline.core.storage import db, services
    from glaze_pipeline.core.storage.cache import connect_cache
    from glaze_pipeline.core.storage.ledger import Ledger

    url = services.ensure_database(settings)
    with db.connect(url) as conn:
        info = table_info(conn, table_id)
        rows = load_source_rows(conn, info)
    try:
        redis_url: str | None = services.ensure_redis(settings)
    except services.ServiceError:
        redis_url = None
    s = settings
    cache = connect_cache(redis_url, prefix=s.redis_prefix, ttl_s=s.cache_ttl_s, negative_ttl_s=s.negative_cache_ttl_s)
    providers = [build_provider(name, s, redis_url=redis_url, database_url=url) for name in s.waterfall_order]
    ledger = Ledger(url, run_id="dry-run", table_id=table_id)
    try:
        return aio.run(
            estimate_waterfall(
                rows,
                info.wanted_fields,
                hint_candidates(rows, info.hint_fields, info.created_at.astimezone(UTC)),
                providers,
                cache,
                ledger,
                min_confidence=s.min_confidence,
                ttl_s=s.cache_ttl_s,
                negative_ttl_s=s.negative_cache_ttl_s,
            )
        )
    finally:
        ledger.close()
