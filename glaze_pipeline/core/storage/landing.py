"""The one place that writes enriched results to Postgres: COPY into staging, one upsert per batch.

Idempotent by construction: records upsert on (table_id, row_key) and only touch
`enriched_at` when a value changed; the audit trail ignores candidates it already has.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl
import psycopg
from psycopg import sql

from glaze_pipeline.core.model.fields import FIELD_NAMES
from glaze_pipeline.core.model.records import RECORD_KEY_COLUMNS
from glaze_pipeline.core.model.status import Status
from glaze_pipeline.core.storage.db import copy_rows

_RECORD_COLUMNS = (*RECORD_KEY_COLUMNS, *FIELD_NAMES, "provenance", "cost_usd", "status")
_FIELD_VALUE_COLUMNS = (
    "row_key",
    "field",
    "source",
    "fetched_at",
    "value",
    "confidence",
    "evidence",
    "cost_usd",
    "cached",
)


@dataclass(frozen=True)
class LandingStats:
    records_written: int  # inserted or changed
    records_unchanged: int
    field_values_added: int
    rejects_written: int


def _ids(names: tuple[str, ...]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


def land(
    conn: psycopg.Connection,
    table_id: str,
    records: pl.DataFrame,
    candidates: pl.DataFrame,
    rejects: pl.DataFrame,
) -> LandingStats:
    """Write one table's merged records, their candidates and validation rejects in one transaction."""
    with conn.transaction():
        written = _upsert_records(conn, table_id, records)
        added = _add_field_values(conn, table_id, candidates)
        _replace_rejects(conn, table_id, rejects)
    return LandingStats(written, records.height - written, added, rejects.height)


def _upsert_records(conn: psycopg.Connection, table_id: str, records: pl.DataFrame) -> int:
    """COPY into a staging table, then one upsert; `enriched_at` moves only when a value changed."""
    now = datetime.now(UTC)
    conn.execute("CREATE TEMP TABLE stage_records (LIKE glaze.records INCLUDING DEFAULTS) ON COMMIT DROP")
    record_rows = [(table_id, *r, now) for r in records.select(_RECORD_COLUMNS).iter_rows()]
    copy_rows(conn, "stage_records", ("table_id", *_RECORD_COLUMNS, "enriched_at"), record_rows)
    values = sql.SQL(", ").join(sql.SQL("r.") + sql.Identifier(n) for n in FIELD_NAMES)
    new_values = sql.SQL(", ").join(sql.SQL("EXCLUDED.") + sql.Identifier(n) for n in FIELD_NAMES)
    updates = sql.SQL(", ").join(
        sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c))
        for c in ("input_url", "normalized_url", "entity_type", *FIELD_NAMES, "provenance", "status")
    )
    return conn.execute(
        sql.SQL(
            """INSERT INTO glaze.records AS r ({cols})
               SELECT {cols} FROM stage_records
               ON CONFLICT (table_id, row_key) DO UPDATE SET {updates},
                   cost_usd = r.cost_usd + EXCLUDED.cost_usd,
                   enriched_at = CASE WHEN ({values}) IS DISTINCT FROM ({new_values})
                                      THEN EXCLUDED.enriched_at ELSE r.enriched_at END
               WHERE ({values}, r.provenance, r.status) IS DISTINCT FROM ({new_values}, EXCLUDED.provenance,
                     EXCLUDED.status) OR EXCLUDED.cost_usd <> 0"""
        ).format(
            cols=_ids(("table_id", *_RECORD_COLUMNS, "enriched_at")),
            updates=updates,
            values=values,
            new_values=new_values,
        )
    ).rowcount


def _add_field_values(conn: psycopg.Connection, table_id: str, candidates: pl.DataFrame) -> int:
    """The audit trail: every filled candidate, once (a re-run adds only what it has not seen)."""
    filled = candidates.filter(pl.col("status") == Status.FILLED.value)
    conn.execute("CREATE TEMP TABLE stage_values (LIKE glaze.field_values) ON COMMIT DROP")
    copy_rows(
        conn,
        "stage_values",
        ("table_id", *_FIELD_VALUE_COLUMNS),
        [(table_id, *r) for r in filled.select(_FIELD_VALUE_COLUMNS).iter_rows()],
    )
    return conn.execute(
        sql.SQL(
            "INSERT INTO glaze.field_values ({cols}) SELECT {cols} FROM stage_values ON CONFLICT DO NOTHING"
        ).format(cols=_ids(("table_id", *_FIELD_VALUE_COLUMNS)))
    ).rowcount


def _replace_rejects(conn: psycopg.Connection, table_id: str, rejects: pl.DataFrame) -> None:
    """A re-run that no longer rejects a row clears its old validation reject."""
    conn.execute("DELETE FROM glaze.rejects WHERE table_id = %s AND stage = 'validation'", (table_id,))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO glaze.rejects (table_id, stage, row_ref, row_key, reasons)"
            " VALUES (%s, 'validation', %s, %s, %s)",
            [(table_id, key, key, reasons) for key, reasons in rejects.select("row_key", "reasons").iter_rows()],
        )


def table_hash(conn: psycopg.Connection, table_id: str) -> str:
    """Fingerprint of what a table says: keys, values, confidences and sources, timestamps excluded."""
    query = sql.SQL("SELECT row_key, {fields}, provenance FROM glaze.records WHERE table_id = %s ORDER BY row_key")
    digest = hashlib.sha256()
    for row in conn.execute(query.format(fields=_ids(FIELD_NAMES)), (table_id,)):
        provenance = row[-1]
        evidence = {f: [p.get("status"), p.get("confidence"), p.get("source")] for f, p in sorted(provenance.items())}
        digest.update(json.dumps([list(row[:-1]), evidence], default=str).encode())
    return digest.hexdigest()
