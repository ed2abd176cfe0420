"""The waterfall: the provider protocol, gap analysis, and running one provider over its gaps with the cache.

A provider only ever sees rows that still need one of the fields it can fill,
so every later (dearer) stage runs on fewer rows than the one before.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol, Self

import polars as pl

from glaze_pipeline.core.cache import ProviderCache, decode_attempt, encode_attempt
from glaze_pipeline.core.candidates import (
    CANDIDATE_SCHEMA,
    EVIDENCE,
    Attempt,
    Evidence,
    attempts_to_frame,
    empty_candidates,
)
from glaze_pipeline.core.fields import CATALOG, SUBJECT_OF_ENTITY, EntityType, field_for_column
from glaze_pipeline.core.status import Status

INPUT_SOURCE = "input"
CHUNK_SIZE = 200  # answers are cached every chunk: the most a killed run can lose
PIPELINED_CHUNKS = 2


@dataclass(frozen=True)
class Target:
    """One entity a provider is asked about, and which of its fields are still gaps."""

    row_key: str
    entity_type: EntityType
    normalized_url: str
    missing: tuple[str, ...]
    known: dict[str, str] = field(default_factory=dict)
    # Text earlier stages gathered about this entity (page excerpts, snippets), for the LLM stage.
    evidence: tuple[Evidence, ...] = ()


class Provider(Protocol):
    name: str
    version: str  # bump when answers change shape or meaning: it is part of the cache key
    fields: frozenset[str]
    entity_types: frozenset[EntityType]
    price_usd: float  # per call; 0 for free providers

    def request_key(self, target: Target) -> str:
        """The exact request this target turns into, for the cache key."""
        ...

    async def enrich(self, targets: Sequence[Target]) -> list[Attempt]:
        """One attempt per target, in any order; a failing row is a status, never an exception.

        Called with several chunks at once; the provider enforces its own concurrency across them.
        """
        ...

    async def __aenter__(self) -> Self:
        """Open clients once per stage (connection pools, limiters)."""
        ...

    async def __aexit__(self, *exc: object) -> None: ...


def hint_candidates(rows: pl.DataFrame, hint_columns: Sequence[str], uploaded_at: datetime) -> pl.DataFrame:
    """Input columns named like catalog fields are values from source `input`, confidence 100.

    `hint_columns` are the user's column names; `rows` carries them under their catalog names.
    """
    frames = []
    for column in hint_columns:
        name = field_for_column(column)
        if name is None or name not in rows.columns:
            continue
        spec = CATALOG[name]
        values = rows.select("row_key", pl.col(name).alias("raw")).drop_nulls("raw")
        cleaned = [(k, spec.clean(v)) for k, v in values.iter_rows()]
        kept = [(k, v) for k, v in cleaned if v is not None]
        if not kept:
            continue
        frames.append(
            pl.DataFrame(kept, schema={"row_key": pl.String, "value": pl.String}, orient="row").with_columns(
                field=pl.lit(name),
                confidence=pl.lit(100, pl.UInt8),
                source=pl.lit(INPUT_SOURCE),
                evidence=pl.lit("input column " + name),
                cost_usd=pl.lit(0.0),
                cached=pl.lit(False),
                fetched_at=pl.lit(uploaded_at).cast(pl.Datetime("us", "UTC")),
                status=pl.lit(Status.FILLED.value),
                detail=pl.lit(""),
            )
        )
    if not frames:
        return empty_candidates()
    return pl.concat(frames).select(list(CANDIDATE_SCHEMA))


def best_confidence(candidates: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """Highest confidence so far per (row_key, field), over every upstream stage."""
    filled = [f.filter(pl.col("status") == Status.FILLED.value) for f in candidates if f.height]
    if not filled:
        return pl.DataFrame(schema={"row_key": pl.String, "field": pl.String, "best": pl.UInt8})
    return (
        pl.concat([f.select("row_key", "field", "confidence") for f in filled])
        .group_by("row_key", "field")
        .agg(best=pl.col("confidence").max())
    )


def gap_targets(
    rows: pl.DataFrame,
    wanted: Sequence[str],
    upstream: Sequence[pl.DataFrame],
    provider: Provider,
    min_confidence: int,
) -> list[Target]:
    """Rows this provider should see: an accepted entity type and a wanted field it can fill still weak."""
    fillable = [
        (entity.value, name)
        for entity in provider.entity_types
        for name in wanted
        if name in provider.fields and CATALOG[name].subject == SUBJECT_OF_ENTITY[entity]
    ]
    if not fillable or rows.is_empty():
        return []
    pairs = pl.DataFrame(fillable, schema={"entity_type": pl.String, "field": pl.String}, orient="row")
    best = best_confidence(upstream)
    gaps = (
        rows.select("row_key", "entity_type", "normalized_url")
        .join(pairs, on="entity_type")
        .join(best, on=["row_key", "field"], how="left")
        .filter(pl.col("best").is_null() | (pl.col("best") < min_confidence))
        .group_by("row_key", "entity_type", "normalized_url", maintain_order=True)
        .agg(missing=pl.col("field"))
    )
    known = _known_values(upstream)
    evidence = _evidence(upstream)
    return [
        Target(key, EntityType(entity), url, tuple(missing), known.get(key, {}), evidence.get(key, ()))
        for key, entity, url, missing in gaps.iter_rows()
    ]


def _evidence(upstream: Sequence[pl.DataFrame]) -> dict[str, tuple[Evidence, ...]]:
    rows = [f.filter(pl.col("status") == EVIDENCE) for f in upstream if f.height]
    by_row: dict[str, list[Evidence]] = {}
    for frame in rows:
        for key, url, text in frame.select("row_key", "evidence", "value").iter_rows():
            by_row.setdefault(key, []).append(Evidence(url or "", text or ""))
    return {key: tuple(items) for key, items in by_row.items()}


def _known_values(upstream: Sequence[pl.DataFrame]) -> dict[str, dict[str, str]]:
    """Best value so far per row and field, so a later provider can build on it (a name to search for)."""
    filled = [f.filter(pl.col("status") == Status.FILLED.value) for f in upstream if f.height]
    if not filled:
        return {}
    best = (
        pl.concat([f.select("row_key", "field", "value", "confidence") for f in filled])
        .sort("confidence", descending=True)
        .unique(["row_key", "field"], keep="first")
    )
    known: dict[str, dict[str, str]] = {}
    for key, name, value, _ in best.iter_rows():
        known.setdefault(key, {})[name] = value
    return known


@dataclass
class StageStats:
    """What one provider stage did, for asset metadata and the CLI summary."""

    provider: str
    targets: int = 0
    cache_hits: int = 0
    calls: int = 0
    cost_usd: float = 0.0
    duration_s: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)
    cache_note: str | None = None


Progress = Callable[[int, int], None]  # (done, total)


async def run_provider(
    provider: Provider,
    targets: Sequence[Target],
    cache: ProviderCache,
    *,
    chunk_size: int | None = None,
    progress: Progress | None = None,
) -> tuple[pl.DataFrame, StageStats]:
    """Serve targets from the cache, call the provider for the misses chunk by chunk, cache as we go.

    Writing each chunk's answers before the next chunk starts means a run killed
    halfway keeps everything it already fetched.
    """
    started = time.monotonic()
    # A provider may ask for bigger chunks (an LLM batch wants as many rows as it can get).
    size: int = chunk_size or int(getattr(provider, "chunk_size", CHUNK_SIZE))
    stats = StageStats(provider.name, targets=len(targets))
    keys = {t.row_key: cache.key(provider.name, provider.version, provider.request_key(t)) for t in targets}
    cached = cache.get_many(list(keys.values()))
    attempts: list[Attempt] = []
    misses: list[Target] = []
    for target in targets:
        payload = cached.get(keys[target.row_key])
        if payload is not None:
            attempts.append(decode_attempt(target.row_key, payload))
        else:
            misses.append(target)
    stats.cache_hits = len(attempts)
    if progress:
        progress(len(attempts), len(targets))

    def collect(done: set[asyncio.Task[list[Attempt]]]) -> None:
        for task in sorted(done, key=order.__getitem__):
            # Stamp the fetch time before caching, so a later cache hit reports when the value was really fetched.
            now = datetime.now(UTC)
            fresh = [a if a.fetched_at else replace(a, fetched_at=now) for a in task.result()]
            stats.calls += len(fresh)
            cache.put_many((keys[a.row_key], encode_attempt(a, a.cost_usd), a.status) for a in fresh)
            attempts.extend(fresh)
            if progress:
                progress(len(attempts), len(targets))

    # Chunks overlap (PIPELINED_CHUNKS in flight) so one slow row does not idle the provider's
    # connections, while the provider's own limit keeps the concurrency it promised.
    order: dict[asyncio.Task[list[Attempt]], int] = {}
    inflight: set[asyncio.Task[list[Attempt]]] = set()
    async with provider:
        try:
            for start in range(0, len(misses), size):
                if len(inflight) >= PIPELINED_CHUNKS:
                    done, inflight = await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
                    collect(done)
                task = asyncio.create_task(provider.enrich(misses[start : start + size]))
                order[task] = start
                inflight.add(task)
            while inflight:
                done, inflight = await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
                collect(done)
        finally:
            for task in inflight:
                task.cancel()
    frame = attempts_to_frame(attempts, provider.name)
    stats.cost_usd = float(frame["cost_usd"].sum()) if frame.height else 0.0
    stats.statuses = Counter(a.status.value for a in attempts)
    stats.cache_note = cache.degraded_reason
    stats.duration_s = time.monotonic() - started
    return frame, stats
