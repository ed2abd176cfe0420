"""`enriched_records` (merged, validated row by row), its blocking table check, and `landed_records`."""

import time
from collections.abc import Sequence
from typing import Any

import dagster as dg
import polars as pl
import psycopg

from glaze_pipeline.config import load_waterfall_order
from glaze_pipeline.core.intake.tables import TableStatus, set_status, table_info
from glaze_pipeline.core.pipeline.coverage import coverage_notes, field_coverage, provider_fields
from glaze_pipeline.core.pipeline.report import table_report
from glaze_pipeline.core.pipeline.runtime import Runtime
from glaze_pipeline.core.pipeline.validation import check_table
from glaze_pipeline.core.pipeline.waterfall import REJECT_COLUMN, TableWork, land_work, merged_and_validated
from glaze_pipeline.core.storage.landing import landed_values, table_hash
from glaze_pipeline.defs.providers.assets import candidates_asset_name
from glaze_pipeline.defs.resources import TABLES, RuntimeResource


def fit_to_land(enriched_records: pl.DataFrame, max_reject_rate: float) -> dg.AssetCheckResult:
    """The blocking check's verdict: the schema holds and the reject rate is under the limit."""
    rejected = int(enriched_records[REJECT_COLUMN].is_not_null().sum())
    verdict = check_table(enriched_records.drop(REJECT_COLUMN), rejected, max_reject_rate)
    return dg.AssetCheckResult(
        passed=verdict.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "rows": verdict.rows,
            "rejected_rows": verdict.rejected_rows,
            "reject_rate": round(verdict.reject_rate, 4),
            "problems": "; ".join(verdict.problems) or "none",
        },
    )


def build_merge_assets(
    order: Sequence[str] | None = None,
) -> tuple[list[dg.AssetsDefinition], list[dg.AssetChecksDefinition]]:
    order = list(order or load_waterfall_order())
    provider_ins = {candidates_asset_name(p): dg.AssetIn() for p in order}

    @dg.asset(
        partitions_def=TABLES,
        ins={"source_rows": dg.AssetIn()} | provider_ins,
        group_name="merge",
        kinds={"polars", "pandera"},
    )
    def enriched_records(
        context: dg.AssetExecutionContext, runtime: RuntimeResource, **inputs: pl.DataFrame
    ) -> dg.Output[pl.DataFrame]:
        """The best value per (row, field) across the waterfall, checked row by row with pandera.

        Cells that fail validation are cleared and explained (column reject_reasons), never dropped silently.
        """
        rt = runtime.runtime
        with rt.connection() as conn:
            work = TableWork.of(table_info(conn, context.partition_key), inputs["source_rows"])
            landed = landed_values(conn, work.table_id) if work.carried else None
        frames = [inputs[candidates_asset_name(p)] for p in order]
        fills = provider_fields(rt.providers())
        records, metadata = merged_and_validated(work, frames, order, rt.settings.min_confidence, fills, landed)
        return dg.Output(records, metadata=metadata)

    @dg.asset_check(
        asset=enriched_records,
        blocking=True,
        description="Schema holds and the reject rate is under the limit.",
    )
    def enriched_records_fit_to_land(runtime: RuntimeResource, enriched_records: pl.DataFrame) -> dg.AssetCheckResult:
        return fit_to_land(enriched_records, runtime.runtime.settings.max_reject_rate)

    @dg.asset(
        partitions_def=TABLES,
        ins={"source_rows": dg.AssetIn(), "enriched_records": dg.AssetIn()} | provider_ins,
        group_name="merge",
        kinds={"postgres"},
    )
    def landed_records(
        context: dg.AssetExecutionContext, runtime: RuntimeResource, **inputs: pl.DataFrame
    ) -> dg.MaterializeResult:
        """Upsert the checked records, every candidate (the audit trail) and rejects into Postgres (glaze.records & co).

        The metadata is the table's picture: coverage by field and cost by provider (a table, and numbers
        Dagster plots across partitions).
        """
        rt = runtime.runtime
        with rt.connection() as conn:
            work = TableWork.of(table_info(conn, context.partition_key), inputs["source_rows"])
            candidates = pl.concat([work.hints, *(inputs[candidates_asset_name(p)] for p in order)])
            metadata = land_table(conn, work, context.run_id, inputs["enriched_records"], candidates)
            metadata |= picture(conn, rt, work)
        return dg.MaterializeResult(metadata=metadata)

    return [enriched_records, landed_records], [enriched_records_fit_to_land]


def land_table(
    conn: psycopg.Connection, work: TableWork, run_id: str, records: pl.DataFrame, candidates: pl.DataFrame
) -> dict[str, Any]:
    """Land one table's records in one transaction and mark it enriched; returns what a user reads in the UI."""
    started = time.monotonic()
    table_id = work.table_id
    stats = land_work(conn, work, records, candidates)
    fingerprint = table_hash(conn, table_id)
    set_status(conn, table_id, TableStatus.ENRICHED, run_id)
    conn.commit()
    return {
        "records_written": stats.records_written,
        "records_unchanged": stats.records_unchanged,
        "field_values_added": stats.field_values_added,
        "rejects": stats.rejects_written,
        "table_hash": fingerprint,
        "duration_s": round(time.monotonic() - started, 3),
        "query": f"SELECT * FROM glaze.records WHERE table_id = '{table_id}'",
    }


def picture(conn: psycopg.Connection, runtime: Runtime, work: TableWork) -> dict[str, Any]:
    """Coverage by field and cost by provider: a markdown table, and numbers Dagster plots across partitions."""
    providers = runtime.providers()
    entity_types = work.rows["entity_type"].unique().to_list()
    coverage = field_coverage(providers, work.wanted, entity_types, set(work.hints["field"].to_list()))
    notes = {c.field: c.why for c in coverage if c.why}
    report = table_report(conn, work.table_id, {p.name: p.price_usd for p in providers}, notes)
    metadata: dict[str, Any] = {
        "picture": dg.MetadataValue.md(report.markdown()),
        "coverage_pct": dg.MetadataValue.float(round(report.coverage_percent, 2)),
        "table_cost_usd": dg.MetadataValue.float(round(report.cost_usd, 6)),
        "fields_no_provider_fills": ", ".join(coverage_notes(coverage)) or "none",
    }
    for line in report.fields:
        metadata[f"filled_pct_{line.field}"] = dg.MetadataValue.float(round(line.percent, 2))
    for provider in report.providers:
        metadata[f"cost_usd_{provider.provider}"] = dg.MetadataValue.float(round(provider.cost_usd, 6))
    return metadata


@dg.definitions
def defs() -> dg.Definitions:
    """The merge assets and their blocking check, for the defs-folder loader."""
    assets, checks = build_merge_assets()
    return dg.Definitions(assets=assets, asset_checks=checks)
