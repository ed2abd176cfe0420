"""Big tables in chunks: one dynamically mapped step per chunk (every stage, merge, checks, landing), then the finish.

`enrich_table_chunked` runs the steps on this machine (a child process each); `enrich_table_on_workers`
sends them to Celery workers on the project's Redis (dagster-celery), so W machines share one table.
Both land `landed_records` for the partition, so the asset graph shows the table as landed either way.
"""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_celery import celery_executor

from glaze_pipeline.config import settings
from glaze_pipeline.core.intake.lifecycle import claim_table
from glaze_pipeline.core.pipeline.chunks import Chunk, ChunkOutcome, enrich_chunk, finish_table, plan_chunks
from glaze_pipeline.core.pipeline.waterfall import TableWork
from glaze_pipeline.defs.ingest.tables import uploaded_table
from glaze_pipeline.defs.lifecycle.runs import repair_tables
from glaze_pipeline.defs.merge.assets import picture
from glaze_pipeline.defs.providers.assets import STEP_RETRY
from glaze_pipeline.defs.resources import TABLES, BudgetResource, RuntimeResource, resources

CHUNKED_JOB = "enrich_table_chunked"
WORKERS_JOB = "enrich_table_on_workers"
CHUNK_STEPS = "chunk_steps"  # small step outputs (chunk bounds, per-chunk figures) on a filesystem all workers see

# Celery settings that make a lost worker's chunk run elsewhere: a task is acknowledged only when it
# finished (acks_late), a worker whose child dies gives it back (reject_on_worker_lost), each worker takes
# one task at a time, and Redis hands an unacknowledged task to another worker after visibility_timeout.
CELERY_SETTINGS: dict[str, Any] = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    "broker_transport_options": {
        "global_keyprefix": "glaze_celery:",
        "visibility_timeout": 3600,
        "unacked_restore_interval": 5,
        "unacked_restore_throttle": 1,
    },
    "result_backend_transport_options": {"global_keyprefix": "glaze_celery:"},
}


class ChunkStepsIOManager(dg.ConfigurableIOManager):
    """The chunked jobs' small step outputs (chunk bounds, per-chunk figures) as JSON under GLAZE_HOME/chunk_steps.

    GLAZE_HOME is the volume every worker mounts, so a step on one worker reads what a step on another wrote.
    """

    def _path(self, context: dg.OutputContext) -> Path:
        return settings().home.joinpath("chunk_steps", *context.get_identifier())

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        path = self._path(context)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(obj))
        partial.replace(path)  # a reader never sees half an output

    def load_input(self, context: dg.InputContext) -> object:
        assert context.upstream_output is not None
        return json.loads(self._path(context.upstream_output).read_text())


@dg.op(out=dg.DynamicOut(list, io_manager_key=CHUNK_STEPS))
def table_chunks(context: dg.OpExecutionContext, runtime: RuntimeResource) -> Iterator[dg.DynamicOutput[list]]:
    """Cut the table into chunks of GLAZE_CHUNK_ROWS entities; the same table always gives the same cuts."""
    rt = runtime.runtime
    with rt.connection() as conn:
        info = uploaded_table(context, conn)  # a partition for a table never uploaded stops here, saying so
        # One live run per table, as for enrich_table: a dead holder is released, a live one refuses this run.
        repair_tables(context.instance, conn, rt.settings.run_lost_after_s)
        claim_table(conn, info.table_id, context.run_id)
        conn.commit()
        chunks = plan_chunks(conn, info.table_id, rt.settings.chunk_rows)
    context.log.info(f"{len(chunks)} chunk(s) of at most {rt.settings.chunk_rows} entities")
    total = sum(c.entities for c in chunks)
    for chunk in chunks:  # its share of the table is its share of the run budget: chunks run side by side
        share = chunk.entities / total
        yield dg.DynamicOutput(
            [chunk.number, chunk.first_row, chunk.last_row, share], mapping_key=f"c{chunk.number:05d}"
        )


