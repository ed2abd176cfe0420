"""The dbt domain's definitions beside its assets: a job that refreshes every mart now, and the dbt CLI resource."""

from __future__ import annotations

import dagster as dg

from glaze_pipeline.defs.dbt.project import dbt_cli

REFRESH_MARTS_JOB = "refresh_marts"


@dg.definitions
def defs() -> dg.Definitions:
    from glaze_pipeline.defs.dbt.assets import sql_models

    refresh_marts = dg.define_asset_job(
        REFRESH_MARTS_JOB,
        selection=dg.AssetSelection.assets(sql_models),
        description="dbt build of every model, seed and test: the marts over all landed tables, now.",
    )
    return dg.Definitions(jobs=[refresh_marts], resources={"dbt": dbt_cli()})
