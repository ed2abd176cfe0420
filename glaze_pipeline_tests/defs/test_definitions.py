import dagster as dg

from glaze_pipeline.config import load_waterfall_order
from glaze_pipeline.definitions import build_definitions, defs
from glaze_pipeline.defs.merge.assets import build_merge_assets
from glaze_pipeline.defs.providers.assets import build_provider_assets, candidates_asset_name


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
