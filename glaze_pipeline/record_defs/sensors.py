"""The requests sensor (queued requests → one run per tick) and the checks that leave no request hanging."""

import dagster as dg
import psycopg

from glaze_pipeline.core.storage.requests import (
    QUEUE_CHANNEL,
    claim_batch,
    fail_requests,
    has_queued,
    requeue_batch,
    stale_batches,
)
from glaze_pipeline.defs.resources import RuntimeResource
from glaze_pipeline.record_defs import jobs
from glaze_pipeline.record_defs.jobs import BATCH_TAG, ENRICH_RECORD_JOB

BATCH_LIMIT = 50  # requests per run: a handful of rows for the waterfall, several ticks' worth under load
STALE_AFTER_S = 60.0  # a claimed batch with no live run after this long is recovered
MAX_ATTEMPTS = 3  # claims of one request before it fails instead of going back to the queue
BATCH_WINDOW_S = 0.05  # after the first new request, gather the ones right behind it into the same run


@dg.sensor(
    job_name=ENRICH_RECORD_JOB,
    minimum_interval_seconds=1,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Queued API requests → one enrich_record run per tick; stuck requests are requeued or failed.",
)
def queued_requests_sensor(context: dg.SensorEvaluationContext, runtime: RuntimeResource) -> dg.SensorResult:
    """Listen for new requests for up to GLAZE_REQUESTS_WAIT_S, then claim every waiting one into one run.

    The daemon evaluates sensors every 5 s; listening inside the tick lets a request start its run
    within milliseconds instead of waiting for the next tick.
    """
    rt = runtime.runtime
    settings = rt.settings
    with rt.connection() as conn:
        recovered = recover_stuck_requests(context, conn)
        conn.commit()
        if not has_queued(conn):
            conn.commit()
            _listen(conn, settings.api.requests_wait_s)
        batch = claim_batch(conn, limit=BATCH_LIMIT, default_max_cost_usd=settings.max_cost_per_row_usd)
    if batch is None:
        return dg.SensorResult(skip_reason=f"no queued requests{recovered}")
    context.log.info(f"batch {batch.batch_id}: {len(batch.request_ids)} request(s){recovered}")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"requests:{batch.batch_id}",
                run_config=dg.RunConfig(ops={"enrich_requests": {"config": {"batch_id": batch.batch_id}}}),
                tags={BATCH_TAG: batch.batch_id},
            )
        ]
    )


def _listen(conn: psycopg.Connection, wait_s: float) -> None:
    """Block until a request is queued or `wait_s` passes; then a short pause gathers the requests behind it."""
    if wait_s <= 0:
        return
    conn.autocommit = True
    try:
        conn.execute(f"LISTEN {QUEUE_CHANNEL}")
        if not has_queued(conn):  # listening first, then looking: a request queued in between is not missed
            heard = list(conn.notifies(timeout=wait_s, stop_after=1))
            if heard:
                list(conn.notifies(timeout=BATCH_WINDOW_S))
        conn.execute(f"UNLISTEN {QUEUE_CHANNEL}")
    finally:
        conn.autocommit = False


def recover_stuck_requests(context: dg.SensorEvaluationContext, conn: psycopg.Connection) -> str:
    """Batches claimed long ago whose run is gone or over: back to the queue, or failed after MAX_ATTEMPTS."""
    requeued = failed = 0
    for batch_id in stale_batches(conn, STALE_AFTER_S):
        runs = context.instance.get_runs(filters=dg.RunsFilter(tags={BATCH_TAG: batch_id}), limit=1)
        if runs and not runs[0].is_finished:
            continue  # still queued or running: its own handler or the run-failure sensor will speak
        reason = (
            f"its run {runs[0].run_id} ended ({runs[0].status.value}) without finishing it"
            if runs
            else "its run was never launched"
        )
        r, f = requeue_batch(conn, batch_id, max_attempts=MAX_ATTEMPTS, reason=f"request not finished: {reason}")
        requeued, failed = requeued + r, failed + f
        context.log.warning(f"batch {batch_id}: {reason}; {r} request(s) requeued, {f} failed")
    return f"; {requeued} requeued, {failed} failed after {MAX_ATTEMPTS} attempts" if requeued or failed else ""


@dg.run_failure_sensor(
    monitored_jobs=[jobs.enrich_record],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A failed enrich_record run marks its unfinished requests failed, with the run's reason.",
)
def failed_request_runs_sensor(context: dg.RunFailureSensorContext, runtime: RuntimeResource) -> None:
    """Covers runs that die without reaching the op's own handler (killed, out of memory, lost worker)."""
    run = context.dagster_run
    message = context.failure_event.message or "the run failed"
    with runtime.runtime.connection() as conn:
        n = fail_requests(
            conn, f"its run {run.run_id} failed: {message}"[:500], batch_id=run.tags.get(BATCH_TAG), run_id=run.run_id
        )
    context.log.info(f"run {run.run_id}: {n} unfinished request(s) marked failed")
