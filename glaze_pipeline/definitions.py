"""The code location: assembles assets, checks, the table job, the sensor and the resources. Reads no environment."""

from __future__ import annotations

import dagster as dg

from glaze_pipeline.defs.ingest.assets import source_rows
from glaze_pipeline.defs.ingest.sensors import new_tables_sensor
from glaze_pipeline.defs.jobs import enrich_table_job
from glaze_pipeline.defs.merge.assets import build_merge_assets
from glaze_pipeline.defs.providers.assets import build_provider_assets
from glaze_pipeline.defs.resources import resources


def build_definitions() -> dg.Definitions:
    provider_assets = build_provider_assets()
    merge_assets, checks = build_merge_assets()
    assets = [source_rows, *provider_assets, *merge_assets]
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=[enrich_table_job(assets)],
        sensors=[new_tables_sensor],
        resources=resources(),
    )


defs = build_definitions()
