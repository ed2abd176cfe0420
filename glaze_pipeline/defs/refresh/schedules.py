"""`refresh_stale_values`: on a cron (GLAZE_REFRESH_CRON, daily), one targeted run per table with stale values."""

from typing import Any

import dagster as dg

from glaze_pipeline.config import settings
from glaze_pipeline.core.intake.tables import accepted_rows
from glaze_pipeline.core.pipeline.refresh import StaleTable, stale_tables
from glaze_pipeline.defs.execution import execution_for
from glaze_pipeline.defs.jobs import enrich_table
from glaze_pipeline.defs.resources import RuntimeResource

REFRESH_SCHEDULE = "refresh_stale_values"


def refresh_request(stale: StaleTable, run_key: str | None, execution: dict[str, Any]) -> dg.RunRequest:
    """An enrich_table run for one table that asks only for its stale fields, past the cache.

    A table with landed values has its partition already: the sensor, `glaze enrich` or the API made it.
    """
    return dg.RunRequest(
        partition_key=stale.table_id,
        run_key=run_key,
        run_config={"resources": {"refresh": {"config": {"fields": list(stale.fields)}}}, "execution": execution},
        tags={"glaze/refresh": ",".join(stale.fields)[:200]},
    )


def build_refresh_schedule(cron: str) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=REFRESH_SCHEDULE,
        cron_schedule=cron,
        job=enrich_table,
        default_status=dg.DefaultScheduleStatus.STOPPED,  # it spends money on paid providers: turned on by a person
        description="Ask again for values older than GLAZE_REFRESH_AFTER_DAYS (or their GLAZE_REFRESH_AFTER entry).",
    )
    def refresh_stale_values(context: dg.ScheduleEvaluationContext, runtime: RuntimeResource) -> dg.SkipReason | list:
        rt = runtime.runtime
        with rt.connection() as conn:
            stale = stale_tables(conn, rt.settings.refresh)
            sizes = accepted_rows(conn, [t.table_id for t in stale])
        if not stale:
            return dg.SkipReason("no stale values")
        tick = context.scheduled_execution_time.strftime("%Y%m%dT%H%M")
        for table in stale:
            context.log.info(f"table {table.table_id}: {table.values} stale values of {', '.join(table.fields)}")
        limit = rt.settings.in_process_max_rows
        return [
            refresh_request(t, f"refresh:{t.table_id}:{tick}", execution_for(sizes.get(t.table_id, 0), limit))
            for t in stale
        ]

    return refresh_stale_values


@dg.definitions
def defs() -> dg.Definitions:
    """The cron is read when the code location loads (reload it after changing GLAZE_REFRESH_CRON)."""
    return dg.Definitions(schedules=[build_refresh_schedule(settings().refresh.cron)])
