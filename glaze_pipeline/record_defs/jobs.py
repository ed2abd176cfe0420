"""`enrich_record`: the waterfall over one batch of API requests, with the same providers, cache, ledger and budgets."""

import time

import dagster as dg
import psutil

from glaze_pipeline.core import aio
from glaze_pipeline.core.pipeline.record import RecordGroup, enrich_group, group_requests
from glaze_pipeline.core.pipeline.runtime import Runtime
from glaze_pipeline.core.storage.requests import (
    add_ledger_runs,
    complete_requests,
    fail_requests,
    record_timings,
    start_batch,
)
from glaze_pipeline.defs.resources import RuntimeResource
from glaze_pipeline.errors import UserFacingError

ENRICH_RECORD_JOB = "enrich_record"
BATCH_TAG = "glaze/request_batch"


class RequestBatch(dg.Config):
    batch_id: str


@dg.op(tags={"kind": "python"})
def enrich_requests(context: dg.OpExecutionContext, config: RequestBatch, runtime: RuntimeResource) -> None:
    """Enrich the batch's requests through the waterfall and write each result back to glaze.requests.

    The cache and the ledger are written by the stages as answers arrive, exactly as in a table run.
    Any error marks the batch's requests failed with its reason before the run fails.
    """
    rt = runtime.runtime
    with rt.connection() as conn:
        requests = start_batch(conn, config.batch_id, context.run_id)
        groups = group_requests(requests)
        add_ledger_runs(conn, {str(r.request_id): g.ledger_run(context.run_id) for g in groups for r in g.requests})
    if not requests:
        context.log.info(f"batch {config.batch_id}: every request already finished")
        return
    context.log.info(f"batch {config.batch_id}: {len(requests)} request(s) in {len(groups)} group(s)")
    try:
        started, cpu_at_start = time.monotonic(), _cpu_s()
        results = aio.run(_enrich(rt, groups, context.run_id))
        steps_s, steps_cpu_s = time.monotonic() - started, _cpu_s() - cpu_at_start
        with rt.connection() as conn:
            complete_requests(conn, results)
            timings = {"steps_s": steps_s, "write_s": time.monotonic() - started - steps_s}
            # CPU seconds, which a busy machine does not inflate: the run process's before its op (interpreter,
            # code location, run set-up) and during the steps.
            timings |= {"launch_cpu_s": cpu_at_start, "steps_cpu_s": steps_cpu_s}
            record_timings(conn, results, {k: round(v, 4) for k, v in timings.items()})
    except Exception as exc:
        reason = str(exc) if isinstance(exc, UserFacingError) else f"the run failed: {type(exc).__name__}: {exc}"
        with rt.connection() as conn:
            fail_requests(conn, reason[:500], batch_id=config.batch_id)
        raise
    context.log.info(f"batch {config.batch_id}: {len(results)} request(s) completed in {steps_s:.2f}s")


def _cpu_s() -> float:
    """CPU seconds this process has used so far (user and system)."""
    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


async def _enrich(rt: Runtime, groups: list[RecordGroup], run_id: str) -> dict[str, dict]:
    results: dict[str, dict] = {}
    for group in groups:  # one after the other: each group's stages already run its rows concurrently
        results |= await enrich_group(rt, group, run_id)
    return results


@dg.job(
    name=ENRICH_RECORD_JOB,
    executor_def=dg.in_process_executor,  # one step, no child process per step: a request waits for less
    description="Enrich a batch of single-record API requests through the waterfall; results go to glaze.requests.",
    tags={"glaze/kind": "requests"},
)
def enrich_record() -> None:
    enrich_requests()
