"""Every way in registers a file the same way: `glaze upload`, the inbox, the launchpad and the API's upload."""

import dagster as dg
from click.testing import CliRunner

from glaze_pipeline.api.service import register_table_file
from glaze_pipeline.cli import main
from glaze_pipeline.core.intake.uploads import local_source
from glaze_pipeline.definitions import defs
from glaze_pipeline.defs.ingest.sensors import new_tables_sensor
from glaze_pipeline.defs.resources import RuntimeResource
from glaze_pipeline_tests.helpers import demo_urls, write_table

FIELDS = "company_name,company_email"


def _table(conn, table_id: str) -> tuple[object, ...]:
    meta = conn.execute(
        "SELECT url_column, columns, wanted_fields, hint_fields, rows_in, accepted, rejected, duplicates, status"
        " FROM glaze.tables WHERE table_id = %s",
        (table_id,),
    ).fetchone()
    rows = conn.execute(
        "SELECT row_number, original, input_url, normalized_url, entity_type, row_key, outcome, reason"
        " FROM glaze.input_rows WHERE table_id = %s ORDER BY row_number",
        (table_id,),
    ).fetchall()
    return meta, rows


def _launch(instance: dg.DagsterInstance, config: dict[str, object]) -> dg.ExecuteInProcessResult:
    run_config = {"ops": {"register_file": {"config": config}}}
    return defs.resolve_job_def("register_table").execute_in_process(run_config=run_config, instance=instance)


def test_cli_inbox_launchpad_and_api_register_the_same_table(servers, conn, tmp_path, monkeypatch):
    monkeypatch.setenv("GLAZE_HOME", str(tmp_path / "home"))
    inbox = tmp_path / "home" / "inbox"
    inbox.mkdir(parents=True)
    urls = [*demo_urls()[:3], demo_urls()[0], "not a url"]
    extra = {"company_name": ["Given Ltd", "", "", "", ""]}
    instance = dg.DagsterInstance.ephemeral()

    cli_file = write_table(tmp_path / "by_cli.csv", urls, extra)
    assert CliRunner().invoke(main, ["upload", str(cli_file), "--fields", FIELDS]).exit_code == 0
    api_file = write_table(tmp_path / "by_api.csv", urls, extra)
    register_table_file(conn, api_file, name=None, url_column=None, fields=FIELDS)
    conn.commit()
    pad_file = write_table(tmp_path / "by_launchpad.csv", urls, extra)
    assert _launch(instance, {"path": pad_file.as_uri(), "fields": FIELDS}).success
    write_table(inbox / "by_inbox.csv", urls, extra)
    with dg.build_sensor_context(instance=instance, resources={"runtime": RuntimeResource()}) as context:
        tick = new_tables_sensor(context)
    (request,) = [r for r in tick.run_requests if r.job_name == "register_table"]
    partitions = list(tick.dynamic_partitions_requests[0].partition_keys)
    request.run_config["ops"]["register_file"]["config"]["fields"] = FIELDS  # the inbox takes every field
    assert _launch(instance, request.run_config["ops"]["register_file"]["config"]).success

    with dg.build_sensor_context(instance=instance, resources={"runtime": RuntimeResource()}) as context:
        partitions += new_tables_sensor(context).dynamic_partitions_requests[0].partition_keys
    ours = [p for p in partitions if p.startswith("by_")]  # other tests' pending tables share the database
    assert sorted(ours) == ["by_api", "by_cli", "by_inbox", "by_launchpad"]  # one partition each
    first = _table(conn, "by_cli")
    assert first[0][4:8] == (5, 3, 1, 1)
    for other in ("by_api", "by_launchpad", "by_inbox"):
        assert _table(conn, other) == first, other
    assert first[1][0][1]["company_name"] == "Given Ltd"


def test_launchpad_refuses_what_it_cannot_read(servers, conn, tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    for source, says in (
        ("s3://bucket/leads.csv", "only paths and file:// URLs"),
        (str(tmp_path / "missing.csv"), "no such file where the job runs"),
    ):
        result = defs.resolve_job_def("register_table").execute_in_process(
            run_config={"ops": {"register_file": {"config": {"path": source}}}},
            instance=instance,
            raise_on_error=False,
        )
        assert not result.success
        (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
        assert says in failure.step_failure_data.user_failure_data.description
    spaced = tmp_path / "x y.csv"
    spaced.write_text("url\nacme.com\n")
    assert local_source(spaced.as_uri()) == spaced  # a file:// URL with an escaped space names the file
