"""The paid-call ledger (`glaze.provider_calls`): what every paid call cost and answered.

Redis may evict or be down; Postgres is the system of record. Every answered call
of a paid provider is written here with its cost and its answer, so budgets sum
real spending, and a cache miss whose answer is in the ledger is not paid again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from glaze_pipeline.core.storage.db import copy_rows

_COLUMNS = (
    "provider",
    "provider_version",
    "request_hash",
    "at",
    "run_id",
    "table_id",
    "row_key",
    "entity",
    "status",
    "cost_usd",
    "response",
)


@dataclass(frozen=True)
class Call:
    """One answered call: what was asked (hash), for which row, what it cost and what came back."""

    request_hash: str
    row_key: str
    entity: str
    status: str
    cost_usd: float
    response: bytes  # the encoded attempt (cache.encode_attempt), so the ledger can serve it again


class Ledger:
    """Reads and appends `glaze.provider_calls` for one run of one table."""

    def __init__(self, url: str, *, run_id: str, table_id: str) -> None:
        self.url = url
        self.run_id = run_id
        self.table_id = table_id
        self._conn: psycopg.Connection | None = None

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.url, autocommit=True)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def record(self, provider: str, version: str, calls: Sequence[Call]) -> None:
        """Append calls in one COPY; the timestamp is the write time, unique per (provider, request) row."""
        if not calls:
            return
        now = datetime.now(UTC)
        conn = self._connection()
        with conn.transaction():
            copy_rows(
                conn,
                "glaze.provider_calls",
                _COLUMNS,
                (
                    (
                        provider,
                        version,
                        c.request_hash,
                        now + timedelta(microseconds=i),  # same request twice in one batch stays two rows
                        self.run_id,
                        self.table_id,
                        c.row_key,
                        c.entity,
                        c.status,
                        c.cost_usd,
                        c.response.decode(),
                    )
                    for i, c in enumerate(calls)
                ),
            )

    def answers(
        self, provider: str, version: str, request_hashes: Sequence[str], ttl_s: int, negative_ttl_s: int
    ) -> dict[str, bytes]:
        """The newest still-fresh answer per request: found within `ttl_s`, not found within `negative_ttl_s`."""
        if not request_hashes:
            return {}
        # One index probe per request (LATERAL … LIMIT 1): a plain `= ANY` may make the planner scan
        # the whole provider's history when its statistics lag behind a fast-growing ledger.
        query = """SELECT h.request_hash, c.response::text FROM unnest(%s::text[]) AS h(request_hash)
            CROSS JOIN LATERAL (
                SELECT response FROM glaze.provider_calls
                WHERE provider = %s AND request_hash = h.request_hash AND provider_version = %s
                  AND ((status = 'filled' AND at > now() - make_interval(secs => %s))
                       OR (status = 'not_found' AND at > now() - make_interval(secs => %s)))
                ORDER BY at DESC LIMIT 1
            ) AS c"""
        params = (list(request_hashes), provider, version, ttl_s, negative_ttl_s)
        rows = self._connection().execute(query, params).fetchall()
        return {h: r.encode() for h, r in rows}

    def spent(self) -> tuple[float, dict[str, float]]:
        """What this run has paid so far, in total and per row (earlier stages and step retries included)."""
        rows = (
            self._connection()
            .execute(
                "SELECT row_key, sum(cost_usd) FROM glaze.provider_calls WHERE run_id = %s GROUP BY row_key",
                (self.run_id,),
            )
            .fetchall()
        )
        per_row = {k: float(v) for k, v in rows if k is not None}
        return sum(float(v) for _, v in rows), per_row

    def run_cost(self, provider: str) -> float:
        """What this run paid one provider for this table, step retries included: the stage's reported cost."""
        row = (
            self._connection()
            .execute(
                "SELECT coalesce(sum(cost_usd), 0) FROM glaze.provider_calls"
                " WHERE run_id = %s AND table_id = %s AND provider = %s",
                (self.run_id, self.table_id, provider),
            )
            .fetchone()
        )
        return float(row[0]) if row else 0.0


@dataclass(frozen=True)
class StageSummary:
    """What one provider stage did for one table in one run: the figures behind the provider_costs mart."""

    run_id: str
    table_id: str
    provider: str
    rows_with_gaps: int
    cache_hits: int
    ledger_hits: int
    calls: int
    paid_calls: int
    cost_usd: float


def record_stage(conn: psycopg.Connection, summary: StageSummary) -> None:
    """Upsert the stage's row: a retried step replaces its failed attempt's figures (the money stays in the ledger)."""
    conn.execute(
        """INSERT INTO glaze.provider_stages (run_id, table_id, provider, rows_with_gaps, cache_hits, ledger_hits,
               calls, paid_calls, cost_usd)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (run_id, table_id, provider) DO UPDATE SET
               rows_with_gaps = EXCLUDED.rows_with_gaps, cache_hits = EXCLUDED.cache_hits,
               ledger_hits = EXCLUDED.ledger_hits, calls = EXCLUDED.calls, paid_calls = EXCLUDED.paid_calls,
               cost_usd = EXCLUDED.cost_usd, finished_at = now()""",
        (
            summary.run_id,
            summary.table_id,
            summary.provider,
            summary.rows_with_gaps,
            summary.cache_hits,
            summary.ledger_hits,
            summary.calls,
            summary.paid_calls,
            summary.cost_usd,
        ),
    )
