import dagster as dg

from glaze_pipeline.core.intake.tables import TableStatus, table_info
from glaze_pipeline.core.intake.uploads import upload_file
from glaze_pipeline.defs.ingest.sensors import new_tables_sensor
from glaze_pipeline.defs.resources import RuntimeResource
from glaze_pipeline_tests.helpers import demo_urls, write_table


def _evaluate(instance: dg.DagsterInstance) -> dg.SensorResult:
    with dg.build_sensor_context(instance=instance, resources={"runtime": RuntimeResource()}) as context:
        result = new_tables_sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def test_inbox_file_becomes_partition_and_run_request(servers, conn):
    inbox = servers.home / "inbox"
    inbox.mkdir(exist_ok=True)
    write_table(inbox / "dropped_companies.csv", demo_urls())
    (inbox / ".partial_upload.csv").write_text("website\nacme.com\n")  # still being copied: left alone

    instance = dg.DagsterInstance.ephemeral()
    result = _evaluate(instance)

    (request,) = result.dynamic_partitions_requests
    table_ids = list(request.partition_keys)
    assert "dropped_companies" in table_ids
    runs = {r.partition_key: r.run_key for r in result.run_requests}
    assert runs["dropped_companies"] == "table:dropped_companies"
    assert table_info(conn, "dropped_companies").status == TableStatus.QUEUED
    assert (inbox / ".done" / "dropped_companies.csv").exists()
    assert not (inbox / "dropped_companies.csv").exists()
    assert (inbox / ".partial_upload.csv").exists()

    again = _evaluate(instance)
    assert not again.run_requests  # queued tables are not launched twice


def test_bad_inbox_file_is_set_aside_with_its_error(servers, conn):
    inbox = servers.home / "inbox"
    inbox.mkdir(exist_ok=True)
    (inbox / "empty.csv").write_text("")
    result = _evaluate(dg.DagsterInstance.ephemeral())
    assert not any(r.partition_key == "empty" for r in result.run_requests)
    error = (inbox / ".failed" / "empty.csv.error.txt").read_text()
    assert "empty" in error


def test_table_claimed_by_the_cli_is_not_launched_by_the_sensor(servers, conn, tmp_path):
    path = write_table(tmp_path / "cli_owned.csv", demo_urls())
    uploaded = upload_file(conn, path, status=TableStatus.RUNNING)
    pending = upload_file(conn, write_table(tmp_path / "via_upload.csv", demo_urls()))
    conn.commit()
    result = _evaluate(dg.DagsterInstance.ephemeral())
    launched = {r.partition_key for r in result.run_requests}
    assert pending.table_id in launched
    assert uploaded.table_id not in launched
