"""The waterfall, wired once: a table's rows and wants, the gaps a provider sees, its spending, the merge, landing.

The Dagster provider assets, the chunked table job, the dry run and the benches all run a stage through
`run_provider_stage`, merge through `merged_and_validated` and land through `land_work`, so they cannot
wire the cache, ledger, budget or landing differently.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import polars as pl
import psycopg

from glaze_pipeline.core.intake.tables import TableInfo, load_source_rows, table_info
from glaze_pipeline.core.model.provider import Provider, Target
from glaze_pipeline.core.model.status import Status
from glaze_pipeline.core.pipeline.gaps import gap_targets, hint_candidates
from glaze_pipeline.core.pipeline.merge import audit_trail, carry_over, merge
from glaze_pipeline.core.pipeline.runtime import BudgetLimits, Runtime
from glaze_pipeline.core.pipeline.stage import Progress, StageStats, run_stage
from glaze_pipeline.core.pipeline.validation import validate_records
from glaze_pipeline.core.storage.landing import ChunkMark, LandingStats, land

REJECT_COLUMN = "reject_reasons"


@dataclass(frozen=True)
class TableWork:
    """One table's distinct entities, the fields wanted of them, and the values the upload already gave.

    `run_fields` narrows what this run asks providers for (fields added to an enriched table, stale fields
    of a refresh); the record keeps every wanted field, the others carried over from what landed before.
    `fresh` (a refresh) asks the providers again instead of serving the cache and the ledger.
    """

    table_id: str
    rows: pl.DataFrame
    wanted: tuple[str, ...]
    hints: pl.DataFrame
    run_fields: tuple[str, ...] = ()
    fresh: bool = False

    @classmethod
    def of(cls, info: TableInfo, rows: pl.DataFrame) -> TableWork:
        hints = hint_candidates(rows, info.hint_fields, info.created_at.astimezone(UTC))
        run_fields = tuple(f for f in info.run_fields or () if f in info.wanted_fields)
        return cls(info.table_id, rows, tuple(info.wanted_fields), hints, run_fields)

    @property
    def asked(self) -> tuple[str, ...]:
        """The fields providers are asked for in this run."""
        return self.run_fields or self.wanted

    @property
    def carried(self) -> tuple[str, ...]:
        """Wanted fields this run leaves as they landed before."""
        return tuple(f for f in self.wanted if f not in self.asked)

    @classmethod
    def load(cls, conn: psycopg.Connection, table_id: str) -> TableWork:
        info = table_info(conn, table_id)
        return cls.of(info, load_source_rows(conn, info))

    def targets(self, provider: Provider, upstream: Sequence[pl.DataFrame], min_confidence: int) -> list[Target]:
        """The rows this provider should see, given what the upload and earlier stages found."""
        return gap_targets(self.rows, self.asked, [self.hints, *upstream], provider, min_confidence)


async def run_provider_stage(
    runtime: Runtime,
    provider: Provider,
    work: TableWork,
    upstream: Sequence[pl.DataFrame],
    *,
    run_id: str,
    limits: BudgetLimits | None = None,
    progress: Progress | None = None,
) -> tuple[pl.DataFrame, StageStats]:
    """Run one provider over its gaps with the runtime's cache, and the ledger and budget when it is paid."""
    targets = work.targets(provider, upstream, runtime.settings.min_confidence)
    paid = provider.price_usd > 0
    spending = runtime.spending(run_id, work.table_id, limits) if paid else nullcontext(None)
    with spending as opened:
        return await run_stage(
            provider, targets, runtime.cache, progress=progress, spending=opened, wanted=work.asked, fresh=work.fresh
        )


async def run_waterfall(
    runtime: Runtime,
    work: TableWork,
    order: Sequence[str],
    *,
    run_id: str,
    limits: BudgetLimits | None = None,
) -> tuple[list[pl.DataFrame], list[StageStats]]:
    """Every provider stage over `work` in waterfall order, each seeing what the earlier ones found."""
    frames: list[pl.DataFrame] = []
    stats: list[StageStats] = []
    for name in order:
        frame, stage = await run_provider_stage(
            runtime, runtime.provider(name), work, frames, run_id=run_id, limits=limits
        )
        frames.append(frame)
        stats.append(stage)
    return frames, stats


def merged_and_validated(
    work: TableWork,
    provider_frames: Sequence[pl.DataFrame],
    order: Sequence[str],
    min_confidence: int,
    fills: dict[str, frozenset[str]] | None = None,
    landed: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """The best value per (row, field), checked row by row; bad cells cleared and explained in `reject_reasons`.

    Fields this run did not ask for (`work.carried`) keep what `landed` holds for them.
    """
    merged = merge(work.rows, work.asked, [work.hints, *provider_frames], order, min_confidence, fills=fills)
    if landed is not None:
        merged = carry_over(merged, landed, work.carried)
    result = validate_records(merged)
    reasons = dict(result.rejects.iter_rows())
    records = result.records.with_columns(
        pl.col("row_key").replace_strict(reasons, default=None, return_dtype=pl.String).alias(REJECT_COLUMN)
    )
    metadata: dict[str, Any] = {
        "rows": records.height,
        "filled_per_field": {f: int(records[f].is_not_null().sum()) for f in work.wanted},
        "rows_fully_filled": int((records["status"] == Status.FILLED.value).sum()),
        "rejected_rows": result.rejects.height,
        # No cost here: what the table paid is the ledger's, in landed_records' table_cost_usd.
    }
    return records, metadata


def land_work(
    conn: psycopg.Connection,
    work: TableWork,
    records: pl.DataFrame,
    candidates: pl.DataFrame,
    *,
    chunk: ChunkMark | None = None,
    run_id: str = "",
) -> LandingStats:
    """Land checked records (with their `reject_reasons`), the audit trail and the rejects: one transaction."""
    rejects = records.filter(pl.col(REJECT_COLUMN).is_not_null()).select(
        "row_key", pl.col(REJECT_COLUMN).alias("reasons")
    )
    checked = records.drop(REJECT_COLUMN)
    trail = audit_trail(checked, candidates)
    return land(conn, work.table_id, checked, trail, rejects, work.asked, chunk=chunk, run_id=run_id)
