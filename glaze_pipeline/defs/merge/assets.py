"""`enriched_records` (merged, validated row by row), its blocking table check, and `landed_records`."""

import time
from collections.abc import Sequence

import dagster as dg
import polars as pl

from glaze_pipeline.config import load_waterfall_order
from glaze_pipeline.core.intake.tables import TableStatus, set_status, table_info
from glaze_pipeline.core.model.status import Status
from glaze_pipeline.core.pipeline.gaps import hint_candidates
from glaze_pipeline.core.pipeline.merge import merge
from glaze_pipeline.core.pipeline.validation import check_table, validate_records
from glaze_pipeline.core.storage.landing import land, table_hash
from glaze_pipeline.defs.providers.assets import candidates_asset_name
from glaze_pipeline.defs.resources import TABLES, GlazeResource

REJECT_COLUMN = "reject_reasons"


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
        context: dg.AssetExecutionContext, glaze: GlazeResource, **inputs: pl.DataFrame
    ) -> dg.Output[pl.DataFrame]:
        """The best value per (row, field) across the waterfall, checked row by row with pandera.

        Cells that fail validation are cleared and explained (column reject_reasons), never dropped silently.
        """
        rows = inputs["source_rows"]
        with glaze.connection() as conn:
            info = table_info(conn, context.partition_key)
        hints = hint_candidates(rows, info.hint_fields, info.created_at)
        frames = [hints, *(inputs[candidates_asset_name(p)] for p in order)]
        merged = merge(rows, info.wanted_fields, frames, order)
        result = validate_records(merged)
        reasons = dict(result.rejects.iter_rows())
        records = result.records.with_columns(
            pl.col("row_key").replace_strict(reasons, default=None, return_dtype=pl.String).alias(REJECT_COLUMN)
        )
        filled = {f: int(records[f].is_not_null().sum()) for f in info.wanted_fields}
        return dg.Output(
            records,
            metadata={
                "rows": records.height,
                "filled_per_field": filled,
                "rows_fully_filled": int((records["status"] == Status.FILLED.value).sum()),
                "rejected_rows": result.rejects.height,
                "cost_usd": round(float(records["cost_usd"].sum()), 6),
            },
        )

    @dg.asset_check(
        asset=enriched_records,
        blocking=True,
        description="Schema holds and the reject rate is under the limit.",
    )
    def enriched_records_fit_to_land(glaze: GlazeResource, enriched_records: pl.DataFrame) -> dg.AssetCheckResult:
        rejected = int(enriched_records[REJECT_COLUMN].is_not_null().sum())
        verdict = check_table(enriched_records.drop(REJECT_COLUMN), rejected, glaze.settings.max_reject_rate)
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

    @dg.asset(
        partitions_def=TABLES,
        ins={"enriched_records": dg.AssetIn()} | provider_ins,
        group_name="merge",
        kinds={"postgres"},
    )
    def landed_records(
        context: dg.AssetExecutionContext, glaze: GlazeResource, **inputs: pl.DataFrame
    ) -> dg.MaterializeResult:
        """Upsert the checked records, their candidates and rejects into Postgres (glaze.records & co)."""
        started = time.monotonic()
        records = inputs["enriched_records"]
        rejects = records.filter(pl.col(REJECT_COLUMN).is_not_null()).select(
            "row_key", pl.col(REJECT_COLUMN).alias("reasons")
        )
        candidates = pl.concat([inputs[candidates_asset_name(p)] for p in order])
        with glaze.connection() as conn:
            stats = land(conn, context.partition_key, records.drop(REJECT_COLUMN), candidates, rejects)
            fingerprint = table_hash(conn, context.partition_key)
            set_status(conn, context.partition_key, TableStatus.ENRICHED, context.run_id)
            conn.commit()
        return dg.MaterializeResult(
            metadata={
                "records_written": stats.records_written,
                "records_unchanged": stats.records_unchanged,
                "field_values_added": stats.field_values_added,
                "rejects": stats.rejects_written,
                "table_hash": fingerprint,
                "duration_s": round(time.monotonic() - started, 3),
                "query": f"SELECT * FROM glaze.records WHERE table_id = '{context.partition_key}'",
            }
        )

    return [enriched_records, landed_records], [enriched_records_fit_to_land]
