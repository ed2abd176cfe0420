"""Refresh: the schedule asks again only for stale values, past the cache, and the audit trail keeps the old ones."""

from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg
import pytest
from click.testing import CliRunner

from glaze_pipeline.cli import main
from glaze_pipeline.config import settings
from glaze_pipeline.core.intake.tables import TableStatus
from glaze_pipeline.core.intake.uploads import upload_file
from glaze_pipeline.definitions import defs
from glaze_pipeline.defs.refresh.schedules import REFRESH_SCHEDULE, build_refresh_schedule
from glaze_pipeline.defs.resources import RuntimeResource
from glaze_pipeline.sandbox.apis import ApiSimulator
from glaze_pipeline.sandbox.sites import DEMO_SITES, SiteServer, demo_hosts, directory_pages
from glaze_pipeline_tests.helpers import write_table


def _evaluate(instance: dg.DagsterInstance, conn) -> list[dg.RunRequest]:
    """The daemon's tick; every table has its partition there (the tests share one database)."""
    instance.add_dynamic_partitions("tables", [t for (t,) in conn.execute("SELECT table_id FROM glaze.tables")])
    schedule = build_refresh_schedule(settings().refresh.cron)
    when = datetime.now(UTC)
    resources = {"runtime": RuntimeResource()}
    with (
        dg.build_schedule_context(
            instance=instance,
            resources=resources,
            scheduled_execution_time=when,
            repository_def=defs.get_repository_def(),
        ) as context,
        dg.partition_loading_context(dynamic_partitions_store=instance),
    ):  # as the daemon does
        data = schedule.evaluate_tick(context)
    return list(data.run_requests or [])


def _landed(conn, tmp_path, name: str, ages: dict[str, int], source: str = "website") -> str:
    """A table whose values landed `ages[field]` days ago (one row, from `source`), without running anything."""
    table_id = upload_file(
        conn, write_table(tmp_path / f"{name}.csv", [f"https://{name.replace('_', '-')}.example"]), fields=list(ages)
    ).table_id
    row_key = conn.execute("SELECT row_key FROM glaze.input_rows WHERE table_id = %s", (table_id,)).fetchone()[0]
    for field, days in ages.items():
        conn.execute(
            "INSERT INTO glaze.field_values (table_id, row_key, field, source, fetched_at, value, confidence, chosen)"
            " VALUES (%s, %s, %s, %s, now() - make_interval(days => %s), 'x', 90, true)",
            (table_id, row_key, field, source, days),
        )
    conn.execute("UPDATE glaze.tables SET status = %s WHERE table_id = %s", (TableStatus.ENRICHED, table_id))
    conn.commit()
    return table_id


def test_schedule_requests_runs_only_for_tables_with_stale_values(servers, conn, tmp_path, monkeypatch):
    monkeypatch.setenv("GLAZE_REFRESH_AFTER", "company_phone=7")
    stale = _landed(conn, tmp_path, "stale_one", {"company_name": 40, "company_email": 3, "company_phone": 8})
    _landed(conn, tmp_path, "fresh_one", {"company_name": 29, "company_phone": 6})

    instance = dg.DagsterInstance.ephemeral()
    requests = {r.partition_key: r for r in _evaluate(instance, conn)}

    assert stale in requests and "fresh_one" not in requests
    assert requests[stale].run_config["execution"] == {"config": {"in_process": {}}}  # one row: one process
    config = requests[stale].run_config["resources"]["refresh"]["config"]
    assert config == {"fields": ["company_name", "company_phone"]}  # email is 3 days old: not asked again
    assert defs.get_schedule_def(REFRESH_SCHEDULE).job_name == "enrich_table"


