"""One asset per provider, built from the waterfall order: each sees only what is still missing upstream."""

import time
from collections.abc import Sequence
from datetime import UTC
from typing import Any

import dagster as dg
import polars as pl

from glaze_pipeline.config import load_waterfall_order
from glaze_pipeline.core import aio
from glaze_pipeline.core.intake.tables import table_info
from glaze_pipeline.core.model.provider import BreakerState, LimiterMode
from glaze_pipeline.core.pipeline.gaps import gap_targets, hint_candidates
from glaze_pipeline.core.pipeline.stage import StageStats, run_stage
from glaze_pipeline.core.providers.registry import build_provider
from glaze_pipeline.core.storage.ledger import record_stage
from glaze_pipeline.defs.resources import TABLES, GlazeResource

PROGRESS_EVERY_S = 2.0
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
        context: dg.AssetExecutionContext, glaze: GlazeResource, **inputs: pl.DataFrame
    ) -> dg.Output[pl.DataFrame]:
        rows = inputs["source_rows"]
        with glaze.connection() as conn:
            info = table_info(conn, context.partition_key)
        settings = glaze.settings
        redis_url = glaze.redis_url()
        provider = build_provider(provider_name, settings, redis_url=redis_url, database_url=glaze.database_url)
        hints = hint_candidates(rows, info.hint_fields, info.created_at.astimezone(UTC))
        upstream_frames = [hints, *(inputs[candidates_asset_name(u)] for u in upstream)]
        targets = gap_targets(rows, info.wanted_fields, upstream_frames, provider, settings.min_confidence)
        context.log.info(f"{provider_name}: {len(targets)} of {rows.height} entities have gaps it can fill")
        unavailable = provider.unavailable
        if unavailable and targets:
            context.log.warning(f"{provider_name}: {unavailable}; rows it would fill are marked skipped_no_key")

        last_report = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if done == total or now - last_report[0] >= PROGRESS_EVERY_S:
                last_report[0] = now
                context.log.info(f"{provider_name}: {done}/{total} rows")

        cache = glaze.cache()
        if cache.degraded_reason:
            context.log.warning(f"{provider_name}: {cache.degraded_reason}")
        spending = glaze.spending(context.run_id, context.partition_key) if provider.price_usd > 0 else None
        try:
            frame, stats = aio.run(
                run_stage(provider, targets, cache, progress=progress, spending=spending, wanted=info.wanted_fields)
            )
        finally:
            if spending is not None:
                spending.ledger.close()
        with glaze.connection() as conn:
            record_stage(conn, stats.summary(context.run_id, context.partition_key))
            conn.commit()
        if stats.budget_note:
            context.log.warning(
                f"{provider_name}: {stats.budget_note}; {stats.statuses['budget_exhausted']} rows budget_exhausted"
            )
        if stats.health.breaker == BreakerState.OPEN:
            context.log.warning(f"{provider_name}: circuit breaker {stats.health.describe_breaker()}")
        if stats.health.limiter == LimiterMode.LOCAL:
            context.log.warning(f"{provider_name}: rate limiter {stats.health.describe_limiter()}")
        return dg.Output(frame, metadata=stage_metadata(stats, rows.height, provider.price_usd, frame))

    return _provider_asset


def build_provider_assets(order: Sequence[str] | None = None) -> list[dg.AssetsDefinition]:
    order = list(order or load_waterfall_order())
    return [build_provider_asset(name, order[:i]) for i, name in enumerate(order)]
