import uuid

import dagster as dg
import pytest

from glaze_pipeline.core.intake.tables import TableStatus, table_info
from glaze_pipeline.core.intake.uploads import content_hash, upload_file
from glaze_pipeline.definitions import defs
from glaze_pipeline.defs.ingest.sensors import new_tables_sensor
from glaze_pipeline.defs.resources import RuntimeResource
from glaze_pipeline_tests.helpers import demo_urls, write_table


def _evaluate(instance: dg.DagsterInstance) -> dg.SensorResult:
    with dg.build_sensor_context(instance=instance, resources={"runtime": RuntimeResource()}) as context:
        result = new_tables_sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def _run(request: dg.RunRequest, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    job = defs.resolve_job_def(request.job_name or "")
    return job.execute_in_process(run_config=request.run_config, instance=instance, raise_on_error=False)


@pytest.fixture
def inbox(servers, monkeypatch, tmp_path):
    """An inbox of this test's own (GLAZE_HOME/inbox), so files of other tests never show up in its ticks."""
    monkeypatch.setenv("GLAZE_HOME", str(tmp_path / "home"))
    folder = tmp_path / "home" / "inbox"
    folder.mkdir(parents=True)
    return folder


def test_inbox_file_becomes_one_register_run_per_content_then_a_partition(inbox, conn):
    path = write_table(inbox / "dropped_companies.csv", demo_urls())
    (inbox / ".partial_upload.csv").write_text("website\nacme.com\n")  # still being copied: left alone
    instance = dg.DagsterInstance.ephemeral()

    tick = _evaluate(instance)
    (request,) = tick.run_requests
    assert request.job_name == "register_table"
    assert request.run_key == f"file:{content_hash(path)}"
    assert not tick.dynamic_partitions_requests
    registered = conn.execute("SELECT count(*) FROM glaze.tables WHERE table_id = 'dropped_companies'").fetchone()
    assert registered == (0,)  # the tick only noticed the file; nothing was read into Postgres
    assert [r.run_key for r in _evaluate(instance).run_requests] == [request.run_key]  # same key: Dagster dedups

    run = _run(request, instance)
    assert run.success
    (output,) = [e for e in run.all_events if e.event_type == dg.DagsterEventType.STEP_OUTPUT]
    assert output.step_output_data.metadata["table_id"].value == "dropped_companies"
    assert (inbox / ".done" / "dropped_companies.csv").exists() and not path.exists()
    assert (inbox / ".partial_upload.csv").exists()

    after = _evaluate(instance)
    (partitions,) = after.dynamic_partitions_requests
    assert list(partitions.partition_keys) == ["dropped_companies"]
    (enrich,) = after.run_requests
    assert (enrich.job_name, enrich.partition_key, enrich.run_key) == (
        "enrich_table",
        "dropped_companies",
        "table:dropped_companies",
    )
    assert table_info(conn, "dropped_companies").status == TableStatus.QUEUED
    assert not _evaluate(instance).run_requests  # queued tables are not launched twice


def test_poisoned_inbox_file_fails_its_own_run_and_the_others_go_on(inbox, conn):
    (inbox / "empty.csv").write_text("")
    good = write_table(inbox / "good_one.csv", demo_urls()[:2])
    instance = dg.DagsterInstance.ephemeral()
    runs = {
        r.run_config["ops"]["register_file"]["config"]["path"]: _run(r, instance)
        for r in _evaluate(instance).run_requests
    }

    bad = runs[str(inbox / "empty.csv")]
    assert not bad.success
    (failure,) = [e for e in bad.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert "empty.csv is empty" in failure.step_failure_data.user_failure_data.description
    assert "empty" in (inbox / ".failed" / "empty.csv.error.txt").read_text()
    assert runs[str(good)].success and (inbox / ".done" / "good_one.csv").exists()
    assert [r.partition_key for r in _evaluate(instance).run_requests] == ["good_one"]


def test_register_table_runs_in_process():
    assert defs.resolve_job_def("register_table").executor_def.name == "in_process"


def test_table_claimed_by_the_cli_is_not_launched_by_the_sensor(inbox, conn, tmp_path):
    path = write_table(tmp_path / "cli_owned.csv", demo_urls())
    uploaded = upload_file(conn, path, status=TableStatus.RUNNING)
    pending = upload_file(conn, write_table(tmp_path / "via_upload.csv", demo_urls()))
    conn.commit()
    result = _evaluate(dg.DagsterInstance.ephemeral())
    launched = {r.partition_key for r in result.run_requests}
    assert pending.table_id in launched
    assert uploaded.table_id not in launched


def test_small_tables_run_in_process_and_big_ones_in_forkserver_processes(inbox, conn, tmp_path, monkeypatch):
    monkeypatch.setenv("GLAZE_IN_PROCESS_MAX_ROWS", "2")
    small = upload_file(conn, write_table(tmp_path / "small_one.csv", demo_urls()[:2])).table_id
    big = upload_file(conn, write_table(tmp_path / "big_one.csv", demo_urls()[:3])).table_id
    conn.commit()
    configs = {r.partition_key: r.run_config for r in _evaluate(dg.DagsterInstance.ephemeral()).run_requests}

    assert configs[small]["execution"] == {"config": {"in_process": {}}}
    multiprocess = configs[big]["execution"]["config"]["multiprocess"]
    assert multiprocess["start_method"] == {"forkserver": {"preload_modules": ["glaze_pipeline.definitions"]}}
    job = defs.resolve_job_def("enrich_table")
    for config in configs.values():
        dg.validate_run_config(job, config)  # Dagster accepts both as they are


def test_a_table_past_one_chunk_goes_to_the_chunked_job(inbox, conn, tmp_path, monkeypatch):
    monkeypatch.setenv("GLAZE_CHUNK_ROWS", "2")
    small = upload_file(conn, write_table(tmp_path / "one_chunk.csv", demo_urls()[:2])).table_id
    big = upload_file(conn, write_table(tmp_path / "two_chunks.csv", demo_urls()[:3])).table_id
    conn.commit()
    requests = {r.partition_key: r for r in _evaluate(dg.DagsterInstance.ephemeral()).run_requests}

    assert requests[small].job_name == "enrich_table"
    assert requests[big].job_name == "enrich_table_chunked"
    assert requests[big].run_key == f"table:{big}"  # launched once, as any table run
    dg.validate_run_config(defs.resolve_job_def("enrich_table_chunked"), requests[big].run_config)


def test_the_chunked_job_claims_its_table_like_any_table_run(inbox, conn, tmp_path):
    """A table another live run holds: a chunked run of it stops at its first step, no chunk started."""
    table_id = upload_file(conn, write_table(tmp_path / "held.csv", demo_urls()[:2])).table_id
    holder = str(uuid.uuid4())  # a run alive elsewhere: its heartbeat is fresh
    conn.execute(
        "UPDATE glaze.tables SET status = 'running', last_run_id = %s, heartbeat_at = now() WHERE table_id = %s",
        (holder, table_id),
    )
    conn.commit()
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tables", [table_id])

    result = defs.resolve_job_def("enrich_table_chunked").execute_in_process(
        instance=instance, partition_key=table_id, raise_on_error=False
    )

    failures = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert [e.step_key for e in failures] == ["table_chunks"]
    assert "already being enriched by run" in failures[0].step_failure_data.error.to_string()
    row = conn.execute("SELECT status, last_run_id FROM glaze.tables WHERE table_id = %s", (table_id,)).fetchone()
    assert row == ("running", uuid.UUID(holder)) or row == ("running", holder)  # the holder keeps its table
