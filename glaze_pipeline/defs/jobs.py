"""The jobs: `enrich_table` runs one uploaded table (one partition) through the whole waterfall."""

from __future__ import annotations

import dagster as dg

from glaze_pipeline.defs.resources import TABLES

ENRICH_TABLE_JOB = "enrich_table"


def enrich_table_job(assets: list[dg.AssetsDefinition]) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        ENRICH_TABLE_JOB,
        selection=dg.AssetSelection.assets(*assets),
        partitions_def=TABLES,
        description="Enrich one uploaded table through the provider waterfall and land it in Postgres.",
    )
