"""The dbt domain's definitions: the models as assets, a job that refreshes them, and the dbt CLI resource."""

from __future__ import annotations

import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from glaze_pipeline.defs.dbt.assets import PROJECT, sql_models

REFRESH_MARTS_JOB = "refresh_marts"
# dbt-core is a dependency of this package, so its executable sits beside this interpreter, PATH or not.
DBT_EXECUTABLE = Path(sys.executable).with_name("dbt")


def build_dbt_definitions() -> dg.Definitions:
    refresh_marts = dg.define_asset_job(
        REFRESH_MARTS_JOB,
        selection=dg.AssetSelection.assets(sql_models),
        description="dbt build of every model, seed and test: the marts over all landed tables, now.",
    )
    return dg.Definitions(
        assets=[sql_models],
        jobs=[refresh_marts],
        resources={"dbt": DbtCliResource(project_dir=PROJECT, dbt_executable=str(DBT_EXECUTABLE))},
    )
