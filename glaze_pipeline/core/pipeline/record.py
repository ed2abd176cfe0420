"""Single records: the table waterfall over a handful of requested entities, and its cache-only twin.

Both walk the same stages as a table run (`TableWork`, gap analysis, `run_provider_stage`, the merge and
the row checks) with the same providers, cache, ledger and budgets. The cache-only walk asks no provider:
it answers when every stage the run would call is already in the cache, and says "miss" otherwise.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from glaze_pipeline.core.model.candidates import Attempt, attempts_to_frame, empty_candidates
from glaze_pipeline.core.model.provider import Provider
from glaze_pipeline.core.model.status import Status
from glaze_pipeline.core.model.urls import Entity
from glaze_pipeline.core.pipeline.merge import merge
from glaze_pipeline.core.pipeline.runtime import BudgetLimits, Runtime
from glaze_pipeline.core.pipeline.validation import validate_records
from glaze_pipeline.core.pipeline.waterfall import TableWork, run_provider_stage
from glaze_pipeline.core.storage.api_keys import ledger_table
from glaze_pipeline.core.storage.cache import ProviderCache, decode_attempt
from glaze_pipeline.core.storage.requests import EnrichRequest, ledger_costs

ROW_SCHEMA = {"row_key": pl.String, "input_url": pl.String, "normalized_url": pl.String, "entity_type": pl.String}


def entity_rows(entities: Sequence[tuple[str, str, str, str]]) -> pl.DataFrame:
    """(row_key, input_url, normalized_url, entity_type) → the rows frame a table run reads, one per entity."""
    frame = pl.DataFrame(list(entities), schema=ROW_SCHEMA, orient="row")
    return frame.unique("row_key", keep="first", maintain_order=True)


def record_work(table_id: str, entities: Sequence[tuple[str, str, str, str]], wanted: Sequence[str]) -> TableWork:
    """A table of a few entities with no input hints: what a request asks is all it gives."""
    return TableWork(table_id, entity_rows(entities), tuple(wanted), empty_candidates())


# --- the cache-only walk (the API's fast path) -----------------------------------------------------


def cached_record(
    cache: ProviderCache, providers: Sequence[Provider], entity: Entity, wanted: Sequence[str], min_confidence: int
) -> dict[str, Any] | None:
    """The request's result from the cache alone, or None when any stage would have to ask its provider."""
    return walk_cache(cache, providers, entity, wanted, min_confidence).result


@dataclass(frozen=True)
class CacheWalk:
    """One cache-only walk: its answer (None: a miss), every cache entry it read, and whether it may be reused."""

    result: dict[str, Any] | None
    keys: tuple[str, ...] = ()
    found: dict[str, bytes] = field(default_factory=dict)
    reusable: bool = False


def walk_cache(
    cache: ProviderCache, providers: Sequence[Provider], entity: Entity, wanted: Sequence[str], min_confidence: int
) -> CacheWalk:
    """The cache-only walk: every stage the run would call, from the cache; a miss as soon as one would ask."""
    if not cache.available:
        return CacheWalk(None)
    row = (entity.row_key, entity.input_url, entity.normalized_url, entity.entity_type.value)
    work = record_work("api", [row], wanted)
    frames: list[pl.DataFrame] = []
    read: dict[str, bytes] = {}
    keys_read: list[str] = []
    reusable = True
    for provider in providers:
        targets = work.targets(provider, frames, min_confidence)
        if not targets:
            continue
        keys = {t.row_key: cache.key(provider.name, provider.version, provider.request_key(t)) for t in targets}
        found = cache.get_many(list(keys.values()))
        keys_read += keys.values()
        read |= found
        missing = [k for k, key in keys.items() if key not in found]
        if missing and not provider.unavailable:
            return CacheWalk(None)
        attempts = [decode_attempt(k, found[key]) for k, key in keys.items() if key in found]
        # A value with no fetch time would be stamped with this walk's time: such an answer is not reused.
        reusable = reusable and all(a.fetched_at is not None for a in attempts if a.found)
        # A provider without its key is skipped by the run too: its gaps would end as skipped_no_key.
        attempts += [Attempt(k, (), Status.SKIPPED_NO_KEY, detail=provider.unavailable or "") for k in missing]
        frames.append(attempts_to_frame(attempts, provider.name, wanted))
    order = [p.name for p in providers]
    records = checked_records(work, frames, order)
    return CacheWalk(record_result(records.row(0, named=True), {}), tuple(keys_read), read, reusable)


