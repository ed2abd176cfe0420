"""A big table, chunk by chunk: every stage, the merge and landing over a bounded slice of its rows at a time.

Memory follows the chunk, not the table. Each chunk lands in its own transaction together with its mark
(`glaze.landed_chunks`), so a run that dies is resumed by a re-run that skips the chunks that landed;
landing stays an idempotent upsert, so a chunk done twice (a worker lost after landing) changes nothing.
The single-process runner below and the Dagster chunked job (one mapped step per chunk) share
`enrich_chunk` and `finish_table`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl
import psycopg

from glaze_pipeline.core.aio import run as run_async
from glaze_pipeline.core.intake.tables import TableInfo, TableStatus, load_source_rows, set_status, table_info
from glaze_pipeline.core.pipeline.coverage import provider_fields
from glaze_pipeline.core.pipeline.runtime import BudgetLimits, Runtime
from glaze_pipeline.core.pipeline.waterfall import TableWork, land_work, merged_and_validated, run_waterfall
from glaze_pipeline.core.storage.landing import (
    ChunkMark,
    chunk_lock,
    finish_chunks,
    landed_chunks,
    landed_values,
    table_hash,
)
from glaze_pipeline.core.storage.ledger import StageSummary, record_stage


@dataclass(frozen=True)
class Chunk:
    """Input rows `first_row`..`last_row` (row numbers, both included) of one table: at most `size` entities."""

    number: int
    first_row: int
    last_row: int
    entities: int = 0  # accepted rows in the range (the plan knows it; 0 when rebuilt from bounds alone)

    def mark(self, fields: Sequence[str]) -> ChunkMark:
        return ChunkMark(self.first_row, self.last_row, tuple(fields))


@dataclass
class ChunkOutcome:
    """What one chunk did: skipped (landed by an earlier, unfinished run) or enriched and landed. Plain data,
    so a step on one worker can hand it to a step on another (`as_dict` / `of_dict`)."""

    chunk: Chunk
    rows: int = 0
    skipped: bool = False
    records_written: int = 0
    stages: list[StageSummary] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of_dict(cls, data: dict[str, Any]) -> ChunkOutcome:
        stages = [StageSummary(**s) for s in data["stages"]]
        return cls(Chunk(**data["chunk"]), data["rows"], data["skipped"], data["records_written"], stages)


def plan_chunks(conn: psycopg.Connection, table_id: str, size: int) -> list[Chunk]:
    """The table's accepted rows in order, cut every `size` entities; the same table always gives the same cuts."""
    found = conn.execute(
        """SELECT min(row_number), max(row_number), count(*) FROM (
               SELECT row_number, (row_number() OVER (ORDER BY row_number) - 1) / %s AS chunk
               FROM glaze.input_rows WHERE table_id = %s AND outcome = 'accepted') numbered
           GROUP BY chunk ORDER BY chunk""",
        (size, table_id),
    ).fetchall()
    return [Chunk(i, first, last, n) for i, (first, last, n) in enumerate(found)]


def chunk_work(conn: psycopg.Connection, info: TableInfo, chunk: Chunk) -> TableWork:
    return TableWork.of(info, load_source_rows(conn, info, (chunk.first_row, chunk.last_row)))


def enrich_chunk(
    runtime: Runtime,
    table_id: str,
    chunk: Chunk,
    *,
    run_id: str,
    limits: BudgetLimits | None = None,
    share: float | None = None,
) -> ChunkOutcome:
    """Run one chunk through every stage, merge and check it, and land it with its mark, unless it landed already.

    With `share` (the chunk's part of the table, for chunks that run side by side) the chunk may spend
    only that part of the run budget, counted in a ledger run of its own, so the chunks together never
    pass the run budget however many run at once; a chunk run again counts what it paid before.
    """
    if share is not None:
        max_run, max_row = (limits or BudgetLimits()).resolve(runtime.settings)
        limits = BudgetLimits(max_run * share, max_row)
        run_id = f"{run_id}:rows{chunk.first_row}"
    with chunk_lock(runtime.database_url, table_id, chunk.first_row):
        return _enrich_chunk(runtime, table_id, chunk, run_id, limits)


def _enrich_chunk(
    runtime: Runtime, table_id: str, chunk: Chunk, run_id: str, limits: BudgetLimits | None
) -> ChunkOutcome:
    order = list(runtime.settings.waterfall_order)
    with runtime.connection() as conn:
        info = table_info(conn, table_id)
        work = chunk_work(conn, info, chunk)
        if (chunk.first_row, chunk.last_row) in landed_chunks(conn, table_id, work.asked):
            return ChunkOutcome(chunk, work.rows.height, skipped=True)
    frames, stats = run_async(run_waterfall(runtime, work, order, run_id=run_id, limits=limits))
    with runtime.connection() as conn:
        landed = landed_values(conn, table_id, work.rows["row_key"].to_list()) if work.carried else None
        fills = provider_fields(runtime.providers())
        records, _ = merged_and_validated(work, frames, order, runtime.settings.min_confidence, fills, landed)
        candidates = pl.concat([work.hints, *frames])
        landing = land_work(conn, work, records, candidates, chunk=chunk.mark(work.asked), run_id=run_id)
        conn.commit()
    summaries = [stage.summary(run_id, table_id) for stage in stats]
    return ChunkOutcome(chunk, work.rows.height, records_written=landing.records_written, stages=summaries)


def finish_table(
    runtime: Runtime, table_id: str, run_id: str, outcomes: Iterable[ChunkOutcome]
) -> tuple[str, list[StageSummary]]:
    """Every chunk landed: record the stages' sums for the run, forget the marks, mark the table enriched.

    Returns the table hash and the per-provider sums.
    """
    summaries = summed_stages(run_id, table_id, outcomes)
    with runtime.connection() as conn:
        for summary in summaries:
            record_stage(conn, summary)
        finish_chunks(conn, table_id)
        set_status(conn, table_id, TableStatus.ENRICHED, run_id)
        fingerprint = table_hash(conn, table_id)
        conn.commit()
    return fingerprint, summaries


def summed_stages(run_id: str, table_id: str, outcomes: Iterable[ChunkOutcome]) -> list[StageSummary]:
    """One provider's figures over all chunks of the run (skipped chunks add nothing)."""
    sums: dict[str, list[float]] = {}
    for outcome in outcomes:
        for s in outcome.stages:
            row = sums.setdefault(s.provider, [0, 0, 0, 0, 0, 0.0])
            for i, value in enumerate(
                (s.rows_with_gaps, s.cache_hits, s.ledger_hits, s.calls, s.paid_calls, s.cost_usd)
            ):
                row[i] += value
    return [
        StageSummary(run_id, table_id, p, int(a), int(b), int(c), int(d), int(e), round(f, 6))
        for p, (a, b, c, d, e, f) in sums.items()
    ]


def enrich_table_in_chunks(
    runtime: Runtime,
    table_id: str,
    run_id: str,
    *,
    size: int,
    limits: BudgetLimits | None = None,
    on_chunk: Callable[[ChunkOutcome, int], None] | None = None,
) -> tuple[str, list[ChunkOutcome]]:
    """One process, one chunk after another: the table hash and what each chunk did."""
    with runtime.connection() as conn:
        chunks = plan_chunks(conn, table_id, size)
    outcomes = []
    for chunk in chunks:
        outcome = enrich_chunk(runtime, table_id, chunk, run_id=run_id, limits=limits)
        outcomes.append(outcome)
        if on_chunk:
            on_chunk(outcome, len(chunks))
    fingerprint, _ = finish_table(runtime, table_id, run_id, outcomes)
    return fingerprint, outcomes
