"""The waterfall: the provider protocol, gap analysis, and running one provider over its gaps with the cache.

A provider only ever sees rows that still need one of the fields it can fill,
so every later (dearer) stage runs on fewer rows than the one before.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol, Self

import polars as pl

from glaze_pipeline.core.cache import CACHEABLE, ProviderCache, decode_attempt, encode_attempt, request_hash
from glaze_pipeline.core.candidates import (
    CANDIDATE_SCHEMA,
    EVIDENCE,
    Attempt,
    Evidence,
    attempts_to_frame,
    empty_candidates,
)
from glaze_pipeline.core.fields import CATALOG, SUBJECT_OF_ENTITY, EntityType, field_for_column
from glaze_pipeline.core.ledger import Budget, Call, Ledger
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


class UrlAskingProvider:
    """Base for providers that open nothing per stage and whose request is the entity's URL."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def request_key(self, target: Target) -> str:
        return target.normalized_url


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
    ledger_hits: int = 0  # cache misses answered by the ledger: paid before, not paid again
    calls: int = 0  # rows sent to the provider
    paid_calls: int = 0  # of those, calls the provider billed
    requests: int = 0  # HTTP requests, retries included (paid providers)
    cost_usd: float = 0.0
    duration_s: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)
    cache_note: str | None = None
    skipped: str | None = None  # why the provider did not run at all (no key)
    budget_note: str | None = None
    breaker: str | None = None
    limiter: str | None = None


@dataclass
class Spending:
    """What a paid stage needs besides the cache: the ledger it records to and reads from, and the run's budget."""

    ledger: Ledger
    budget: Budget
    ttl_s: int = 7 * 86_400  # ledger answers are reused as long as the cache would keep them
    negative_ttl_s: int = 86_400


Progress = Callable[[int, int], None]  # (done, total)
FLUSH_ROWS = 64  # answers buffered before they are written to the ledger and the cache…
FLUSH_S = 0.1  # …or this long, whichever comes first: the most a killed run can lose
FRAME_ROWS = 200  # answers turned into candidate rows at a time, during the stage


class _Sink:
    """Writes fresh answers to the ledger (paid providers), then to the cache, in small batches.

    Answers are encoded on the event loop; only the I/O goes to a worker thread, one batch at a time,
    so the loop keeps answering while Postgres and Redis write.
    """

    def __init__(
        self,
        provider: Provider,
        cache: ProviderCache,
        keys: dict[str, str],
        requests: dict[str, str],
        spending: Spending | None,
    ) -> None:
        self.provider = provider
        self.cache = cache
        self.keys = keys
        self.requests = requests
        self.ledger = spending.ledger if spending and provider.price_usd > 0 else None
        self.targets: dict[str, Target] = {}
        self.calls: list[Call] = []
        self.entries: list[tuple[str, bytes, Status]] = []
        self.last = time.monotonic()
        self.writing: asyncio.Task[None] | None = None

    def add(self, fresh: Sequence[Attempt]) -> None:
        for attempt in fresh:
            payload = encode_attempt(attempt, attempt.cost_usd)
            self.entries.append((self.keys[attempt.row_key], payload, attempt.status))
            if self.ledger is not None and (attempt.cost_usd > 0 or attempt.status in CACHEABLE):
                self.calls.append(
                    Call(
                        request_hash(self.requests[attempt.row_key]),
                        attempt.row_key,
                        self.targets[attempt.row_key].normalized_url,
                        attempt.status.value,
                        attempt.cost_usd,
                        payload,
                    )
                )

    async def maybe_flush(self, *, force: bool = False) -> None:
        if self.writing is not None and self.writing.done():
            self.writing.result()  # a failed ledger write stops the stage: it must not go on paying unrecorded
        due = len(self.entries) >= FLUSH_ROWS or time.monotonic() - self.last >= FLUSH_S
        if self.entries and (force or due) and (self.writing is None or self.writing.done()):
            calls, entries = self.calls, self.entries
            self.calls, self.entries = [], []
            self.last = time.monotonic()
            self.writing = asyncio.create_task(asyncio.to_thread(self._write, calls, entries))
        if force and self.writing is not None:
            await self.writing
            if self.entries:
                await self.maybe_flush(force=True)

    def _write(self, calls: list[Call], entries: list[tuple[str, bytes, Status]]) -> None:
        if self.ledger is not None:  # the ledger first: it is what never-pay-twice rests on
            self.ledger.record(self.provider.name, self.provider.version, calls)
        self.cache.put_many(entries)


