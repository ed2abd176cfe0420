"""Dry run: how many rows each provider would be called for, and what that would cost, with no paid call.

Free providers really run (their answers land in the cache, so the real run that
follows sees exactly the same gaps). A paid provider is only looked up in the
cache and the ledger. Rows it would have to call are "uncertain" from then on:
later providers count them as calls whatever the cache says, because the unknown
answer could change what they ask, and their cached answers are not used as
upstream values. So the estimate is exact for the first paid provider and an
upper bound for the ones after it. Each call is priced at what the budget would
reserve for it (`Provider.max_cost_usd`): per token for the LLM, with a full
evidence budget assumed for rows whose evidence an unpaid call could still grow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import polars as pl

from glaze_pipeline.core.model.candidates import Evidence, attempts_to_frame
from glaze_pipeline.core.model.provider import Provider, Target
from glaze_pipeline.core.pipeline.runtime import Runtime
from glaze_pipeline.core.pipeline.waterfall import TableWork, run_provider_stage
from glaze_pipeline.core.storage.cache import decode_attempt, request_hash
from glaze_pipeline.core.storage.ledger import Ledger

FULL_EVIDENCE = Evidence("https://unknown.example/", "x" * 12_000)  # the LLM's evidence budget, filled


@dataclass(frozen=True)
class StageEstimate:
    provider: str
    price_usd: float  # per call: the most one call can cost, on average over the calls counted
    rows_with_gaps: int
    cached: int  # answered by the cache or the ledger: free
    calls: int  # rows the provider would be called for
    note: str = ""
    cost_usd: float = 0.0  # at most: the sum of each call's upper bound


async def estimate_waterfall(runtime: Runtime, work: TableWork) -> list[StageEstimate]:
    """Per provider in waterfall order: rows with gaps, free answers, calls it would make, and their price."""
    upstream: list[pl.DataFrame] = []
    uncertain: set[str] = set()
    estimates: list[StageEstimate] = []
    ledger = Ledger(runtime.database_url, run_id="dry-run", table_id=work.table_id)
    try:
        for provider in runtime.providers():
            if provider.price_usd <= 0:
                frame, stats = await run_provider_stage(runtime, provider, work, upstream, run_id="dry-run")
                upstream.append(frame)
                estimates.append(
                    StageEstimate(
                        provider.name, 0.0, stats.targets, stats.cache_hits, stats.calls, "free: ran for real"
                    )
                )
                continue
            targets = work.targets(provider, upstream, runtime.settings.min_confidence)
            answers = {} if work.fresh else _known_answers(runtime, ledger, provider, targets)  # a refresh pays
            certain = {t.row_key for t in targets if t.row_key in answers and t.row_key not in uncertain}
            upstream.append(
                attempts_to_frame([decode_attempt(k, answers[k]) for k in certain], provider.name, work.asked)
            )
            would_call = set() if provider.unavailable else {t.row_key for t in targets} - certain
            cost = sum(_bound(provider, t, t.row_key in uncertain) for t in targets if t.row_key in would_call)
            uncertain |= would_call
            note = provider.unavailable or ""
            price = cost / len(would_call) if would_call else provider.price_usd
            estimates.append(
                StageEstimate(provider.name, price, len(targets), len(certain), len(would_call), note, cost)
            )
    finally:
        ledger.close()
    return estimates


def _bound(provider: Provider, target: Target, evidence_may_grow: bool) -> float:
    """The most this call can cost; with evidence an earlier unpaid call could add, as if the evidence were full."""
    if evidence_may_grow:  # a row key of its own: the provider keeps each row's real evidence by key
        target = replace(target, row_key=f"{target.row_key}#bound", evidence=(*target.evidence, FULL_EVIDENCE))
    return provider.max_cost_usd(target)


def _known_answers(runtime: Runtime, ledger: Ledger, provider: Provider, targets: Sequence[Target]) -> dict[str, bytes]:
    """Answers the cache or the ledger already holds for these targets: free in the real run too."""
    cache = runtime.cache
    keys = {t.row_key: cache.key(provider.name, provider.version, provider.request_key(t)) for t in targets}
    payloads = cache.get_many(list(keys.values()))
    answers = {t.row_key: payloads[keys[t.row_key]] for t in targets if keys[t.row_key] in payloads}
    hashes = {t.row_key: request_hash(provider.request_key(t)) for t in targets if t.row_key not in answers}
    s = runtime.settings
    stored = ledger.answers(
        provider.name, provider.version, list(hashes.values()), s.cache_ttl_s, s.negative_cache_ttl_s
    )
    return answers | {key: stored[h] for key, h in hashes.items() if h in stored}
