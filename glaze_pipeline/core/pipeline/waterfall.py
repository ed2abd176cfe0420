"""One stage of the waterfall, wired once: a table's rows and wants, the gaps a provider sees, its spending.

The Dagster provider assets, the dry run and the benches all run a stage through
`run_provider_stage`, so they cannot wire the cache, ledger and budget differently.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC

import polars as pl
import psycopg

from glaze_pipeline.core.intake.tables import TableInfo, load_source_rows, table_info
from glaze_pipeline.core.model.provider import Provider, Target
from glaze_pipeline.core.pipeline.gaps import gap_targets, hint_candidates
from glaze_pipeline.core.pipeline.runtime import BudgetLimits, Runtime
from glaze_pipeline.core.pipeline.stage import Progress, StageStats, run_stage


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
