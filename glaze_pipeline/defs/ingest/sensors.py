"""`new_tables_sensor`: inbox files and tables registered by `glaze upload` become partitions and runs."""

import dagster as dg

from glaze_pipeline.core.intake.lifecycle import queue_table
from glaze_pipeline.core.intake.tables import pending_tables
from glaze_pipeline.core.intake.uploads import file_away, inbox_files, upload_file
from glaze_pipeline.defs.jobs import ENRICH_TABLE_JOB
from glaze_pipeline.defs.resources import TABLES, RuntimeResource
from glaze_pipeline.errors import UserFacingError


@dg.sensor(job_name=ENRICH_TABLE_JOB, minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING)
def new_tables_sensor(context: dg.SensorEvaluationContext, runtime: RuntimeResource) -> dg.SensorResult:
    """Register inbox files, then add a partition and request one run per pending table (run_key = table id)."""
    rt = runtime.runtime
    inbox = rt.settings.inbox
    with rt.connection() as conn:
        for path in inbox_files(inbox):
            try:
                uploaded = upload_file(conn, path)
            except UserFacingError as exc:
                conn.rollback()
                file_away(path, inbox, "failed", str(exc))
                context.log.warning(f"inbox file {path.name} refused: {exc}")
                continue
            conn.commit()
            file_away(path, inbox, "done")
            c = uploaded.counts
            context.log.info(
                f"inbox file {path.name} -> table {uploaded.table_id}: {c.rows_in} rows in = {c.accepted} accepted"
                f" + {c.rejected} rejected + {c.duplicates} duplicates"
            )
        # Only a table still `pending` is queued: one that `glaze enrich` claimed meanwhile is its run's alone.
        pending = [table_id for table_id in pending_tables(conn) if queue_table(conn, table_id)]
    if not pending:
        return dg.SensorResult(skip_reason="no new tables")
    return dg.SensorResult(
        dynamic_partitions_requests=[TABLES.build_add_request(pending)],
        run_requests=[dg.RunRequest(partition_key=t, run_key=f"table:{t}") for t in pending],
    )
