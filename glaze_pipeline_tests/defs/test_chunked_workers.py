"""The chunked table job on two Celery workers over Redis (dagster-celery): one killed mid-chunk, nothing lost."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from glaze_pipeline.config import settings
from glaze_pipeline.core.intake.tables import TableStatus
from glaze_pipeline.core.intake.uploads import upload_file
from glaze_pipeline.core.pipeline.chunks import enrich_table_in_chunks, plan_chunks
from glaze_pipeline.core.pipeline.runtime import BudgetLimits, open_runtime
from glaze_pipeline.core.pipeline.stage import FLUSH_S
from glaze_pipeline.core.storage.landing import table_hash
from glaze_pipeline.defs.merge.chunked import chunked_on_workers, workers_run_config
from glaze_pipeline.sandbox.apis import ApiSimulator
from glaze_pipeline_tests.helpers import write_table

pytestmark = pytest.mark.slow

ROWS = 1_200
CHUNK = 150  # 8 chunks
CONCURRENCY = 2  # linkedin requests in flight at once (the shared limiter's cap, for the whole fleet)
LATENCY_S = 0.05
# What a killed worker paid for but never recorded: the calls in flight, and the answers of the last
# FLUSH_S that were not yet written to the ledger (stage.py flushes every FLUSH_S or FLUSH_ROWS answers).
UNRECORDED = CONCURRENCY + math.ceil(FLUSH_S * CONCURRENCY / LATENCY_S)
FIELDS = ["company_employee_range", "company_specialities"]
BUDGET = {"resources": {"budget": {"config": {"max_cost_usd": 1_000.0, "max_cost_per_row_usd": 1.0}}}}


@pytest.fixture
def linkedin(monkeypatch: pytest.MonkeyPatch, fresh_cache: str, fresh_ledger: None) -> Iterator[ApiSimulator]:
    with ApiSimulator("linkedin") as sim:
        sim.knobs.latency_s = LATENCY_S  # a chunk takes a few seconds: long enough to be killed in the middle
        for name, value in sim.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("GLAZE_LINKEDIN_RATE_PER_S", "100000")
        monkeypatch.setenv("GLAZE_LINKEDIN_CONCURRENCY", str(CONCURRENCY))
        monkeypatch.setenv("GLAZE_CHUNK_ROWS", str(CHUNK))
        yield sim


def celery_config(tmp_path: Path, redis_url: str, prefix: str) -> tuple[dict, Path]:
    """The run config (orchestrator side) and a `dagster_celery_config` module (worker side) that agree."""
    config = workers_run_config(redis_url, prefix)
    execution = config["execution"]["config"]
    # A short visibility timeout so the test sees a lost chunk come back within seconds (production: an hour).
    source = execution["config_source"]
    source["broker_transport_options"] |= {"visibility_timeout": 8, "unacked_restore_interval": 1}
    folder = tmp_path / "celery_config"
    folder.mkdir()
    lines = [f"broker_url = {redis_url!r}", f"result_backend = {redis_url!r}"]
    lines += [f"{key} = {value!r}" for key, value in source.items()]
    (folder / "dagster_celery_config.py").write_text("\n".join(lines) + "\n")
    return config | BUDGET, folder


def start_worker(name: str, config_dir: Path, log: Path) -> subprocess.Popen:
    # PGAPPNAME names the worker's Postgres sessions, so the test sees which chunk lock it holds.
    env = os.environ | {"PYTHONPATH": f"{config_dir}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "PGAPPNAME": name}
    command = [sys.executable, "-m", "celery", "-A", "dagster_celery.app", "worker", "--pool", "solo"]
    command += ["-Q", "dagster", "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "-l", "INFO"]
    with log.open("w") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def steps_by_worker(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, str]]:
    """(step key, worker name) for every step a Celery worker began, in order, from the run's event log."""
    found = []
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        data = event.engine_event_data.metadata if event is not None and event.is_engine_event else {}
        if "Celery worker" not in data:
            continue
        found.append((str(data["step_keys"].value), str(data["Celery worker"].value).split("@")[0]))
    return found


def upload(conn, tmp_path: Path, name: str) -> str:
    urls = [f"https://www.linkedin.com/company/crew-{i}" for i in range(ROWS)]
    path = write_table(tmp_path / f"{name}.csv", urls)
    table_id = upload_file(conn, path, fields=FIELDS, status=TableStatus.RUNNING).table_id
    conn.commit()
    return table_id


