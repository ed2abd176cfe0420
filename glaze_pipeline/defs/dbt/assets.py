"""The dbt models, seed and tests as Dagster assets and checks, refreshed by automation after a table lands.

Why an automation condition and not a step of the table job: the marts span every uploaded table, so one
refresh serves every table that landed since the last one. Tables landing close together share one
`dbt build` instead of queueing one each, and a refresh already running holds the next one back
(`~in_progress`). A step in the partitioned table job would rebuild every mart once per table, and two tables
landing together would run two builds over the same relations at once. The condition needs the Dagster
daemon (`glaze dev`, docker compose); `glaze enrich`, which runs without it, refreshes the marts itself after
its run (runner.refresh_marts). Either way a Postgres advisory lock lets one build at a time write the marts.
"""

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from glaze_pipeline.config import scoped_env
from glaze_pipeline.core.storage import db
from glaze_pipeline.defs.dbt.project import prepare_manifest
from glaze_pipeline.defs.resources import RuntimeResource

ONE_BUILD_AT_A_TIME = 7_311_044  # pg_advisory_lock key: dbt builds of one database never overlap

# Refresh when an upstream asset (a table's landed_records, or a model before this one) updated since the last
# request, and once when the asset is first missing. Unlike AutomationCondition.eager(), it does not wait for
# every partition of landed_records to exist: a table that never landed (a dry run, a failed run) must not
# stop the marts of all the others.
REFRESH_AFTER_LANDING = (
    (dg.AutomationCondition.newly_missing() | dg.AutomationCondition.any_deps_updated()).since_last_handled()
    & ~dg.AutomationCondition.in_progress()
).with_label("refresh after a table lands")

# A seed has no upstream asset, so no landing requests it, and the models' refresh after the first landing
# would fail on a deployment where it was never built (icp_scores reads it). It is built on the condition's
# first evaluation when missing (the daemon's first tick on a new deployment; `since_last_handled` counts
# that tick as handled, so it is outside it) and when it goes missing later; a failed build is not retried
# in a loop.
SEED_WHEN_MISSING = (
    (
        (dg.AutomationCondition.initial_evaluation() & dg.AutomationCondition.missing())
        | dg.AutomationCondition.newly_missing().since_last_handled()
    )
    & ~dg.AutomationCondition.in_progress()
).with_label("build when missing")


class GlazeDbtTranslator(DagsterDbtTranslator):
    """Sources map to landed_records (their meta says so), models group by folder, and all refresh after landing."""

    def __init__(self) -> None:
        # All five glaze sources are one Dagster asset: a table's rows, values, status and paid calls are in
        # Postgres once its records have landed.
        super().__init__(DagsterDbtTranslatorSettings(enable_duplicate_source_asset_keys=True))

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        folder = dbt_resource_props["fqn"][1] if len(dbt_resource_props["fqn"]) > 2 else "marts"
        return "staging" if folder in ("staging", "intermediate") else "marts"

    def get_automation_condition(self, dbt_resource_props: Mapping[str, Any]) -> dg.AutomationCondition | None:
        return SEED_WHEN_MISSING if dbt_resource_props.get("resource_type") == "seed" else REFRESH_AFTER_LANDING


def database_environment(url: str) -> AbstractContextManager[None]:
    """PGHOST & co. from the pipeline's own database URL while dbt starts: its profile reads them."""
    return scoped_env(**db.libpq_environment(url))


BUILD_SUMMARY_PREFIX = "dbt build · "


def build_summary(run_results: Mapping[str, Any]) -> str:
    """One line a user reads in the run log: what `dbt build` ran and how it came out."""
    counts: dict[str, dict[str, int]] = {}
    for result in run_results.get("results", []):
        kind = str(result.get("unique_id", "?")).split(".", 1)[0]
        by_status = counts.setdefault(kind, {})
        by_status[str(result.get("status"))] = by_status.get(str(result.get("status")), 0) + 1
    parts = [f"{kind}: " + ", ".join(f"{n} {s}" for s, n in sorted(st.items())) for kind, st in sorted(counts.items())]
    return BUILD_SUMMARY_PREFIX + " · ".join(parts)


PROJECT = prepare_manifest()


@dbt_assets(
    manifest=PROJECT.manifest_path,
    project=PROJECT,
    dagster_dbt_translator=GlazeDbtTranslator(),
    name="sql_models",
)
def sql_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, runtime: RuntimeResource) -> Iterator[Any]:
    """`dbt build` of the selected models: staging views, marts, the ICP seed, and their data and unit tests."""
    url = runtime.runtime.database_url  # the pipeline's database, migrated
    with db.advisory_lock(url, ONE_BUILD_AT_A_TIME):
        with database_environment(url):
            invocation = dbt.cli(["build"], context=context)
        yield from invocation.stream()
        context.log.info(build_summary(invocation.get_artifact("run_results.json")))
