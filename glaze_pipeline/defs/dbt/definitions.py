"""The dbt domain's definitions beside its assets: the sensor that refreshes the marts after a table lands, a job
that refreshes them now, and the dbt CLI resource."""

from __future__ import annotations

import dagster as dg

from glaze_pipeline.defs.dbt.project import dbt_cli

REFRESH_MARTS_JOB = "refresh_marts"
MARTS_SENSOR = "refresh_marts_after_landing"


@dg.definitions
def defs() -> dg.Definitions:
    from glaze_pipeline.defs.dbt.assets import sql_models

    refresh_marts = dg.define_asset_job(
        REFRESH_MARTS_JOB,
        selection=dg.AssetSelection.assets(sql_models),
        description="dbt build of every model, seed and test: the marts over all landed tables, now.",
    )
    # Evaluates the models' automation condition (REFRESH_AFTER_LANDING). Named and on by default, so a deployment
    # with the daemon refreshes its marts without anyone switching a sensor on in the UI.
    after_landing = dg.AutomationConditionSensorDefinition(
        MARTS_SENSOR,
        target=dg.AssetSelection.assets(sql_models),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description="Refresh the SQL marts (one dbt build) after tables land.",
    )
    return dg.Definitions(jobs=[refresh_marts], sensors=[after_landing], resources={"dbt": dbt_cli()})
