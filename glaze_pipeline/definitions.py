"""The code location: assembles assets, checks, the table job and the sensor. Nothing here reads the environment."""

from __future__ import annotations

import dagster as dg

from glaze_pipeline.defs.dbt.definitions import build_dbt_definitions
from glaze_pipeline.defs.ingest.assets import source_rows
from glaze_pipeline.defs.ingest.sensors import ENRICH_TABLE_JOB, new_tables_sensor
from glaze_pipeline.defs.merge.assets import build_merge_assets
from glaze_pipeline.defs.providers.assets import build_provider_assets
from glaze_pipeline.defs.resources import TABLES, GlazeResource, StageIOManager


def build_definitions() -> dg.Definitions:
    provider_assets = build_provider_assets()
    merge_assets, checks = build_merge_assets()
    assets = [source_rows, *provider_assets, *merge_assets]
    enrich_table = dg.define_asset_job(
        ENRICH_TABLE_JOB,
        selection=dg.AssetSelection.assets(*assets),
        partitions_def=TABLES,
        description="Enrich one uploaded table through the provider waterfall and land it in Postgres.",
    )
    pipeline = dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=[enrich_table],
        sensors=[new_tables_sensor],
        resources={"glaze": GlazeResource(), "io_manager": StageIOManager()},
    )
    return dg.Definitions.merge(pipeline, build_dbt_definitions())


defs = build_definitions()
