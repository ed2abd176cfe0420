"""The dbt models as Dagster assets: landed tables refresh them, `dbt build` passes on real Postgres."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from glaze_pipeline.config import PACKAGE_DIR
from glaze_pipeline.core.intake.tables import TableStatus
from glaze_pipeline.core.intake.uploads import upload_file
from glaze_pipeline.definitions import defs
from glaze_pipeline.defs.dbt.assets import sql_models
from glaze_pipeline.defs.dbt.definitions import MARTS_SENSOR, REFRESH_MARTS_JOB
from glaze_pipeline.defs.dbt.project import DBT_PROJECT_DIR
from glaze_pipeline.sandbox.apis import ApiSimulator
from glaze_pipeline.sandbox.sites import demo_hosts
from glaze_pipeline_tests.helpers import write_table

FIELDS = [
    "company_name",
    "company_country",
    "company_founded_year",
    "company_linkedin",
    "company_industry",
    "company_employee_range",
]
DBT_KEYS = set(sql_models.keys)
ICP_SEED = dg.AssetKey(["glaze_marts", "icp_criteria"])


def _requested(instance: dg.DagsterInstance, cursor: object) -> tuple[set[dg.AssetKey], object]:
    """One tick of the automation sensor, as the daemon would run it: what it would launch, and its cursor."""
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
    keys = defs.resolve_asset_graph().get_all_asset_keys()
    return {key for key in keys if result.get_requested_partitions(key)}, result.cursor


def _run_results(run_id: str) -> dict:
    """run_results.json of the run's dbt invocation (dagster-dbt gives each one a target folder named after it)."""
    (path,) = (DBT_PROJECT_DIR / "target").glob(f"sql_models-{run_id[:7]}-*/run_results.json")
    return json.loads(path.read_text())


@pytest.fixture
def linkedin_api(monkeypatch: pytest.MonkeyPatch, fresh_ledger: None):
    """The LinkedIn data API simulator: industry and size come only from it."""
    with ApiSimulator("linkedin", api_key="test-key") as sim:
        for name, value in sim.env().items():
            monkeypatch.setenv(name, value)
        yield sim


