"""One provider stage: serve what the cache and the ledger know, ask the provider for the rest, record as it goes.

Answers are written in small batches while the stage runs, so a run killed
halfway keeps everything it already paid for. With spending, each request is
first claimed in Postgres (`core/storage/claims.py`), so no other process pays
for it at the same time, and each call reserves its price from the run's budget;
rows it cannot afford are `budget_exhausted`, never sent. Requests another
process holds are read from the ledger once it has answered them.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import polars as pl
import psycopg

from glaze_pipeline.core.model.candidates import Attempt, attempts_to_frame, empty_candidates
from glaze_pipeline.core.model.provider import Provider, ProviderHealth, Target
from glaze_pipeline.core.model.status import Status
from glaze_pipeline.core.pipeline.spending import Spending
from glaze_pipeline.core.storage.cache import (
    CACHEABLE,
    CachedFrame,
    ProviderCache,
    decode_attempt,
    encode_attempt,
    request_hash,
)
from glaze_pipeline.core.storage.claims import PaidClaims
from glaze_pipeline.core.storage.ledger import Call, StageSummary

log = logging.getLogger(__name__)


@dataclass
class StageStats:
    """What one provider stage did, for asset metadata and the CLI summary."""

    provider: str
    targets: int = 0
    cache_hits: int = 0
    ledger_hits: int = 0  # cache misses answered by the ledger: paid before, not paid again
    calls: int = 0  # rows sent to the provider
    paid_calls: int = 0  # of those, calls the provider billed
    cost_usd: float = 0.0
    duration_s: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)
    cache_note: str | None = None
    skipped: str | None = None  # why the provider did not run at all (no key)
    budget_note: str | None = None
    health: ProviderHealth = field(default_factory=ProviderHealth)

    @property
    def requests(self) -> int:
        """HTTP requests, retries included (paid providers)."""
        return self.health.requests

    def summary(self, run_id: str, table_id: str) -> StageSummary:
        """The figures that go to Postgres (glaze.provider_stages), for the provider_costs mart."""
        return StageSummary(
            run_id,
            table_id,
            self.provider,
            self.targets,
            self.cache_hits,
            self.ledger_hits,
            self.calls,
            self.paid_calls,
            self.cost_usd,
        )


Progress = Callable[[int, int], None]  # (done, total)
FLUSH_ROWS = 64  # answers buffered before they are written to the ledger and the cache…
FLUSH_S = 0.1  # …or this long, whichever comes first: the most a killed run can lose
FRAME_ROWS = 200  # answers turned into candidate rows at a time, during the stage
CLAIM_ROWS = 64  # requests claimed per Postgres round trip (at least one chunk): few claimed but not yet sent


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
        claims: PaidClaims | None = None,
    ) -> None:
        self.provider = provider
        self.cache = cache
        self.keys = keys
        self.requests = requests
        self.ledger = spending.ledger if spending and provider.price_usd > 0 else None
        self.claims = claims
        self.answered: list[str] = []  # request hashes whose claims are let go once their answers are written
        self.targets: dict[str, Target] = {}
        self.calls: list[Call] = []
        self.entries: list[tuple[str, bytes, Status]] = []
        self.last = time.monotonic()
        self.writing: asyncio.Task[None] | None = None

    def add(self, fresh: Sequence[Attempt]) -> None:
        for attempt in fresh:
            payload = encode_attempt(attempt, attempt.cost_usd)
            if self.claims is not None:
                self.answered.append(request_hash(self.requests[attempt.row_key]))
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
            calls, entries, answered = self.calls, self.entries, self.answered
            self.calls, self.entries, self.answered = [], [], []
            self.last = time.monotonic()
            self.writing = asyncio.create_task(asyncio.to_thread(self._write, calls, entries, answered))
        if force and self.writing is not None:
            await self.writing
            if self.entries:
                await self.maybe_flush(force=True)

    def _write(self, calls: list[Call], entries: list[tuple[str, bytes, Status]], answered: list[str]) -> None:
        if self.ledger is not None:  # the ledger first: it is what never-pay-twice rests on
            self.ledger.record(self.provider.name, self.provider.version, calls)
        self.cache.put_many(entries)
        if self.claims is not None:  # only now: a waiter that gets the claim finds the answer in the ledger
            self.claims.release(answered)


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

    def add_frame(self, frame: pl.DataFrame, count: int, statuses: dict[str, int]) -> None:
        """Answers already turned into candidate rows (cache hits decoded in bulk), after those pending."""
        self.frame_some(force=True)
        self.frames.append(frame)
        self.count += count
        self.statuses.update(statuses)

    def frame_some(self, *, force: bool = False) -> None:
        if self.pending and (force or len(self.pending) >= FRAME_ROWS):
            self.frames.append(attempts_to_frame(self.pending, self.source, self.wanted))
            self.pending = []

    def frame(self) -> pl.DataFrame:
        self.frame_some(force=True)
        return pl.concat(self.frames) if self.frames else empty_candidates()


async def run_stage(
    provider: Provider,
    targets: Sequence[Target],
    cache: ProviderCache,
    *,
    chunk_size: int | None = None,
    progress: Progress | None = None,
    spending: Spending | None = None,
    wanted: Collection[str] | None = None,
    fresh: bool = False,
) -> tuple[pl.DataFrame, StageStats]:
    """Serve targets from the cache (then the ledger), call the provider for the rest, record answers as they come.

    With `wanted`, candidates are kept for those fields only (the cache keeps whole answers). With `fresh` (a
    refresh), every target is asked again: cache and ledger are not read, the new answers replace them.
    """
    started = time.monotonic()
    gc.freeze()  # objects alive before the stage (modules, upstream frames) are not rescanned by every collection
    try:
        stage = _Stage(provider, targets, cache, progress, spending, wanted)
        misses = stage.serve_known(fresh)
        await stage.ask(misses, chunk_size or provider.chunk_size)
        return stage.finish(started)
    finally:
        gc.unfreeze()


class _Stage:
    """The state of one running stage, in named steps: serve what is known, ask for the rest, finish."""

    def __init__(
        self,
        provider: Provider,
        targets: Sequence[Target],
        cache: ProviderCache,
        progress: Progress | None,
        spending: Spending | None,
        wanted: Collection[str] | None,
    ) -> None:
        self.provider = provider
        self.targets = targets
        self.cache = cache
        self.progress = progress
        self.spending = spending if provider.price_usd > 0 else None
        self.budget = self.spending.budget if self.spending is not None else None
        self.stats = StageStats(provider.name, targets=len(targets))
        self.answers = _Answers(provider.name, wanted)
        self.requests = {t.row_key: provider.request_key(t) for t in targets}
        self.keys = {key: cache.key(provider.name, provider.version, req) for key, req in self.requests.items()}
        self.claims = self._claims_for(provider, self.spending)
        self.sink = _Sink(provider, cache, self.keys, self.requests, self.spending, self.claims)
        self.sent = 0  # chunks dispatched: their order in the answers
        self.fresh = False  # a refresh: the ledger's older answers are not served (set by serve_known)
        self.reserved: dict[str, float] = {}  # reservations of calls in flight, by row
        self.deferred: list[Target] = []  # rows waiting for reservations in flight to settle
        self.order: dict[asyncio.Task[list[Attempt]], int] = {}
        self.inflight: set[asyncio.Task[list[Attempt]]] = set()
        self.finished: list[asyncio.Task[list[Attempt]]] = []
        self.wake = asyncio.Event()

    def serve_known(self, fresh: bool = False) -> list[Target]:
        """Answer from the cache, then the ledger (neither when `fresh`); all skipped when the provider cannot run."""
        self.fresh = fresh
        cached = {} if fresh else self.cache.get_many(list(self.keys.values()))
        misses = [t for t in self.targets if self.keys[t.row_key] not in cached]
        if cached:  # decoded in bulk, straight into candidate rows
            hits = CachedFrame(self.provider.name, self.answers.wanted, datetime.now(UTC))
            for t in self.targets:
                if (payload := cached.get(self.keys[t.row_key])) is not None:
                    hits.add(t.row_key, payload)
            self.answers.add_frame(hits.frame(), hits.count, hits.statuses)
        self.stats.cache_hits = self.answers.count
        if self.spending is not None and misses and not fresh:
            served, misses = self._from_ledger(misses)
            self.answers.add(served)
            self.stats.ledger_hits = len(served)
        self._report()
        self.stats.skipped = self.provider.unavailable
        if self.stats.skipped:
            self.answers.add(Attempt(t.row_key, (), Status.SKIPPED_NO_KEY, detail=self.stats.skipped) for t in misses)
            return []
        self.sink.targets = {t.row_key: t for t in misses}
        return misses

    def _from_ledger(self, misses: list[Target]) -> tuple[list[Attempt], list[Target]]:
        """Cache misses the ledger has answered (Redis evicted or was down): served free, and put back in the cache."""
        assert self.spending is not None
        hashes = {t.row_key: request_hash(self.requests[t.row_key]) for t in misses}
        p, spending = self.provider, self.spending
        stored = spending.ledger.answers(
            p.name, p.version, list(set(hashes.values())), spending.ttl_s, spending.negative_ttl_s
        )
        served = [decode_attempt(t.row_key, stored[hashes[t.row_key]]) for t in misses if hashes[t.row_key] in stored]
        self.cache.put_many((self.keys[a.row_key], stored[hashes[a.row_key]], a.status) for a in served)
        return served, [t for t in misses if hashes[t.row_key] not in stored]

    @staticmethod
    def _claims_for(provider: Provider, spending: Spending | None) -> PaidClaims | None:
        if spending is None:
            return None
        ledger = spending.ledger
        return PaidClaims(
            ledger.url, provider=provider.name, version=provider.version, run_id=ledger.run_id, lease_s=spending.lease_s
        )

    async def ask(self, misses: list[Target], size: int) -> None:
        """Send the misses chunk by chunk, at most `max_inflight` chunks at once, recording answers as they come;
        then wait for the requests another process was paying for.

        Rows the budget cannot reserve while other calls are in flight wait for those to settle (a call's
        reservation is its upper bound, usually far above what it really costs) and go in the next wave;
        a wave that starts with nothing in flight and still cannot reserve a row ends it as budget_exhausted.
        """
        async with self.provider:
            keeper = asyncio.create_task(self._keep_claims()) if self.claims is not None else None
            try:
                todo = misses
                while todo:
                    self.deferred = []
                    waiting = await self._send(todo, size)
                    await self._wait_for_others(waiting, size)
                    while self.inflight:
                        await self._wait_some()
                    # A row the provider did not answer keeps its reservation (spent, as far as we know),
                    # but no longer counts as in flight: the next wave must not wait for it.
                    self.reserved.clear()
                    todo = self.deferred
            finally:
                for task in (*self.inflight, *([keeper] if keeper else [])):
                    task.cancel()
                try:
                    await self.sink.maybe_flush(force=True)
                finally:
                    if self.claims is not None:  # whatever was claimed and not answered (a refusal, an error)
                        await asyncio.to_thread(self.claims.release)
                        self.claims.close()

    async def _send(self, targets: list[Target], size: int) -> list[Target]:
        """Claim the targets a block at a time and send what this stage holds; return what another process holds."""
        theirs: list[Target] = []
        for at in range(0, len(targets), max(size, CLAIM_ROWS)):
            mine, taken = await self._claim(targets[at : at + max(size, CLAIM_ROWS)])
            theirs += taken
            refused: list[str] = []
            for start in range(0, len(mine), size):
                while len(self.inflight) >= self.provider.max_inflight:
                    await self._wait_some()
                chunk = mine[start : start + size]
                batch = self._afford(chunk)
                sent = {t.row_key for t in batch}
                refused += [request_hash(self.requests[t.row_key]) for t in chunk if t.row_key not in sent]
                if batch:
                    self._dispatch(batch, self.sent)
                    self.sent += 1
            if refused and self.claims is not None:  # never sent: another process may pay for them
                await asyncio.to_thread(self.claims.release, refused)
        return theirs

    async def _claim(self, batch: list[Target]) -> tuple[list[Target], list[Target]]:
        """(the targets this stage may pay for, those another process is paying for); answered ones are served."""
        if self.claims is None or not batch:
            return batch, []
        hashes = {t.row_key: request_hash(self.requests[t.row_key]) for t in batch}
        got = await asyncio.to_thread(self.claims.claim, list(hashes.values()))
        mine = [t for t in batch if hashes[t.row_key] in got]
        if mine and not self.fresh:  # answered between our first look and the claim: the holder wrote the ledger
            served, mine = await asyncio.to_thread(self._from_ledger, mine)
            if served:
                self.answers.add(served)
                self.stats.ledger_hits += len(served)
                await asyncio.to_thread(self.claims.release, [hashes[a.row_key] for a in served])
                self._report()
        return mine, [t for t in batch if hashes[t.row_key] not in got]

    async def _wait_for_others(self, waiting: list[Target], size: int) -> None:
        """Requests another process holds: read its answers from the ledger as they land, or take over claims it
        let lapse (killed); give up only after `claim_wait_s` without any progress, never paying twice."""
        if not waiting or self.spending is None:
            return
        wait_s = self.spending.claim_wait_s
        log.warning(
            "%s: %d requests are being paid for by another run right now; waiting for its answers instead of"
            " paying twice",
            self.provider.name,
            len(waiting),
        )
        pause, progress_at = 0.02, time.monotonic()
        while waiting:
            if time.monotonic() - progress_at > wait_s:
                await self._give_up(waiting)
                return
            if self.inflight:
                await self._wait_some()
            else:
                await asyncio.sleep(pause)  # polling the ledger and the claims: no channel to wait on across hosts
            left = await self._send(waiting, size)
            pause = 0.02 if len(left) < len(waiting) else min(1.0, pause * 2)
            progress_at = time.monotonic() if len(left) < len(waiting) else progress_at
            waiting = left

    async def _give_up(self, waiting: list[Target]) -> None:
        assert self.claims is not None and self.spending is not None
        hashes = [request_hash(self.requests[t.row_key]) for t in waiting]
        holders = await asyncio.to_thread(self.claims.holders, hashes)
        detail = (
            f"not asked: run {', '.join(sorted(h[:8] for h in holders)) or '?'} is paying for this same request and"
            f" gave no answer within {self.spending.claim_wait_s:g} s (GLAZE_CLAIM_WAIT_S); not paid twice, run"
            " again to read its answer"
        )
        self.answers.add(Attempt(t.row_key, (), Status.PROVIDER_ERROR, detail=detail) for t in waiting)
        self._report()

    async def _keep_claims(self) -> None:
        """Renew this stage's claims every third of the lease while it runs: a live slow call is not taken over."""
        assert self.claims is not None
        while True:
            await asyncio.sleep(self.claims.lease_s / 3)
            try:
                await asyncio.to_thread(self.claims.renew)
            except psycopg.Error as exc:  # the next renewal may work; the lease covers two missed ones
                log.warning("%s: could not renew paid-request claims: %s", self.provider.name, exc)

    def _afford(self, batch: list[Target]) -> list[Target]:
        """The rows of a batch the budget reserves now; the rest wait for a later wave or are budget_exhausted."""
        if self.budget is None:
            return batch
        allowed = []
        for target in batch:
            price = self.provider.max_cost_usd(target)
            refusal = self.budget.reserve(target.row_key, price)
            if refusal is None:
                self.reserved[target.row_key] = price
                allowed.append(target)
            elif self.reserved and self.budget.fits_once_settled(target.row_key, price):
                self.deferred.append(target)
            else:
                self.stats.budget_note = refusal
                self.answers.add([Attempt(target.row_key, (), Status.BUDGET_EXHAUSTED, detail=refusal)])
        return allowed

    def _dispatch(self, batch: list[Target], start: int) -> None:
        task = asyncio.create_task(self.provider.enrich(batch))
        self.order[task] = start
        self.inflight.add(task)
        task.add_done_callback(self._on_done)

    def _on_done(self, task: asyncio.Task[list[Attempt]]) -> None:
        self.finished.append(task)
        self.wake.set()

    async def _wait_some(self) -> None:
        """Collect finished tasks (O(1) each, unlike asyncio.wait over all in flight) and flush when due."""
        if not self.finished:
            self.wake.clear()
            with suppress(TimeoutError):
                async with asyncio.timeout(FLUSH_S):
                    await self.wake.wait()
        done = list(self.finished)
        self.finished.clear()
        self.inflight.difference_update(done)
        self._collect(done)
        await self.sink.maybe_flush()
        self.answers.frame_some()  # while waiting on the network, not after

    def _collect(self, done: list[asyncio.Task[list[Attempt]]]) -> None:
        for task in sorted(done, key=self.order.pop):  # popped: a finished task must not keep its answers alive
            # Stamp the fetch time before caching, so a later cache hit reports when the value was really fetched.
            now = datetime.now(UTC)
            fresh = [a if a.fetched_at else replace(a, fetched_at=now) for a in task.result()]
            self.stats.calls += len(fresh)
            for a in fresh:
                if self.budget is not None:
                    self.budget.settle(a.row_key, self.reserved.pop(a.row_key, 0.0), a.cost_usd)
                self.stats.paid_calls += a.cost_usd > 0
            self.sink.add(fresh)
            self.answers.add(fresh)
            self._report()

    def _report(self) -> None:
        if self.progress:
            self.progress(self.answers.count, len(self.targets))

    def finish(self, started: float) -> tuple[pl.DataFrame, StageStats]:
        frame = self.answers.frame()
        self.stats.cost_usd = float(frame["cost_usd"].sum()) if frame.height else 0.0
        if self.spending is not None:  # the ledger's figure: it also has what a failed earlier attempt paid
            self.stats.cost_usd = self.spending.ledger.run_cost(self.provider.name)
        self.stats.statuses = self.answers.statuses
        self.stats.cache_note = self.cache.degraded_reason
        self.stats.health = self.provider.health()
        self.stats.duration_s = time.monotonic() - started
        return frame, self.stats
