"""Dry run: how many rows each provider would be called for, and what that would cost, with no paid call.

Free providers really run (their answers land in the cache, so the real run that
follows sees exactly the same gaps). A paid provider is only looked up in the
cache and the ledger. Rows it would have to call are "uncertain" from then on:
later providers count them as calls whatever the cache says, because the unknown
answer could change what they ask, and their cached answers are not used as
upstream values. So the estimate is exact for the first paid provider and an
upper bound for the ones after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from glaze_pipeline.core.model.candidates import attempts_to_frame
from glaze_pipeline.core.model.provider import Provider
from glaze_pipeline.core.pipeline.gaps import gap_targets
from glaze_pipeline.core.pipeline.stage import run_stage
from glaze_pipeline.core.storage.cache import ProviderCache, decode_attempt, request_hash
from glaze_pipeline.core.storage.ledger import Ledger


@dataclass(frozen=True)
class StageEstimate:
    provider: str
    price_usd: float
    rows_with_gaps: int
    cached: int  # answered by the cache or the ledger: free
    calls: int  # rows the provider would be called for
    note: str = ""

    @property
    def cost_usd(self) -> float:
        return self.calls * self.price_usd


async def estimate_waterfall(
    rows: pl.DataFrame,
    wanted: Sequence[str],
    hints: pl.DataFrame,
    providers: Sequence[Provider],
    cache: ProviderCache,
    ledger: Ledger | None,
    *,
    min_confidence: int,
    ttl_s: int,
    negative_ttl_s: int,
) -> list[StageEstimate]:
    upstream = [hints]
    uncertain: set[str] = set()
    estimates: list[StageEstimate] = []
    for provider in providers:
        targets = gap_targets(rows, wanted, upstream, provider, min_confidence)
        if provider.price_usd <= 0:
            frame, stats = await run_stage(provider, targets, cache, wanted=wanted)
            upstream.append(frame)
            estimates.append(
                StageEstimate(provider.name, 0.0, len(targets), stats.cache_hits, stats.calls, "free: ran for real")
            )
            continue
        keys = {t.row_key: cache.key(provider.name, provider.version, provider.request_key(t)) for t in targets}
        payloads = cache.get_many(list(keys.values()))
        answers = {t.row_key: payloads[keys[t.row_key]] for t in targets if keys[t.row_key] in payloads}
        if ledger is not None:
            hashes = {t.row_key: request_hash(provider.request_key(t)) for t in targets if t.row_key not in answers}
            stored = ledger.answers(provider.name, provider.version, list(hashes.values()), ttl_s, negative_ttl_s)
            answers |= {key: stored[h] for key, h in hashes.items() if h in stored}
        unavailable = provider.unavailable
        certain = {t.row_key for t in targets if t.row_key in answers and t.row_key not in uncertain}
        upstream.append(attempts_to_frame([decode_attempt(k, answers[k]) for k in certain], provider.name, wanted))
        if unavailable:
            calls, note = 0, unavailable
        else:
            would_call = {t.row_key for t in targets} - certain
            calls, note = len(would_call), ""
            uncertain |= would_call
        estimates.append(StageEstimate(provider.name, provider.price_usd, len(targets), len(certain), calls, note))
    return estimates