def chunk_of(conn, worker: str, table_id: str) -> int | None:
    """The first row of the chunk whose lock `worker` holds (it is inside enrich_chunk), if any."""
    found = conn.execute(
        "SELECT l.objid::int FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory'"
        " AND l.granted AND a.application_name = %s AND l.classid::int = hashtext(%s)",
        (worker, f"glaze.chunk:{table_id}"),
    ).fetchone()
    return found[0] if found else None


def paid_not_landed(conn, table_id: str, first_row: int, last_row: int) -> bool:
    """Some of the chunk's rows are paid for (in the ledger) and the chunk has not landed."""
    return conn.execute(
        """SELECT EXISTS (SELECT 1 FROM glaze.provider_calls c JOIN glaze.input_rows i
                          ON i.table_id = c.table_id AND i.row_key = c.row_key
                          WHERE c.table_id = %s AND i.row_number BETWEEN %s AND %s)
              AND NOT EXISTS (SELECT 1 FROM glaze.landed_chunks WHERE table_id = %s AND first_row = %s)""",
        (table_id, first_row, last_row, table_id, first_row),
    ).fetchone()[0]


def test_two_workers_share_a_table_and_a_killed_workers_chunk_is_done_elsewhere(
    servers, conn, linkedin, tmp_path, monkeypatch
):
    table_id = upload(conn, tmp_path, "crew")
    chunks = plan_chunks(conn, table_id, CHUNK)
    prefix = f"{servers.redis_prefix}celery_{uuid.uuid4().hex[:8]}:"
    run_config, config_dir = celery_config(tmp_path, servers.redis_url, prefix)
    (tmp_path / "dagster").mkdir()
    instance = dg.DagsterInstance.local_temp(str(tmp_path / "dagster"))
    instance.add_dynamic_partitions("tables", [table_id])
    workers = {n: start_worker(n, config_dir, tmp_path / f"{n}.log") for n in ("w1", "w2")}
    outcome: dict[str, dg.ExecutionResult] = {}

    def orchestrate() -> None:
        with dg.execute_job(
            dg.reconstructable(chunked_on_workers),
            instance=instance,
            run_config=run_config,
            tags={"dagster/partition": table_id},
        ) as result:
            outcome["result"] = result
            outcome["success"] = result.success

    orchestrator = threading.Thread(target=orchestrate)
    orchestrator.start()
    try:
        victim = None
        deadline = time.monotonic() + 240
        while victim is None:  # w1 inside a chunk: its lock held, some rows paid, the chunk not landed
            assert time.monotonic() < deadline and orchestrator.is_alive(), "no chunk reached w1"
            first_row = chunk_of(conn, "w1", table_id)
            chunk = next((c for c in chunks if c.first_row == first_row), None)
            if chunk is not None and paid_not_landed(conn, table_id, chunk.first_row, chunk.last_row):
                victim = (f"enrich_table_chunk[c{chunk.number:05d}]", chunk)
            conn.commit()
            time.sleep(0.02)  # polling Postgres for the state to act on, not standing in for synchronisation
        os.killpg(workers["w1"].pid, signal.SIGKILL)
        workers["w1"].wait()
        orchestrator.join(timeout=300)
        assert not orchestrator.is_alive(), "the run did not finish after the worker was killed"
    finally:
        for worker in workers.values():
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()

    assert outcome["success"]
    run_id = instance.get_runs()[0].run_id
    started = steps_by_worker(instance, run_id)
    step, chunk = victim
    assert (step, "w1") in started and (step, "w2") in started  # the killed worker's chunk ran again on w2
    assert {w for s, w in started if s.startswith("enrich_table_chunk[")} == {"w1", "w2"}  # both shared the table
    paid = linkedin.count()
    assert ROWS <= paid <= ROWS + UNRECORDED  # every row paid once, plus at most what was unrecorded at the kill
    ledger = conn.execute(
        "SELECT count(*) FROM glaze.provider_calls WHERE table_id = %s AND cost_usd > 0", (table_id,)
    ).fetchone()
    assert ledger == (ROWS,)

    single = upload(conn, tmp_path, "crew_single")
    with open_runtime(settings()) as runtime:
        limits = BudgetLimits(max_cost_usd=1_000.0, max_cost_per_row_usd=1.0)
        fingerprint, _ = enrich_table_in_chunks(runtime, single, "single", size=CHUNK, limits=limits)
    assert table_hash(conn, table_id) == fingerprint  # the same records as one process, chunk by chunk
    assert linkedin.count() == paid  # …which paid nothing more