class CachedRecords:
    """The cache-only walk with a memory: a hit asked again costs one MGET instead of the walk through polars.

        The walk is a function of the entity, the wanted fields, the confidence floor, the providers (name,
        version, whether they are available) and the cache entries it reads; each stage's keys depend only on
        what the stages before it read. So when one MGET of the keys a remembered walk read finds exactly the
        bytes it found then (no entry changed, none expired, none appeared), the walk would read the same keys
        and answer the same: the remembered answer is returned. Anything else walks again. Misses are never
        remembered. The providers' configuration must stay the same for the memory's lifetime (the API reads
    its settings once): it decides their request keys.
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._walks: OrderedDict[tuple[object, ...], CacheWalk] = OrderedDict()
        self._lock = threading.Lock()  # the API calls this from its thread pool
        self.reused = 0  # answers given from memory

    def answer(
        self,
        cache: ProviderCache,
        providers: Sequence[Provider],
        entity: Entity,
        wanted: Sequence[str],
        min_confidence: int,
    ) -> dict[str, Any] | None:
        """What `cached_record` answers, from memory when the cache entries it read are unchanged."""
        if not cache.available:
            return None
        name = (entity.row_key, entity.input_url, entity.normalized_url, entity.entity_type.value, tuple(wanted))
        memo = (*name, min_confidence, tuple((p.name, p.version, p.unavailable) for p in providers))
        with self._lock:
            known = self._walks.get(memo)
        if known is not None and known.result is not None and cache.get_many(list(known.keys)) == known.found:
            with self._lock:
                self._walks.move_to_end(memo)
                self.reused += 1
            return copy.deepcopy(known.result)
        walk = walk_cache(cache, providers, entity, wanted, min_confidence)
        with self._lock:
            if walk.result is not None and walk.reusable:
                self._walks[memo] = walk
                self._walks.move_to_end(memo)
                while len(self._walks) > self.max_entries:
                    self._walks.popitem(last=False)
            else:
                self._walks.pop(memo, None)
        return copy.deepcopy(walk.result)


# --- the run (the enrich_record job) ---------------------------------------------------------------


@dataclass(frozen=True)
class RecordGroup:
    """Requests enriched together in one run: one key, the same wanted fields, the same budget per entity.

    One group is one small table for the waterfall, so a provider is asked for just the fields these
    requests want, and the key's budget is kept per entity (`max_cost_per_row_usd`).
    """

    key_id: str
    wanted: tuple[str, ...]
    budget_usd: float
    requests: tuple[EnrichRequest, ...]

    def ledger_run(self, run_id: str) -> str:
        """The ledger's run id for this group: the budget sums what exactly this group has paid."""
        tag = hashlib.sha256(json.dumps([self.key_id, self.wanted, self.budget_usd]).encode()).hexdigest()[:10]
        return f"{run_id}:{tag}"

    def work(self) -> TableWork:
        entities = [(r.row_key, r.input_url, r.normalized_url, r.entity_type) for r in self.requests]
        return record_work(ledger_table(self.key_id), entities, self.wanted)

    def limits(self) -> BudgetLimits:
        rows = len({r.row_key for r in self.requests})
        return BudgetLimits(max_cost_usd=self.budget_usd * rows, max_cost_per_row_usd=self.budget_usd)


def group_requests(requests: Sequence[EnrichRequest]) -> list[RecordGroup]:
    groups: dict[tuple[str, tuple[str, ...], float], list[EnrichRequest]] = {}
    for r in requests:
        groups.setdefault((r.key_id, tuple(r.wanted_fields), float(r.budget_usd or 0.0)), []).append(r)
    return [RecordGroup(key, wanted, budget, tuple(rs)) for (key, wanted, budget), rs in groups.items()]


async def enrich_group(runtime: Runtime, group: RecordGroup, run_id: str) -> dict[str, dict[str, Any]]:
    """Run the waterfall over one group; the result of each of its requests (request id → result)."""
    work = group.work()
    order = list(runtime.settings.waterfall_order)
    frames: list[pl.DataFrame] = []
    ledger_run = group.ledger_run(run_id)
    for name in order:
        frame, _ = await run_provider_stage(
            runtime, runtime.provider(name), work, frames, run_id=ledger_run, limits=group.limits()
        )
        frames.append(frame)
    records = {r["row_key"]: r for r in checked_records(work, frames, order).iter_rows(named=True)}
    results: dict[str, dict[str, Any]] = {}
    charged: set[str] = set()
    with runtime.connection() as conn:
        for request in group.requests:
            # Two requests for one entity share its calls: the cost is counted once, on the first.
            runs = [] if request.row_key in charged else [*request.ledger_runs, ledger_run]
            charged.add(request.row_key)
            cost = ledger_costs(conn, runs, work.table_id, request.row_key)
            results[str(request.request_id)] = record_result(records[request.row_key], cost)
    return results


def checked_records(work: TableWork, frames: Sequence[pl.DataFrame], order: Sequence[str]) -> pl.DataFrame:
    """The merge and the row checks of a table run; a failing cell is cleared and says `rejected`."""
    merged = merge(work.rows, work.wanted, [work.hints, *frames], order)
    return validate_records(merged).records


def record_result(record: dict[str, Any], cost_by_provider: dict[str, float]) -> dict[str, Any]:
    """The reference design's result: per field the value, confidence, source, evidence and time; gaps; costs."""
    provenance = json.loads(record["provenance"])
    data: dict[str, Any] = {}
    gaps: dict[str, Any] = {}
    for name, p in provenance.items():
        if p.get("status") == Status.FILLED.value and record.get(name) is not None:
            data[name] = {
                "value": record[name],
                "confidence": p.get("confidence"),
                "source": p.get("source"),
                "evidence": p.get("evidence"),
                "fetched_at": p.get("fetched_at"),
            }
        else:
            gap = {"status": p.get("status")}
            if p.get("attempts"):
                gap["attempts"] = p["attempts"]
            gaps[name] = gap
    return {
        "record_status": record["status"],
        "data": data,
        "gaps": gaps,
        "costs": {"total_usd": round(sum(cost_by_provider.values()), 10), "by_provider": cost_by_provider},
    }
