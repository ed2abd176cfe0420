"""The requests sensor and the enrich_record job on real Postgres, Redis and Dagster: budgets, failures, stuck runs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import dagster as dg
import pytest

from glaze_pipeline.core.model.urls import parse_entity
from glaze_pipeline.core.storage.api_keys import create_key, spent_today
from glaze_pipeline.core.storage.requests import NewRequest, create_request, get_request
from glaze_pipeline.defs.resources import RuntimeResource
from glaze_pipeline.record_defs import jobs as record_jobs
from glaze_pipeline.record_defs.jobs import BATCH_TAG, ENRICH_RECORD_JOB
from glaze_pipeline.record_defs.sensors import MAX_ATTEMPTS, STALE_AFTER_S, failed_request_runs_sensor
from glaze_pipeline.sandbox.apis import ApiSimulator
from glaze_pipeline_tests.api.live import run_batch, sensor_tick

LINKEDIN_ONLY = "company_employee_range"  # neither the website nor search fills it: the paid LinkedIn call does


@pytest.fixture
def instance(servers, monkeypatch: pytest.MonkeyPatch) -> dg.DagsterInstance:
    monkeypatch.setenv("GLAZE_REQUESTS_WAIT_S", "0")
    return dg.DagsterInstance.ephemeral()


@pytest.fixture
def linkedin(monkeypatch: pytest.MonkeyPatch, fresh_cache: str, fresh_ledger: None) -> Iterator[ApiSimulator]:
    with ApiSimulator("linkedin") as sim:
        for name, value in sim.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("GLAZE_LINKEDIN_RATE_PER_S", "500")
        yield sim


def queue(conn, key_id: str, url: str, fields: list[str], max_cost: float | None = None) -> str:
    entity = parse_entity(url)
    new = NewRequest(
        key_id, entity.input_url, entity.normalized_url, entity.entity_type.value, entity.row_key, fields, max_cost
    )
    request, _ = create_request(conn, new)
    conn.commit()
    return str(request.request_id)


def key(conn, **limits: float) -> str:
    created, _ = create_key(conn, f"k{uuid.uuid4().hex[:6]}", **limits)  # type: ignore[arg-type]
    conn.commit()
    return created.key_id


def batch_config(batch: str) -> dict:
    return {"ops": {"enrich_requests": {"config": {"batch_id": batch}}}}


def drain(conn, instance: dg.DagsterInstance) -> None:
    """Claim and fail whatever other tests left queued, so each test sees its own requests only."""
    tick = sensor_tick(instance)
    for request in tick.run_requests:
        conn.execute("UPDATE glaze.requests SET status = 'failed' WHERE batch_id = %s", (request.tags[BATCH_TAG],))
    conn.commit()


@pytest.mark.slow
def test_a_keys_daily_cap_is_kept_by_the_run_budgets_and_costs_equal_the_ledger(conn, instance, linkedin):
    drain(conn, instance)
    key_id = key(conn, daily_cap_usd=0.015)
    urls = [f"https://www.linkedin.com/company/capped-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    ids = [queue(conn, key_id, u, [LINKEDIN_ONLY], max_cost=0.01) for u in urls]
    tick = sensor_tick(instance)
    assert len(tick.run_requests) == 1
    budgets = [get_request(conn, i, key_id).budget_usd for i in ids]
    assert budgets == pytest.approx([0.01, 0.005, 0.0])  # the cap, handed out oldest first
    assert run_batch(instance, tick.run_requests[0]).success

    done = [get_request(conn, i, key_id) for i in ids]
    assert [r.status for r in done] == ["completed"] * 3
    assert LINKEDIN_ONLY in done[0].result["data"]
    assert done[1].result["gaps"][LINKEDIN_ONLY]["status"] == "budget_exhausted"
    assert done[2].result["gaps"][LINKEDIN_ONLY]["status"] == "budget_exhausted"
    assert linkedin.count() == 1  # nothing was sent for the requests the cap did not cover
    spent = spent_today(conn, key_id)
    assert spent == pytest.approx(0.01) and spent <= 0.015
    assert sum(r.cost_usd for r in done) == pytest.approx(spent)  # what the client sees is the ledger's figure
    assert done[0].result["costs"] == {
        "total_usd": pytest.approx(0.01),
        "by_provider": {"linkedin": pytest.approx(0.01)},
    }

    # Nothing left today: the next request runs with a budget of 0 and pays nothing.
    later = queue(conn, key_id, f"https://www.linkedin.com/company/late-{uuid.uuid4().hex[:8]}", [LINKEDIN_ONLY], 0.01)
    run_batch(instance, sensor_tick(instance).run_requests[0])
    assert get_request(conn, later, key_id).budget_usd == pytest.approx(0.005)
    assert spent_today(conn, key_id) <= 0.015


def test_a_failing_run_marks_its_requests_failed_with_the_reason(conn, instance, monkeypatch):
    drain(conn, instance)
    key_id = key(conn)

    async def broken(*args: object, **kwargs: object) -> dict:
        raise RuntimeError("the provider registry is broken")

    monkeypatch.setattr(record_jobs, "enrich_group", broken)
    ids = [queue(conn, key_id, f"https://co{uuid.uuid4().hex[:8]}.bench.example", ["company_name"]) for _ in range(2)]
    result = run_batch(instance, sensor_tick(instance).run_requests[0])
    assert not result.success
    for request_id in ids:
        request = get_request(conn, request_id, key_id)
        assert request.status == "failed" and request.run_id == result.run_id
        assert "RuntimeError: the provider registry is broken" in request.error


def test_run_failure_sensor_fails_requests_of_a_run_that_died_without_its_handler(conn, instance):
    drain(conn, instance)
    key_id = key(conn)
    request_id = queue(conn, key_id, f"https://co{uuid.uuid4().hex[:8]}.bench.example", ["company_name"])
    batch = sensor_tick(instance).run_requests[0].tags[BATCH_TAG]
    conn.execute("UPDATE glaze.requests SET status = 'running' WHERE batch_id = %s", (batch,))
    conn.commit()

    from glaze_pipeline.record_definitions import defs

    job = defs.resolve_job_def(ENRICH_RECORD_JOB)
    run = instance.create_run_for_job(job, run_config=batch_config(batch), tags={BATCH_TAG: batch})
    instance.report_run_failed(run, "the run worker was killed (exit code -9)")  # what run monitoring reports
    failure = next(e for e in instance.all_logs(run.run_id) if e.dagster_event and e.dagster_event.is_run_failure)
    with dg.build_run_status_sensor_context(
        sensor_name=failed_request_runs_sensor.name,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(run.run_id),
        dagster_event=failure.dagster_event,
        resources={"runtime": RuntimeResource()},
    ).for_run_failure() as context:
        failed_request_runs_sensor(context)

    request = get_request(conn, request_id, key_id)
    assert request.status == "failed"
    assert run.run_id in request.error and "killed" in request.error


def test_stuck_requests_are_requeued_then_failed_after_the_last_attempt(conn, instance):
    drain(conn, instance)
    key_id = key(conn)
    request_id = queue(conn, key_id, f"https://co{uuid.uuid4().hex[:8]}.bench.example", ["company_name"])
    batches = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        tick = sensor_tick(instance)  # claims it into a batch whose run is never launched (the daemon died)
        if attempt > 1:
            assert "requeued" in (tick.skip_reason or "") or tick.run_requests
        batches.append(tick.run_requests[0].tags[BATCH_TAG])
        request = get_request(conn, request_id, key_id)
        assert (request.status, request.attempts, request.batch_id) == ("queued", attempt, batches[-1])
        conn.execute(
            "UPDATE glaze.requests SET launched_at = now() - make_interval(secs => %s) WHERE request_id = %s",
            (STALE_AFTER_S + 1, uuid.UUID(request_id)),
        )
        conn.commit()
    assert len(set(batches)) == MAX_ATTEMPTS  # each claim is a new batch, so a new run key

    sensor_tick(instance)
    request = get_request(conn, request_id, key_id)
    assert request.status == "failed"
    assert request.error == "request not finished: its run was never launched"


def test_a_run_that_ended_without_finishing_its_requests_gives_them_back(conn, instance):
    drain(conn, instance)
    key_id = key(conn)
    request_id = queue(conn, key_id, f"https://co{uuid.uuid4().hex[:8]}.bench.example", ["company_name"])
    batch = sensor_tick(instance).run_requests[0].tags[BATCH_TAG]
    from glaze_pipeline.record_definitions import defs

    run = instance.create_run_for_job(
        defs.resolve_job_def(ENRICH_RECORD_JOB), run_config=batch_config(batch), tags={BATCH_TAG: batch}
    )
    instance.report_run_canceled(run, "canceled in the UI")
    conn.execute(
        "UPDATE glaze.requests SET status = 'running', launched_at = now() - interval '1 hour' WHERE batch_id = %s",
        (batch,),
    )
    conn.commit()

    tick = sensor_tick(instance)
    request = get_request(conn, request_id, key_id)
    assert request.batch_id != batch and request.status == "queued" and request.attempts == 2
    assert [r.tags[BATCH_TAG] for r in tick.run_requests] == [request.batch_id]