@pytest.fixture
def paid_world(monkeypatch, fresh_cache, fresh_ledger) -> Iterator[tuple[ApiSimulator, ApiSimulator, SiteServer]]:
    with (
        ApiSimulator("linkedin") as linkedin,
        ApiSimulator("search") as search,
        SiteServer(directory_pages(DEMO_SITES)) as site,
    ):
        for name, value in (linkedin.env() | search.env()).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("GLAZE_RESOLVE", site.resolve_spec(demo_hosts()))
        yield linkedin, search, site


@pytest.mark.slow
def test_refresh_run_asks_only_for_stale_fields_and_keeps_history(servers, conn, tmp_path, paid_world):
    linkedin, search, site = paid_world
    hosts = demo_hosts()
    fields = ["company_name", "company_employee_range"]  # the website fills the name, only LinkedIn the range
    table_id = upload_file(conn, write_table(tmp_path / "aging.csv", [f"https://{h}" for h in hosts]), fields=fields)
    conn.commit()
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tables", [table_id.table_id])
    job = defs.resolve_job_def("enrich_table")
    assert job.execute_in_process(instance=instance, partition_key=table_id.table_id).success
    before = (linkedin.count(200), search.count(200), sum(site.hits.values()))
    landed_before = conn.execute(
        "SELECT row_key, company_employee_range, enriched_at FROM glaze.records WHERE table_id = %s ORDER BY 1",
        (table_id.table_id,),
    ).fetchall()
    conn.execute(  # the LinkedIn answers are 40 days old; the names are fresh
        "UPDATE glaze.field_values SET fetched_at = fetched_at - interval '40 days'"
        " WHERE table_id = %s AND field = 'company_employee_range'",
        (table_id.table_id,),
    )
    conn.commit()

    (request,) = [r for r in _evaluate(instance, conn) if r.partition_key == table_id.table_id]
    assert request.run_config["resources"]["refresh"]["config"] == {"fields": ["company_employee_range"]}
    refreshed = job.execute_in_process(
        instance=instance, partition_key=request.partition_key, run_config=request.run_config
    )

    assert refreshed.success
    assert linkedin.count(200) == before[0] + len(hosts)  # asked again past the cache and the ledger…
    assert (search.count(200), sum(site.hits.values())) == before[1:]  # …and nobody else was asked anything
    history = conn.execute(
        "SELECT row_key, count(*), count(*) FILTER (WHERE chosen) FROM glaze.field_values"
        " WHERE table_id = %s AND field = 'company_employee_range' GROUP BY row_key",
        (table_id.table_id,),
    ).fetchall()
    assert {(n, chosen) for _, n, chosen in history} == {(2, 1)}  # the old answer kept, the new one chosen
    landed_after = conn.execute(
        "SELECT row_key, company_employee_range, enriched_at FROM glaze.records WHERE table_id = %s ORDER BY 1",
        (table_id.table_id,),
    ).fetchall()
    assert landed_after == landed_before  # same answers: no value rewritten, enriched_at unchanged
    assert table_id.table_id not in {r.partition_key for r in _evaluate(instance, conn)}  # nothing stale any more


def test_glaze_refresh_dry_run_prints_the_price_and_asks_nobody(servers, conn, tmp_path, monkeypatch, fresh_ledger):
    table_id = _landed(conn, tmp_path, "dry_refresh", {"company_employee_range": 40}, source="linkedin")
    with ApiSimulator("linkedin") as linkedin:
        for name, value in linkedin.env().items():
            monkeypatch.setenv(name, value)
        result = CliRunner().invoke(main, ["refresh", table_id, "--older-than", "30d", "--dry-run"])
        assert result.exit_code == 0, result.output
        assert linkedin.count(200) == 0
    assert f"table {table_id}: 1 values of company_employee_range are stale" in result.output
    assert "Estimated cost at most $0.0100" in result.output  # one row, bought again at LinkedIn's price
    assert f"glaze refresh {table_id} --fields company_employee_range" in result.output
    nothing = CliRunner().invoke(main, ["refresh", table_id, "--older-than", "60d", "--dry-run"])
    assert "nothing to refresh" in nothing.output