@dg.op(out=dg.Out(io_manager_key=CHUNK_STEPS), retry_policy=STEP_RETRY, pool="table_chunks")
def enrich_table_chunk(
    context: dg.OpExecutionContext, runtime: RuntimeResource, budget: BudgetResource, chunk: list
) -> dict[str, Any]:
    """Every provider stage, the merge and the row checks over one chunk, landed in one transaction.

    A chunk an earlier, unfinished run landed is skipped; a second delivery of a chunk waits for the first.
    """
    number, first_row, last_row, share = chunk
    outcome = enrich_chunk(
        runtime.runtime,
        context.partition_key,
        Chunk(number, first_row, last_row),
        run_id=context.run_id,
        limits=budget.limits,
        share=share,
    )
    paid = sum(s.paid_calls for s in outcome.stages)
    state = "already landed" if outcome.skipped else f"landed, {paid} paid call(s)"
    context.log.info(f"chunk {chunk[0]} (rows {chunk[1]}-{chunk[2]}, {outcome.rows} entities): {state}")
    return outcome.as_dict()


@dg.op
def finish_chunked_table(
    context: dg.OpExecutionContext, runtime: RuntimeResource, chunk_outcomes: list[dict[str, Any]]
) -> None:
    """Every chunk landed: the stages' sums for the run, the table marked enriched, `landed_records` reported."""
    rt = runtime.runtime
    table_id = context.partition_key
    outcomes = [ChunkOutcome.of_dict(o) for o in chunk_outcomes]
    fingerprint, summaries = finish_table(rt, table_id, context.run_id, outcomes)
    with rt.connection() as conn:
        metadata: dict[str, Any] = picture(conn, rt, TableWork.load(conn, table_id))
    metadata |= {
        "chunks": len(outcomes),
        "chunks_already_landed": sum(o.skipped for o in outcomes),
        "records_written": sum(o.records_written for o in outcomes),
        "paid_calls": sum(s.paid_calls for s in summaries),
        "table_hash": fingerprint,
        "query": f"SELECT * FROM glaze.records WHERE table_id = '{table_id}'",
    }
    context.log_event(dg.AssetMaterialization(asset_key="landed_records", partition=table_id, metadata=metadata))


def build_chunked_job(
    name: str, executor: dg.ExecutorDefinition, config: dict[str, Any] | None = None
) -> dg.JobDefinition:
    """The chunked table job on an executor; resources are bound here so Celery workers can rebuild it alone."""

    @dg.job(
        name=name,
        partitions_def=TABLES,
        executor_def=executor,
        resource_defs=resources() | {CHUNK_STEPS: ChunkStepsIOManager()},
        config=config or {},
        description="Enrich one big table chunk by chunk: memory bounded by GLAZE_CHUNK_ROWS, each chunk landed "
        "in its own transaction, a re-run redoing only unlanded chunks.",
        tags={"glaze/kind": "table"},
    )
    def _job() -> None:
        finish_chunked_table(table_chunks().map(enrich_table_chunk).collect())

    return _job


def workers_run_config(redis_url: str | dict[str, str], prefix: str = "glaze_celery:") -> dict[str, Any]:
    """Run config for the Celery executor: broker and results on the project's Redis, under a key prefix."""
    settings = CELERY_SETTINGS | {
        "broker_transport_options": CELERY_SETTINGS["broker_transport_options"] | {"global_keyprefix": prefix},
        "result_backend_transport_options": {"global_keyprefix": prefix},
    }
    return {"execution": {"config": {"broker": redis_url, "backend": redis_url, "config_source": settings}}}


def chunked_on_this_machine() -> dg.JobDefinition:
    return build_chunked_job(CHUNKED_JOB, dg.multiprocess_executor)


def chunked_on_workers() -> dg.JobDefinition:
    return build_chunked_job(WORKERS_JOB, celery_executor, workers_run_config({"env": "GLAZE_REDIS_URL"}))


enrich_table_chunked = chunked_on_this_machine()  # one object: the sensor names it, the loader registers it
enrich_table_on_workers = chunked_on_workers()


@dg.definitions
def defs() -> dg.Definitions:
    """The two chunked table jobs, for the defs-folder loader."""
    return dg.Definitions(jobs=[enrich_table_chunked, enrich_table_on_workers])
