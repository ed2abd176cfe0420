"""The dbt domain's definitions: the models as assets, a job that refreshes them, and the dbt CLI resource."""

from __future__ import annotations

import dagster as dg

from glaze_pipeline.defs.dbt.assets import sql_models
from glaze_pipeline.defs.dbt.project import dbt_cli

REFRESH_MARTS_JOB = "refresh_marts"


def build_dbt_definitions() -> dg.Definitions:
    refresh_marts = dg.define_asset_job(
        REFRESH_MARTS_JOB,
        selection=dg.AssetSelection.assets(sql_models),
        description="dbt build of every model, seed and test: the marts over all landed tables, now.",
    )
    return dg.Definitions(
        assets=[sql_models],
        jobs=[refresh_marts],
        resources={"dbt": dbt_cli()},
    )