def _from_ledger(
    provider: Provider,
    misses: list[Target],
    cache: ProviderCache,
    keys: dict[str, str],
    requests: dict[str, str],
    spending: Spending,
) -> tuple[list[Attempt], list[Target]]:
    """Cache misses the ledger has answered (Redis evicted or was down): served free, and put back in the cache."""
    hashes = {t.row_key: request_hash(requests[t.row_key]) for t in misses}
    stored = spending.ledger.answers(
        provider.name, provider.version, list(set(hashes.values())), spending.ttl_s, spending.negative_ttl_s
    )
    served = [decode_attempt(t.row_key, stored[hashes[t.row_key]]) for t in misses if hashes[t.row_key] in stored]
    cache.put_many((keys[a.row_key], stored[hashes[a.row_key]], a.status) for a in served)
    return served, [t for t in misses if hashes[t.row_key] not in stored]


class _Answers:
    """A stage's attempts, turned into candidate rows a batch at a time.

    Turning them early keeps few Python objects alive in a large stage: the cyclic GC's full
    collections then stay short instead of stalling the event loop (and the rate limiter's slots).
    """

    def __init__(self, source: str, wanted: Collection[str] | None) -> None:
        self.source = source
        self.wanted = wanted
        self.pending: list[Attempt] = []
        self.frames: list[pl.DataFrame] = []
        self.count = 0
        self.statuses: Counter[str] = Counter()

    def add(self, attempts: Iterable[Attempt]) -> None:
        for attempt in attempts:
            self.pending.append(attempt)
            self.statuses[attempt.status.value] += 1
            self.count += 1
            if len(self.pending) >= FRAME_ROWS * 10:  # a stage served from the cache frames as it decodes
                self.frame_some()

    def frame_some(self, *, force: bool = False) -> None:
        if self.pending and (force or len(self.pending) >= FRAME_ROWS):
            self.frames.append(attempts_to_frame(self.pending, self.source, self.wanted))
            self.pending = []

    def frame(self) -> pl.DataFrame:
        self.frame_some(force=True)
        return pl.concat(self.frames) if self.frames else empty_candidates()


async def run_provider(
    provider: Provider,
    targets: Sequence[Target],
    cache: ProviderCache,
    *,
    chunk_size: int | None = None,
    progress: Progress | None = None,
    spending: Spending | None = None,
    wanted: Collection[str] | None = None,
) -> tuple[pl.DataFrame, StageStats]:
    """Serve targets from the cache (then the ledger), call the provider for the rest, record answers as they come.

    Answers are written in small batches while the stage runs, so a run killed
    halfway keeps everything it already paid for. With `spending`, each call first
    reserves its price from the run's budget; rows it cannot afford are
    `budget_exhausted`, never sent. With `wanted`, candidates are kept for those fields only.
    """
    started = time.monotonic()
    gc.freeze()  # objects alive before the stage (modules, upstream frames) are not rescanned by every collection
    try:
        return await _run_stage(provider, targets, cache, chunk_size, progress, spending, wanted, started)
    finally:
        gc.unfreeze()


