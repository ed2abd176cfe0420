"""The SQL the API reads with (always on a read-only connection, see `db.py`): tables, coverage, figures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from glaze_pipeline.core.model.fields import CATALOG


def tables_of(conn: psycopg.Connection, key_id: str, table_id: str | None = None) -> list[dict[str, Any]]:
    """The key's tables (or the one asked for), newest first, with coverage per wanted field and ledger cost."""
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            """SELECT t.table_id, t.name, t.status, t.rows_in, t.accepted, t.rejected, t.duplicates,
                      t.wanted_fields AS fields, t.created_at, t.updated_at, t.last_run_id,
                      (SELECT coalesce(sum(c.cost_usd), 0)::float8 FROM glaze.provider_calls c
                        WHERE c.table_id = t.table_id) AS cost_usd
               FROM glaze.tables t
               WHERE t.api_key_id = %s AND (%s::text IS NULL OR t.table_id = %s)
               ORDER BY t.created_at DESC, t.table_id LIMIT 200""",
            (key_id, table_id, table_id),
        )
        .fetchall()
    )
    for row in rows:
        row["enriched_rows"], row["coverage"] = _coverage(conn, row["table_id"], row["fields"], row["accepted"])
    return rows


def _coverage(
    conn: psycopg.Connection, table_id: str, fields: list[str], entities: int
) -> tuple[int, dict[str, float]]:
    known = [f for f in fields if f in CATALOG]  # column names come from the catalog, never from the caller
    counts = sql.SQL(", ").join(sql.SQL("count({})").format(sql.Identifier(f)) for f in known)
    query = sql.SQL("SELECT count(*){sep}{counts} FROM glaze.records WHERE table_id = %s").format(
        sep=sql.SQL(", ") if known else sql.SQL(""), counts=counts
    )
    row = conn.execute(query, (table_id,)).fetchone()
    assert row is not None
    total = max(entities, 1)
    return int(row[0]), {f: round(int(n) / total, 4) for f, n in zip(known, row[1:], strict=True)}


@dataclass(frozen=True)
class Figures:
    """What /metrics shows: the queue, durations, throughput, success, and money from the ledger."""

    by_status: dict[str, int]
    durations: list[float]  # seconds from created to finished, of finished requests (histogram source)
    finished_5m: int
    completed_1h: int
    finished_1h: int
    cost_by_provider: dict[str, float]
    api_cost_sum: float
    api_cost_count: int
    cache_hits: int


DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


def figures(conn: psycopg.Connection) -> tuple[Figures, dict[float, int], float]:
    """The figures, the duration histogram's cumulative buckets, and the sum of durations."""
    by_status: dict[str, int] = dict(
        conn.execute("SELECT status, count(*) FROM glaze.requests GROUP BY status").fetchall()
    )
    buckets = sql.SQL(", ").join(
        sql.SQL("count(*) FILTER (WHERE d <= {})").format(sql.Literal(b)) for b in DURATION_BUCKETS
    )
    hist = conn.execute(
        sql.SQL(
            """SELECT {buckets}, count(*), coalesce(sum(d), 0)::float8 FROM (
                 SELECT extract(epoch FROM finished_at - created_at)::float8 AS d FROM glaze.requests
                 WHERE finished_at IS NOT NULL) s"""
        ).format(buckets=buckets)
    ).fetchone()
    assert hist is not None
    windows = conn.execute(
        """SELECT count(*) FILTER (WHERE finished_at > now() - interval '5 minutes'),
                  count(*) FILTER (WHERE status = 'completed' AND finished_at > now() - interval '1 hour'),
                  count(*) FILTER (WHERE finished_at > now() - interval '1 hour'),
                  count(*) FILTER (WHERE cache_hit),
                  coalesce(sum(cost_usd) FILTER (WHERE status IN ('completed', 'failed')), 0)::float8,
                  count(*) FILTER (WHERE status IN ('completed', 'failed'))
           FROM glaze.requests"""
    ).fetchone()
    assert windows is not None
    costs: dict[str, float] = dict(
        conn.execute(
            "SELECT provider, coalesce(sum(cost_usd), 0)::float8 FROM glaze.provider_calls GROUP BY provider"
        ).fetchall()
    )
    figures_ = Figures(
        by_status={str(k): int(v) for k, v in by_status.items()},
        durations=[],
        finished_5m=int(windows[0]),
        completed_1h=int(windows[1]),
        finished_1h=int(windows[2]),
        cost_by_provider={str(k): float(v) for k, v in costs.items()},
        api_cost_sum=float(windows[4]),
        api_cost_count=int(windows[5]),
        cache_hits=int(windows[3]),
    )
    cumulative = {b: int(n) for b, n in zip(DURATION_BUCKETS, hist[: len(DURATION_BUCKETS)], strict=True)}
    cumulative[float("inf")] = int(hist[len(DURATION_BUCKETS)])
    return figures_, cumulative, float(hist[len(DURATION_BUCKETS) + 1])


def ping(conn: psycopg.Connection) -> None:
    conn.execute("SELECT 1")
