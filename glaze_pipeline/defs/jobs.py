"""The jobs: `enrich_table` runs one uploaded table (one partition) through the whole waterfall."""

from __future__ import annotations

import dagster as dg

from glaze_pipeline.defs.execution import forkserver_execution
from glaze_pipeline.defs.resources import TABLES

ENRICH_TABLE_JOB = "enrich_table"
WATERFALL_GROUPS = ("ingest", "providers", "merge")

enrich_table = dg.define_asset_job(
    ENRICH_TABLE_JOB,
    selection=dg.AssetSelection.groups(*WATERFALL_GROUPS),
    partitions_def=TABLES,
    description="Enrich one uploaded table through the provider waterfall and land it in Postgres.",
    # Launchpad and backfills: forkserver processes (imported once); the sensor and the refresh schedule pick
    # in-process for small tables (defs/execution.py).
    config={"execution": forkserver_execution()},
)
