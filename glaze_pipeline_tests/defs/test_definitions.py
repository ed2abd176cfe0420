import subprocess
import sys
from pathlib import Path

import dagster as dg
import yaml

from glaze_pipeline.config import load_waterfall_order
from glaze_pipeline.definitions import build_definitions, defs
from glaze_pipeline.defs.merge.assets import build_merge_assets
from glaze_pipeline.defs.providers.assets import build_provider_assets, candidates_asset_name
from glaze_pipeline.record_definitions import LOCATION_NAME


def test_definitions_validate_with_every_resource():
    dg.Definitions.validate_loadable(defs)
    job = defs.resolve_job_def("enrich_table")
    assert job.partitions_def is not None and job.partitions_def.name == "tables"


def test_waterfall_order_file_shapes_the_asset_chain():
    order = load_waterfall_order()
    graph = build_definitions().resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    for provider in order:
        assert candidates_asset_name(provider) in keys
    # Each provider depends on source_rows and on every provider before it.
    for i, provider in enumerate(order):
        parents = {k.to_user_string() for k in graph.get(dg.AssetKey(candidates_asset_name(provider))).parent_keys}
        assert parents == {"source_rows", *(candidates_asset_name(p) for p in order[:i])}


def test_provider_assets_declare_pools_for_instance_wide_concurrency():
    (asset,) = build_provider_assets(["website"])
    assert asset.op.pool == "provider_website"
    assert asset.op.retry_policy is not None


def test_landing_waits_for_the_blocking_check():
    _, checks = build_merge_assets()
    (spec,) = [spec for check in checks for spec in check.check_specs]
    assert spec.name == "enriched_records_fit_to_land"
    assert spec.asset_key == dg.AssetKey("enriched_records")
    assert spec.blocking
    graph = defs.resolve_asset_graph()
    assert dg.AssetKey("enriched_records") in graph.get(dg.AssetKey("landed_records")).parent_keys


def test_the_record_location_serves_the_requests_and_the_main_one_does_not():
    """One place per concept: enrich_record and its sensors live only in the small record location."""
    from glaze_pipeline.record_definitions import defs as record_defs

    dg.Definitions.validate_loadable(record_defs)
    assert record_defs.resolve_job_def("enrich_record").executor_def.name == "in_process"
    record_sensors = {s.name for s in record_defs.get_repository_def().sensor_defs}
    assert record_sensors == {"queued_requests_sensor", "failed_request_runs_sensor"}
    assert not {j.name for j in defs.resolve_all_job_defs()} & {"enrich_record"}
    assert not {s.name for s in defs.get_repository_def().sensor_defs} & record_sensors


def test_workspace_lists_both_locations():
    workspace = yaml.safe_load((Path(__file__).resolve().parents[2] / "workspace.yaml").read_text())
    modules = {e["python_module"]["module_name"]: e["python_module"]["location_name"] for e in workspace["load_from"]}
    assert modules == {
        "glaze_pipeline.definitions": "glaze_pipeline",
        "glaze_pipeline.record_definitions": LOCATION_NAME,
    }


def test_a_record_run_process_imports_neither_dbt_nor_the_provider_sdks_nor_scrapy():
    """What an enrich_record run imports before its op starts: none of the heavy libraries it does not use."""
    probe = (
        "import sys, glaze_pipeline.record_definitions; "
        "heavy = ('dagster_dbt', 'dbt', 'anthropic', 'scrapy', 'extruct', 'sqlalchemy', 'alembic', 'duckdb'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
