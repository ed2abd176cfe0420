"""`new_tables_sensor`: inbox files become `register_table` runs; registered tables become partitions and runs."""

import dagster as dg

from glaze_pipeline.config import Settings
from glaze_pipeline.core.intake.lifecycle import queue_table
from glaze_pipeline.core.intake.tables import accepted_rows, pending_tables
from glaze_pipeline.core.intake.uploads import content_hash, inbox_files
from glaze_pipeline.defs.execution import chunked_execution, execution_for
from glaze_pipeline.defs.ingest.jobs import REGISTER_TABLE_JOB, register_table
from glaze_pipeline.defs.jobs import ENRICH_TABLE_JOB, enrich_table
from glaze_pipeline.defs.merge.chunked import CHUNKED_JOB, enrich_table_chunked
from glaze_pipeline.defs.resources import TABLES, RuntimeResource


@dg.sensor(
    jobs=[register_table, enrich_table, enrich_table_chunked],
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def new_tables_sensor(context: dg.SensorEvaluationContext, runtime: RuntimeResource) -> dg.SensorResult:
    """Request one `register_table` run per inbox file (run_key = its content hash: the tick reads no rows),
    then add a partition and request one enrichment run per pending table (run_key = table id).
    """
    rt = runtime.runtime
    registers = [register_request(str(path), content_hash(path)) for path in inbox_files(rt.settings.inbox)]
    with rt.connection() as conn:
        # Only a table still `pending` is queued: one that `glaze enrich` claimed meanwhile is its run's alone.
        pending = [table_id for table_id in pending_tables(conn) if queue_table(conn, table_id)]
        sizes = accepted_rows(conn, pending)
    if not pending and not registers:
        return dg.SensorResult(skip_reason="no new files or tables")
    return dg.SensorResult(
        dynamic_partitions_requests=[TABLES.build_add_request(pending)] if pending else [],
        run_requests=[
            *registers,
            *(enrichment_request(t, sizes[t], rt.settings) for t in pending),
        ],
    )


def enrichment_request(table_id: str, accepted: int, s: Settings) -> dg.RunRequest:
    """enrich_table for a table of up to GLAZE_CHUNK_ROWS rows (its executor by size); the chunked job above."""
    if accepted > s.chunk_rows:
        job, execution = CHUNKED_JOB, chunked_execution()
    else:
        job, execution = ENRICH_TABLE_JOB, execution_for(accepted, s.in_process_max_rows)
    return dg.RunRequest(
        job_name=job, partition_key=table_id, run_key=f"table:{table_id}", run_config={"execution": execution}
    )


def register_request(path: str, digest: str) -> dg.RunRequest:
    """A file seen again while its run is queued or going has the same key, so Dagster does not launch it twice."""
    return dg.RunRequest(
        job_name=REGISTER_TABLE_JOB,
        run_key=f"file:{digest}",
        run_config={"ops": {"register_file": {"config": {"path": path, "from_inbox": True}}}},
        tags={"glaze/inbox_file": path.rsplit("/", 1)[-1][:200]},
    )
