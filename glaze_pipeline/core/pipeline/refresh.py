"""Which landed values are old enough to ask for again: per table, the fields whose chosen value is stale.

A value's age is the `fetched_at` of its chosen candidate in `glaze.field_values`; values the upload gave
(`source = 'input'`) never go stale. The age limit is per field or per provider (`RefreshSettings`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg

from glaze_pipeline.config import RefreshSettings
from glaze_pipeline.core.intake.tables import TableStatus


@dataclass(frozen=True)
class StaleTable:
    table_id: str
    fields: tuple[str, ...]  # wanted fields with at least one stale value, in the table's order
    values: int  # stale values, all those fields together
    oldest: datetime
    providers: tuple[str, ...] = field(default=())


def stale_tables(
    conn: psycopg.Connection,
    policy: RefreshSettings,
    *,
    table_id: str | None = None,
    fields: Sequence[str] | None = None,
    older_than_days: float | None = None,
    now: datetime | None = None,
) -> list[StaleTable]:
    """Tables with stale values, oldest first; tables a run is working on (queued, running) are left out.

    `older_than_days` replaces the policy's ages for this call (`glaze refresh --older-than`).
    """
    rows = conn.execute(
        """SELECT f.table_id, f.field, f.source, f.fetched_at, t.wanted_fields
           FROM glaze.field_values f JOIN glaze.tables t USING (table_id)
           WHERE f.chosen AND f.source <> 'input' AND f.field = ANY(t.wanted_fields)
             AND t.status NOT IN (%s, %s) AND (%s::text IS NULL OR f.table_id = %s)
             AND (%s::text[] IS NULL OR f.field = ANY(%s))""",
        (TableStatus.QUEUED, TableStatus.RUNNING, table_id, table_id, fields, fields),
    ).fetchall()
    now = now or datetime.now(UTC)
    found: dict[str, _Found] = {}
    for table, name, source, fetched_at, wanted in rows:
        days = older_than_days if older_than_days is not None else policy.age_days(name, source)
        if fetched_at < now - timedelta(days=days):
            found.setdefault(table, _Found(wanted, fetched_at)).add(name, source, fetched_at)
    return sorted((entry.stale(table) for table, entry in found.items()), key=lambda t: t.oldest)


@dataclass
class _Found:
    wanted: list[str]
    oldest: datetime
    fields: set[str] = field(default_factory=set)
    providers: set[str] = field(default_factory=set)
    values: int = 0

    def add(self, name: str, source: str, fetched_at: datetime) -> None:
        self.fields.add(name)
        self.providers.add(source)
        self.values += 1
        self.oldest = min(self.oldest, fetched_at)

    def stale(self, table_id: str) -> StaleTable:
        ordered = tuple(f for f in self.wanted if f in self.fields)
        return StaleTable(table_id, ordered, self.values, self.oldest, tuple(sorted(self.providers)))
