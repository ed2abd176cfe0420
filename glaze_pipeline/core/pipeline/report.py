"""A table's picture: coverage by field (with why the rest is empty) and cost by provider, from Postgres.

`landed_records` puts it in the asset metadata, `glaze enrich` and `glaze status` print it; all three
read it here, and the cost comes from the paid-call ledger, so every figure equals the ledger.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import psycopg

from glaze_pipeline.core.intake.tables import table_info
from glaze_pipeline.core.model.status import Status


@dataclass(frozen=True)
class FieldLine:
    field: str
    filled: int
    rows: int  # rows the field applies to
    empty_because: Counter[str]  # status → rows, for the rows left empty
    note: str = ""  # said before the run too: no configured provider fills it

    @property
    def percent(self) -> float:
        return 100.0 * self.filled / self.rows if self.rows else 0.0

    def why_empty(self) -> str:
        parts = [f"{status} {n}" for status, n in self.empty_because.most_common()]
        return ", ".join(parts)


@dataclass(frozen=True)
class ProviderLine:
    provider: str
    calls: int  # answered calls recorded in the ledger (paid providers only)
    paid_calls: int
    cost_usd: float
    free: bool = False  # a free provider (the website) is not in the ledger


@dataclass(frozen=True)
class TableReport:
    table_id: str
    status: str
    entities: int
    fields: list[FieldLine]
    providers: list[ProviderLine]
    row_statuses: dict[str, int] = field(default_factory=dict)

    @property
    def cost_usd(self) -> float:
        return sum(p.cost_usd for p in self.providers)

    @property
    def coverage_percent(self) -> float:
        cells = sum(f.rows for f in self.fields)
        return 100.0 * sum(f.filled for f in self.fields) / cells if cells else 0.0

    def markdown(self) -> str:
        """The picture as markdown tables, for the asset metadata in the Dagster UI."""
        lines = ["| field | filled | of | % | why the rest is empty |", "|---|---:|---:|---:|---|"]
        for f in self.fields:
            why = "; ".join(x for x in (f.why_empty(), f.note) if x)
            lines.append(f"| `{f.field}` | {f.filled} | {f.rows} | {f.percent:.0f} | {why} |")
        lines += ["", "| provider | calls | paid calls | cost (USD) |", "|---|---:|---:|---:|"]
        for p in self.providers:
            calls = "free | " if p.free else f"{p.calls} | {p.paid_calls}"
            lines.append(f"| {p.provider} | {calls} | {p.cost_usd:.4f} |")
        lines.append(f"| **total** | | | **{self.cost_usd:.4f}** |")
        return "\n".join(lines)


def table_report(
    conn: psycopg.Connection, table_id: str, providers: Mapping[str, float], notes: dict[str, str] | None = None
) -> TableReport:
    """Read a table's coverage from its records' provenance and its cost from the ledger, per provider.

    `providers` are the waterfall's, with their price per call (0: free, never in the ledger); `notes` say
    why a field no configured provider fills stays empty.
    """
    info = table_info(conn, table_id)
    statuses = conn.execute(
        """SELECT p.key, p.value ->> 'status', count(*) FROM glaze.records r, jsonb_each(r.provenance) p
           WHERE r.table_id = %s GROUP BY 1, 2""",
        (table_id,),
    ).fetchall()
    statuses_of_rows = conn.execute(
        "SELECT status, count(*) FROM glaze.records WHERE table_id = %s GROUP BY status", (table_id,)
    ).fetchall()
    by_field: dict[str, Counter[str]] = {}
    for name, status, n in statuses:
        by_field.setdefault(name, Counter())[status] += n
    fields = []
    for name in info.wanted_fields:
        counts = by_field.get(name, Counter())
        filled = counts.pop(Status.FILLED.value, 0)
        fields.append(FieldLine(name, filled, filled + sum(counts.values()), counts, (notes or {}).get(name, "")))
    return TableReport(
        table_id,
        info.status,
        sum(n for _, n in statuses_of_rows),
        fields,
        _provider_costs(conn, table_id, providers),
        dict(statuses_of_rows),
    )


def _provider_costs(conn: psycopg.Connection, table_id: str, providers: Mapping[str, float]) -> list[ProviderLine]:
    rows = conn.execute(
        """SELECT provider, count(*), count(*) FILTER (WHERE cost_usd > 0), coalesce(sum(cost_usd), 0)
           FROM glaze.provider_calls WHERE table_id = %s GROUP BY provider""",
        (table_id,),
    ).fetchall()
    spent = {name: ProviderLine(name, calls, paid, float(cost)) for name, calls, paid, cost in rows}
    ordered = [spent.pop(name, ProviderLine(name, 0, 0, 0.0, free=price <= 0)) for name, price in providers.items()]
    return ordered + sorted(spent.values(), key=lambda p: p.provider)