async def _run_stage(
    provider: Provider,
    targets: Sequence[Target],
    cache: ProviderCache,
    chunk_size: int | None,
    progress: Progress | None,
    spending: Spending | None,
    wanted: Collection[str] | None,
    started: float,
) -> tuple[pl.DataFrame, StageStats]:
    stats = StageStats(provider.name, targets=len(targets))
    answers = _Answers(provider.name, wanted)
    requests = {t.row_key: provider.request_key(t) for t in targets}
    keys = {key: cache.key(provider.name, provider.version, request) for key, request in requests.items()}
    cached = cache.get_many(list(keys.values()))
    misses = [t for t in targets if keys[t.row_key] not in cached]
    answers.add(decode_attempt(t.row_key, cached[keys[t.row_key]]) for t in targets if keys[t.row_key] in cached)
    stats.cache_hits = answers.count
    paid = provider.price_usd > 0
    if spending is not None and paid and misses:
        served, misses = _from_ledger(provider, misses, cache, keys, requests, spending)
        answers.add(served)
        stats.ledger_hits = len(served)
    if progress:
        progress(answers.count, len(targets))

    stats.skipped = getattr(provider, "unavailable", None)
    if stats.skipped:
        answers.add(Attempt(t.row_key, (), Status.SKIPPED_NO_KEY, detail=stats.skipped) for t in misses)
        misses = []

    sink = _Sink(provider, cache, keys, requests, spending)
    sink.targets = {t.row_key: t for t in misses}
    budget = spending.budget if spending is not None and paid else None
    reserved: dict[str, float] = {}
    order: dict[asyncio.Task[list[Attempt]], int] = {}
    inflight: set[asyncio.Task[list[Attempt]]] = set()
    finished: list[asyncio.Task[list[Attempt]]] = []
    wake = asyncio.Event()

    def on_done(task: asyncio.Task[list[Attempt]]) -> None:
        finished.append(task)
        wake.set()

    def collect(done: list[asyncio.Task[list[Attempt]]]) -> None:
        for task in sorted(done, key=order.pop):  # popped: a finished task must not keep its answers alive
            # Stamp the fetch time before caching, so a later cache hit reports when the value was really fetched.
            now = datetime.now(UTC)
            fresh = [a if a.fetched_at else replace(a, fetched_at=now) for a in task.result()]
            stats.calls += len(fresh)
            for a in fresh:
                if budget is not None:
                    budget.settle(a.row_key, reserved.pop(a.row_key, 0.0), a.cost_usd)
                stats.paid_calls += a.cost_usd > 0
            sink.add(fresh)
            answers.add(fresh)
            if progress:
                progress(answers.count, len(targets))

    async def wait_some() -> None:
        """Collect finished tasks (O(1) each, unlike asyncio.wait over all in flight) and flush when due."""
        if not finished:
            wake.clear()
            with suppress(TimeoutError):
                async with asyncio.timeout(FLUSH_S):
                    await wake.wait()
        done = list(finished)
        finished.clear()
        inflight.difference_update(done)
        collect(done)
        await sink.maybe_flush()
        answers.frame_some()  # while waiting on the network, not after

    size: int = chunk_size or getattr(provider, "chunk_size", None) or CHUNK_SIZE
    # Chunks overlap so one slow row does not idle the provider's connections, while the
    # provider's own limiter keeps the concurrency (and rate) it promised.
    max_inflight: int = getattr(provider, "max_inflight", PIPELINED_CHUNKS)
    async with provider:
        try:
            for start in range(0, len(misses), size):
                while len(inflight) >= max_inflight:
                    await wait_some()
                batch = misses[start : start + size]
                if budget is not None:
                    batch = _afford(batch, budget, provider.price_usd, reserved, answers, stats)
                    if not batch:
                        continue
                task = asyncio.create_task(provider.enrich(batch))
                order[task] = start
                inflight.add(task)
                task.add_done_callback(on_done)
            while inflight:
                await wait_some()
        finally:
            for task in inflight:
                task.cancel()
            await sink.maybe_flush(force=True)
    frame = answers.frame()
    stats.cost_usd = float(frame["cost_usd"].sum()) if frame.height else 0.0
    stats.statuses = answers.statuses
    stats.cache_note = cache.degraded_reason
    stats.requests = getattr(getattr(provider, "caller", None), "requests", 0)
    breaker = getattr(provider, "breaker", None)
    stats.breaker = f"{breaker.describe()} ({breaker.trips} trips)" if breaker is not None else None
    stats.limiter = getattr(provider, "limiter_mode", None)
    stats.duration_s = time.monotonic() - started
    return frame, stats


def _afford(
    batch: list[Target],
    budget: Budget,
    price: float,
    reserved: dict[str, float],
    answers: _Answers,
    stats: StageStats,
) -> list[Target]:
    """The rows of a batch the budget still pays for; the others become budget_exhausted attempts."""
    allowed = []
    for target in batch:
        refusal = budget.reserve(target.row_key, price)
        if refusal is None:
            reserved[target.row_key] = price
            allowed.append(target)
        else:
            stats.budget_note = refusal
            answers.add([Attempt(target.row_key, (), Status.BUDGET_EXHAUSTED, detail=refusal)])
    return allowed
