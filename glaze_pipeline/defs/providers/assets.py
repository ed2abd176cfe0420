"""One asset per provider, built from the waterfall order: each sees only what is still missing upstream."""

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC

import dagster as dg
import polars as pl

from glaze_pipeline.config import load_waterfall_order
from glaze_pipeline.core.providers.registry import build_provider
from glaze_pipeline.core.tables import table_info
from glaze_pipeline.core.waterfall import gap_targets, hint_candidates, run_provider
from glaze_pipeline.defs.resources import TABLES, GlazeResource

PROGRESS_EVERY_S = 2.0


def candidates_asset_name(provider: str) -> str:
    return f"{provider}_candidates"


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
        retry_policy=dg.RetryPolicy(
            max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
        ),
        description=f"Candidates from the {provider_name} provider for rows whose wanted fields are still gaps.",
    )
    def _provider_asset(
        context: dg.AssetExecutionContext, glaze: GlazeResource, **inputs: pl.DataFrame
    ) -> dg.Output[pl.DataFrame]:
        rows = inputs["source_rows"]
        with glaze.connection() as conn:
            info = table_info(conn, context.partition_key)
        settings = glaze.settings
        provider = build_provider(provider_name, settings, glaze.database_url)
        hints = hint_candidates(rows, info.hint_fields, info.created_at.astimezone(UTC))
        upstream_frames = [hints, *(inputs[candidates_asset_name(u)] for u in upstream)]
        targets = gap_targets(rows, info.wanted_fields, upstream_frames, provider, settings.min_confidence)
        context.log.info(f"{provider_name}: {len(targets)} of {rows.height} entities have gaps it can fill")

        last_report = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if done == total or now - last_report[0] >= PROGRESS_EVERY_S:
                last_report[0] = now
                context.log.info(f"{provider_name}: {done}/{total} rows")

        cache = glaze.cache()
        if cache.degraded_reason:
            context.log.warning(f"{provider_name}: {cache.degraded_reason}")
        unavailable = getattr(provider, "unavailable_reason", None)
        if unavailable and targets:
            context.log.warning(f"{provider_name}: {unavailable}")
        frame, stats = asyncio.run(run_provider(provider, targets, cache, progress=progress))
        filled = frame.filter(pl.col("status") == "filled").group_by("field").agg(pl.col("row_key").n_unique())
        return dg.Output(
            frame,
            metadata={
                "rows_in": rows.height,
                "rows_with_gaps": stats.targets,
                "cache_hits": stats.cache_hits,
                "provider_calls": stats.calls,
                "paid_calls": stats.calls if provider.price_usd > 0 else 0,
                "cost_usd": round(stats.cost_usd, 6),
                "duration_s": round(stats.duration_s, 3),
                "rows_per_s": round(stats.targets / stats.duration_s, 1) if stats.duration_s else 0.0,
                "statuses": dict(stats.statuses),
                "filled_per_field": {name: int(n) for name, n in filled.iter_rows()},
                "cache": stats.cache_note or "ok",
                "provider": unavailable or "ok",
            },
        )

    return _provider_asset


def build_provider_assets(order: Sequence[str] | None = None) -> list[dg.AssetsDefinition]:
    order = list(order or load_waterfall_order())
    return [build_provider_asset(name, order[:i]) for i, name in enumerate(order)]
