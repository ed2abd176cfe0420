"""Dagster resources, one concern each: the run's runtime, its budget, progress reporting, and stage files."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import polars as pl
from pydantic import PrivateAttr, field_validator

from glaze_pipeline import logs
from glaze_pipeline.config import dollars, settings
from glaze_pipeline.core.pipeline.runtime import BudgetLimits, Runtime, connect_runtime

if TYPE_CHECKING:  # table runs only: the record location (single-record runs) does not import them
    from glaze_pipeline.core.intake.lifecycle import Heartbeat

TABLES = dg.DynamicPartitionsDefinition(name="tables")
PROGRESS_EVERY_S = 2.0

StageProgress = Callable[[int, int], None]  # (done, total)
ProgressListener = Callable[[str, int, int], None]  # (stage, done, total)
_PROGRESS_LINE = re.compile(r"^(?P<stage>[a-z0-9_]+): (?P<done>\d+)/(?P<total>\d+) rows$")


def progress_line(stage: str, done: int, total: int) -> str:
    """The run-log line a stage's progress is written as; `glaze status` reads it back from another process."""
    return f"{stage}: {done}/{total} rows"


def read_progress(message: str) -> tuple[str, int, int] | None:
    """(stage, done, total) from a line `progress_line` wrote, or None for any other message."""
    match = _PROGRESS_LINE.match(message)
    return (match["stage"], int(match["done"]), int(match["total"])) if match else None


class RuntimeResource(dg.ConfigurableResource):
    """What a run needs from the environment, opened per run by `core.pipeline.runtime` and closed after it.

    Configuration is read when the run starts, never at import, so a long-lived code server sees
    changes between runs.
    """

    _runtime: Runtime | None = PrivateAttr(default=None)
    _heartbeat: Heartbeat | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        s = settings()
        logs.configure("run" if context.dagster_run else "sensor", s)
        self._runtime = connect_runtime(s)
        run = context.dagster_run
        table_id = run.tags.get("dagster/partition") if run is not None else None
        if run is not None and table_id:  # while this process works on the table, it says so (lost-run check)
            from glaze_pipeline.core.intake.lifecycle import Heartbeat

            every_s = self._runtime.settings.run_lost_after_s / 6
            self._heartbeat = Heartbeat(self._runtime.database_url, table_id, run.run_id, every_s)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:  # used outside a run (a direct call in a test): open lazily
            s = settings()
            logs.configure("sensor", s)
            self._runtime = connect_runtime(s)
        return self._runtime


class BudgetResource(dg.ConfigurableResource):
    """A run's spending limits; unset means GLAZE_MAX_COST_USD / GLAZE_MAX_COST_PER_ROW_USD.

    Run config overrides them (`resources: {budget: {config: {max_cost_usd: 5}}}`), which
    `glaze enrich --max-cost` sets.
    """

    max_cost_usd: float | None = None
    max_cost_per_row_usd: float | None = None

    @field_validator("max_cost_usd", "max_cost_per_row_usd")
    @classmethod
    def _finite(cls, value: float | None, info: object) -> float | None:
        """A NaN or negative budget in run config fails the run before any step starts, not per call."""
        return None if value is None else dollars(str(getattr(info, "field_name", "budget")), value)

    @property
    def limits(self) -> BudgetLimits:
        return BudgetLimits(self.max_cost_usd, self.max_cost_per_row_usd)


class ProgressResource(dg.ConfigurableResource):
    """Progress of long stages: a line in the run log every few seconds, and a listener when one is attached.

    `glaze enrich` runs the job in its own process and attaches a listener that draws progress bars.
    """

    _listener: ProgressListener | None = PrivateAttr(default=None)

    @classmethod
    def listening(cls, listener: ProgressListener) -> ProgressResource:
        resource = cls()
        resource._listener = listener
        return resource

    def for_stage(self, log: dg.DagsterLogManager, stage: str) -> StageProgress:
        last = [0.0]
        listener = self._listener

        def report(done: int, total: int) -> None:
            if listener is not None:
                listener(stage, done, total)
            now = time.monotonic()
            if done == total or now - last[0] >= PROGRESS_EVERY_S:
                last[0] = now
                log.info(progress_line(stage, done, total))

        return report


class StageIOManager(dg.ConfigurableIOManager):
    """Stage frames as Parquet, one file per asset and partition, under GLAZE_HOME/stages (DuckDB reads them)."""

    base_dir: str | None = None

    def _path(self, key: dg.AssetKey, partition: str | None) -> Path:
        base = Path(self.base_dir) if self.base_dir else settings().stages
        return base.joinpath(*key.path) / f"{partition or '_unpartitioned'}.parquet"

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame | None) -> None:
        if obj is None:
            return
        path = self._path(context.asset_key, context.partition_key if context.has_partition_key else None)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".parquet.partial")
        obj.write_parquet(partial)
        partial.replace(path)  # readers never see half a file
        context.add_output_metadata({"path": str(path), "rows": obj.height})

    def load_input(self, context: dg.InputContext) -> pl.DataFrame:
        path = self._path(context.asset_key, context.partition_key if context.has_partition_key else None)
        return pl.read_parquet(path)


@dg.logger(
    config_schema={"log_level": dg.Field(str, is_required=False, default_value="INFO")},
    description="A run's log as JSON lines on stderr (service, timestamp, level, message, table, run, step), "
    "secrets masked; the UI keeps the full event log.",
)
def json_console(init_context: dg.InitLoggerContext) -> logging.Logger:
    """Replaces Dagster's coloured console logger, so a run's lines look like every other glaze log line."""
    logs.configure("run", settings())
    logger = logging.getLogger("glaze.run")
    logger.setLevel(str(init_context.logger_config["log_level"]).upper())
    return logger


def resources() -> dict[str, object]:
    """Every resource the code location binds; tests and the CLI override single entries."""
    from glaze_pipeline.defs.refresh.resources import RefreshResource

    return {
        "runtime": RuntimeResource(),
        "budget": BudgetResource(),
        "progress": ProgressResource(),
        "io_manager": StageIOManager(),
        "refresh": RefreshResource(),
    }


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(resources=resources(), loggers={"console": json_console})
