"""One asset per provider, built from the waterfall order: each sees only what is still missing upstream."""

from collections.abc import Sequence
from typing import Any

import dagster as dg
import polars as pl

from glaze_pipeline.config import load_waterfall_order
from glaze_pipeline.core import aio
from glaze_pipeline.core.intake.tables import table_info
from glaze_pipeline.core.model.provider import BreakerState, LimiterMode
from glaze_pipeline.core.pipeline.stage import StageStats
from glaze_pipeline.core.pipeline.waterfall import TableWork, run_provider_stage
from glaze_pipeline.core.storage.ledger import record_stage
from glaze_pipeline.defs.refresh.resources import RefreshResource
from glaze_pipeline.defs.resources import TABLES, BudgetResource, ProgressResource, RuntimeResource

# A step retry re-runs the whole stage, but every row already answered comes back from the
# cache or the ledger for free, and row failures are statuses (not exceptions), so they never
# trigger it: paid calls are retried only inside the provider, never multiplied by this.
STEP_RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def candidates_asset_name(provider: str) -> str:
    return f"{provider}_candidates"


def stage_metadata(stats: StageStats, rows_in: int, price_usd: float, frame: pl.DataFrame) -> dict[str, Any]:
    filled = frame.filter(pl.col("status") == "filled").group_by("field").agg(pl.col("row_key").n_unique())
    metadata: dict[str, Any] = {
        "rows_in": rows_in,
        "rows_with_gaps": stats.targets,
        "cache_hits": stats.cache_hits,
        "provider_calls": stats.calls,
        "paid_calls": stats.paid_calls,
        "cost_usd": round(stats.cost_usd, 6),
        "duration_s": round(stats.duration_s, 3),
        "rows_per_s": round(stats.targets / stats.duration_s, 1) if stats.duration_s else 0.0,
        "statuses": dict(stats.statuses),
        "filled_per_field": {name: int(n) for name, n in filled.iter_rows()},
        "cache": stats.cache_note or "ok",
    }
    if price_usd > 0:
        metadata |= {
            "price_usd_per_call": price_usd,
            "ledger_hits": stats.ledger_hits,
            "http_requests": stats.requests,
            "skipped": stats.skipped or "no",
            "budget": stats.budget_note or "not reached",
            "circuit_breaker": stats.health.describe_breaker(),
            "rate_limiter": stats.health.describe_limiter(),
        }
    return metadata


def build_provider_asset(provider_name: str, upstream: Sequence[str]) -> dg.AssetsDefinition:
    """The asset for one provider; `upstream` are the provider assets before it in the waterfall."""
    ins = {"source_rows": dg.AssetIn()} | {candidates_asset_name(u): dg.AssetIn() for u in upstream}

    @dg.asset(
        name=candidates_asset_name(provider_name),
        partitions_def=TABLES,
        ins=ins,
        group_name="providers",
        kinds={"python", "polars"},
        pool=f"provider_{provider_name}",
        retry_policy=STEP_RETRY,
        description=f"Candidates from the {provider_name} provider for rows whose wanted fields are still gaps.",
    )
    def _provider_asset(
        context: dg.AssetExecutionContext,
        runtime: RuntimeResource,
        budget: BudgetResource,
        progress: ProgressResource,
        refresh: RefreshResource,
        **inputs: pl.DataFrame,
    ) -> dg.Output[pl.DataFrame]:
        rows = inputs["source_rows"]
        rt = runtime.runtime
        with rt.connection() as conn:
            work = refresh.applied(TableWork.of(table_info(conn, context.partition_key), rows))
        provider = rt.provider(provider_name)
        cache_down_before = rt.cache.degraded_reason
        if cache_down_before:
            context.log.warning(f"{provider_name}: {cache_down_before}")
        frame, stats = aio.run(
            run_provider_stage(
                rt,
                provider,
                work,
                [inputs[candidates_asset_name(u)] for u in upstream],
                run_id=context.run_id,
                limits=budget.limits,
                progress=progress.for_stage(context.log, provider_name),
            )
        )
        log_stage_warnings(context.log, stats)
        if stats.cache_note and not cache_down_before:  # Redis went away during this stage
            context.log.warning(f"{provider_name}: {stats.cache_note}")
        with rt.connection() as conn:  # what this run's stage did, for the provider_costs mart
            record_stage(conn, stats.summary(context.run_id, context.partition_key))
            conn.commit()
        return dg.Output(frame, metadata=stage_metadata(stats, rows.height, provider.price_usd, frame))

    return _provider_asset


def log_stage_warnings(log: dg.DagsterLogManager, stats: StageStats) -> None:
    """What a user should notice in the run log: a skipped provider, a budget reached, breaker or limiter trouble."""
    name = stats.provider
    log.info(f"{name}: {stats.targets} entities had gaps it can fill")
    if stats.skipped and stats.targets:
        log.warning(f"{name}: {stats.skipped}; rows it would fill are marked skipped_no_key")
    if stats.budget_note:
        log.warning(f"{name}: {stats.budget_note}; {stats.statuses['budget_exhausted']} rows budget_exhausted")
    if stats.health.breaker == BreakerState.OPEN:
        log.warning(f"{name}: circuit breaker {stats.health.describe_breaker()}")
    if stats.health.limiter == LimiterMode.LOCAL:
        log.warning(f"{name}: rate limiter {stats.health.describe_limiter()}")


def build_provider_assets(order: Sequence[str] | None = None) -> list[dg.AssetsDefinition]:
    order = list(order or load_waterfall_order())
    return [build_provider_asset(name, order[:i]) for i, name in enumerate(order)]


@dg.definitions
def defs() -> dg.Definitions:
    """The provider assets, one per entry of waterfall.toml, for the defs-folder loader."""
    return dg.Definitions(assets=build_provider_assets())
