"""Where a table's run is: its status and steps done, read from the Dagster instance the runs live in."""

from __future__ import annotations

import logging
from typing import Any

from glaze_pipeline.config import Settings

log = logging.getLogger(__name__)


class RunLookup:
    """Opens the Dagster instance (GLAZE_HOME/dagster, or DAGSTER_HOME) on first use; None when it cannot."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._instance: Any = None
        self._failed = False

    def url(self, run_id: str | None) -> str | None:
        return f"{self.settings.api.dagster_url}/runs/{run_id}" if run_id else None

    def _open(self) -> Any:
        if self._instance is None and not self._failed:
            try:
                import dagster as dg

                from glaze_pipeline.runner import dagster_instance

                try:  # a deployment's instance (DAGSTER_HOME, e.g. Postgres storage in docker-compose)…
                    self._instance = dg.DagsterInstance.get()
                except dg.DagsterInvariantViolationError:  # …else the local one `glaze dev` uses
                    self._instance = dagster_instance(self.settings)
            except Exception as exc:  # progress is a nicety: the API answers without it
                log.warning("Dagster instance unavailable for run progress: %s", exc)
                self._failed = True
        return self._instance

    def progress(self, run_id: str | None) -> dict[str, Any] | None:
        instance = self._open() if run_id else None
        if instance is None:
            return None
        run = instance.get_run_by_id(run_id)
        if run is None:
            return None
        stats = instance.get_run_step_stats(run_id)
        done = sum(1 for s in stats if s.status is not None and s.status.value in ("SUCCESS", "SKIPPED"))
        total = len(run.step_keys_to_execute or ()) or len(stats)
        if run.execution_plan_snapshot_id and not run.step_keys_to_execute:
            plan = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
            total = len(plan.step_keys_to_execute) or total
        return {"run_status": run.status.value, "steps_done": done, "steps_total": max(total, done)}