@pytest.mark.slow  # runs the whole table job, then dbt build
def test_a_landed_table_refreshes_the_marts_and_dbt_build_passes(servers, conn, demo_site, linkedin_api, tmp_path):
    hosts = demo_hosts()
    path = write_table(tmp_path / "icp_leads.csv", [f"https://{h}" for h in hosts])
    table_id = upload_file(conn, path, fields=FIELDS, status=TableStatus.RUNNING).table_id
    conn.commit()
    instance = dg.DagsterInstance.ephemeral()

    first, cursor = _requested(instance, None)  # the daemon's first tick on a new deployment
    assert first == {ICP_SEED}  # the seed, which no landing would ever request, is built first
    seeded = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection={ICP_SEED})
    assert seeded.execute_in_process(instance=instance).success
    instance.add_dynamic_partitions("tables", [table_id])
    landed = defs.resolve_job_def("enrich_table").execute_in_process(instance=instance, partition_key=table_id)
    assert landed.success
    after_landing, cursor = _requested(instance, cursor)
    assert after_landing == DBT_KEYS - {ICP_SEED}  # every model is refreshed after the landing; the seed has no deps

    # What the daemon would launch: exactly that selection, which must build on a deployment seeded as above.
    refresh = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection=after_landing)
    refreshed = refresh.execute_in_process(instance=instance)
    assert refreshed.success
    materialized = {e.asset_key for e in refreshed.get_asset_materialization_events()}
    assert materialized == DBT_KEYS - {ICP_SEED}
    checks = refreshed.get_asset_check_evaluations()
    assert len(checks) >= 50 and all(c.passed for c in checks), [c.check_name for c in checks if not c.passed]
    results = _run_results(refreshed.run_id)["results"]
    unit_tests = {r["unique_id"]: r["status"] for r in results if r["unique_id"].startswith("unit_test.")}
    assert unit_tests == {
        "unit_test.glaze.icp_scores.icp_scores_add_the_points_of_what_each_company_matches": "pass",
        "unit_test.glaze.icp_scores.icp_scores_never_pass_100": "pass",
    }
    nothing_new, _ = _requested(instance, cursor)
    assert nothing_new == set()  # refreshed: the next tick launches nothing

    companies = conn.execute(
        "SELECT c.normalized_url, c.name, c.industry, c.industry_source, c.employees_low, s.icp_score, s.reasons"
        " FROM glaze_marts.companies c JOIN glaze_marts.icp_scores s USING (normalized_url)"
        " WHERE c.table_ids LIKE %s ORDER BY s.icp_score DESC",
        (f"%{table_id}%",),
    ).fetchall()
    records = conn.execute(
        "SELECT normalized_url, company_name, company_industry FROM glaze.records WHERE table_id = %s", (table_id,)
    ).fetchall()
    assert {(url, name, industry) for url, name, industry, *_ in companies} == set(records)
    assert all(source == "linkedin" for *_, source, _, _, _ in companies)  # industry only the LinkedIn API knows
    assert companies[0][1] == "Northwind Robotics"  # robotics, Berlin, 85 people, 2016: the example profile's best
    assert companies[0][6].startswith("+25 ")

    coverage = dict(
        conn.execute(
            "SELECT field, rows_filled FROM glaze_marts.field_coverage WHERE table_id = %s", (table_id,)
        ).fetchall()
    )
    filled = conn.execute(
        "SELECT " + ", ".join(f"count({f})" for f in FIELDS) + " FROM glaze.records WHERE table_id = %s", (table_id,)
    ).fetchone()
    assert coverage == dict(zip(FIELDS, filled, strict=True))

    costs = conn.execute(
        "SELECT provider, calls, paid_calls, cost_usd FROM glaze_marts.provider_costs WHERE table_id = %s",
        (table_id,),
    ).fetchall()
    ledger = conn.execute(
        "SELECT provider, count(*) FILTER (WHERE cost_usd > 0), sum(cost_usd) FROM glaze.provider_calls"
        " WHERE table_id = %s GROUP BY provider",
        (table_id,),
    ).fetchall()
    assert {(p, paid, cost) for p, _, paid, cost in costs if cost} == set(ledger)  # money equals the ledger
    assert {p: calls for p, calls, *_ in costs}["website"] == len(hosts)

    conn.rollback()  # this test's reads hold locks that dbt's rebuild of the marts would wait for
    whole = defs.resolve_job_def(REFRESH_MARTS_JOB).execute_in_process(instance=instance)  # what `glaze enrich` runs
    assert whole.success and {e.asset_key for e in whole.get_asset_materialization_events()} == DBT_KEYS


def test_dbt_assets_hang_below_landed_records_with_tests_as_checks():
    sensor = defs.resolve_sensor_def(MARTS_SENSOR)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING  # the daemon refreshes marts untouched
    graph = defs.resolve_asset_graph()
    staging = dg.AssetKey(["glaze_staging", "stg_records"])
    assert graph.get(staging).parent_keys == {dg.AssetKey("landed_records")}
    assert ICP_SEED in graph.get(dg.AssetKey(["glaze_marts", "icp_scores"])).parent_keys
    check_names = {key.name for key in sql_models.check_keys}
    assert "unique_companies_normalized_url" in check_names
    assert any(name.startswith("accepted_values_stg_records_status") for name in check_names)


@pytest.mark.slow  # loads the code location in a fresh interpreter
def test_dg_check_defs_passes_with_the_dbt_assets_loaded():
    """What CI runs (`make check-defs`): the code location loads from defs/, the dbt manifest included."""
    dg_cli = Path(sys.executable).with_name("dg")
    env = os.environ | {"VIRTUAL_ENV": sys.prefix}
    result = subprocess.run(
        [str(dg_cli), "check", "defs"], cwd=PACKAGE_DIR.parent, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All definitions loaded successfully" in result.stdout + result.stderr
