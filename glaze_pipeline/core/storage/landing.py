"""The one place that writes enriched results to Postgres: COPY into staging, one upsert per batch.

Idempotent by construction: records upsert on (table_id, row_key) and only touch
`enriched_at` when a value changed; the audit trail adds the candidates it has not seen and
moves the `chosen` mark to what landed. A big table lands chunk by chunk, each chunk in its own
transaction together with its mark in `glaze.landed_chunks`, so a re-run after a crash skips what landed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl
import psycopg
from psycopg import sql

from glaze_pipeline.core.model.fields import FIELD_NAMES
from glaze_pipeline.core.model.records import AUDIT_COLUMNS, RECORD_KEY_COLUMNS
from glaze_pipeline.core.storage import db
from glaze_pipeline.core.storage.db import copy_frame

_RECORD_COLUMNS = (*RECORD_KEY_COLUMNS, *FIELD_NAMES, "provenance", "cost_usd", "status")
_AUDIT_KEY = ("table_id", "row_key", "field", "source", "fetched_at", "value_md5")


@dataclass(frozen=True)
class ChunkMark:
    """A chunk of a table: its input row-number range, and the fields the run asks for (a mark is per ask)."""

    first_row: int
    last_row: int
    fields: tuple[str, ...]


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
    trail: pl.DataFrame,
    rejects: pl.DataFrame,
    decided: Collection[str],
    *,
    chunk: ChunkMark | None = None,
    run_id: str = "",
) -> LandingStats:
    """Write merged records, their audit trail (`merge.audit_trail`) and validation rejects in one transaction.

    `decided` are the fields this run chose values for: their old `chosen` marks are cleared. Without
    `chunk` the frames are the whole table; with it they are one chunk's rows, its rejects replace only
    those rows' rejects, and the chunk's mark lands in the same transaction (`finish_chunks` ends the run).
    """
    row_keys = records["row_key"].to_list()
    with conn.transaction():
        written = _upsert_records(conn, table_id, records)
        added = _add_field_values(conn, table_id, trail, row_keys, decided)
        _replace_rejects(conn, table_id, rejects, row_keys if chunk else None)
        _costs_from_ledger(conn, table_id, row_keys if chunk else None)
        if chunk is None:
            conn.execute("UPDATE glaze.tables SET run_fields = NULL WHERE table_id = %s", (table_id,))
        else:
            conn.execute(
                "INSERT INTO glaze.landed_chunks (table_id, first_row, last_row, fields, run_id)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (table_id, first_row, last_row)"
                " DO UPDATE SET fields = EXCLUDED.fields, run_id = EXCLUDED.run_id, landed_at = now()",
                (table_id, chunk.first_row, chunk.last_row, list(chunk.fields), run_id),
            )
    return LandingStats(written, records.height - written, added, rejects.height)


def landed_chunks(conn: psycopg.Connection, table_id: str, fields: Collection[str]) -> set[tuple[int, int]]:
    """The row ranges of a table an unfinished run already landed, asking for the same fields."""
    rows = conn.execute(
        "SELECT first_row, last_row FROM glaze.landed_chunks WHERE table_id = %s AND fields = %s",
        (table_id, list(fields)),
    ).fetchall()
    return {(first, last) for first, last in rows}


@contextmanager
def chunk_lock(url: str, table_id: str, first_row: int) -> Iterator[None]:
    """Held while one process works on a chunk: a second delivery of the same chunk waits, then finds it landed.

    A session lock on a connection of its own, so it ends with the process: a killed worker's chunk is
    free for the next one at once, and two live workers never pay for the same chunk's rows side by side.
    """
    with db.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext(%s), %s)", (f"glaze.chunk:{table_id}", first_row))
        yield  # closing the connection releases the lock


def finish_chunks(conn: psycopg.Connection, table_id: str) -> None:
    """Every chunk landed: forget the marks (the next run is a refresh) and the narrowed ask, in one transaction."""
    with conn.transaction():
        conn.execute("DELETE FROM glaze.landed_chunks WHERE table_id = %s", (table_id,))
        conn.execute("UPDATE glaze.tables SET run_fields = NULL WHERE table_id = %s", (table_id,))


def _upsert_records(conn: psycopg.Connection, table_id: str, records: pl.DataFrame) -> int:
    """COPY into a staging table, then one upsert; `enriched_at` moves only when a value changed."""
    now = datetime.now(UTC)
    conn.execute("CREATE TEMP TABLE stage_records (LIKE glaze.records INCLUDING DEFAULTS) ON COMMIT DROP")
    copy_frame(
        conn,
        "stage_records",
        records.select(
            pl.lit(table_id, pl.String).alias("table_id"),
            *_RECORD_COLUMNS,
            pl.lit(now, pl.Datetime("us", "UTC")).alias("enriched_at"),
        ),
    )
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


def _costs_from_ledger(conn: psycopg.Connection, table_id: str, row_keys: list[str] | None = None) -> None:
    """A row's cost is what the ledger says the table paid for it, in every run, killed ones included.

    Adding each run's fresh calls would miss what a killed run paid: its answers come back free from the
    cache on the re-run, but they were paid, and the ledger has them. A chunk updates only its own rows.
    """
    conn.execute(
        """UPDATE glaze.records r SET cost_usd = l.cost_usd
           FROM (SELECT row_key, sum(cost_usd) AS cost_usd FROM glaze.provider_calls
                 WHERE table_id = %s AND row_key IS NOT NULL AND (%s::text[] IS NULL OR row_key = ANY(%s))
                 GROUP BY row_key) l
           WHERE r.table_id = %s AND r.row_key = l.row_key AND r.cost_usd IS DISTINCT FROM l.cost_usd""",
        (table_id, row_keys, row_keys, table_id),
    )


def _add_field_values(
    conn: psycopg.Connection, table_id: str, trail: pl.DataFrame, row_keys: list[str], decided: Collection[str]
) -> int:
    """The audit trail: every candidate once; the `chosen` mark and the reason follow the latest decision.

    A row whose mark and reason did not change is not rewritten (a cached re-run lands the same trail again):
    only the marks this landing moves are cleared, and only rows that differ or are new are written.
    """
    cols = _ids(("table_id", *AUDIT_COLUMNS))
    create = "CREATE TEMP TABLE stage_values ON COMMIT DROP AS SELECT {} FROM glaze.field_values WITH NO DATA"
    conn.execute(sql.SQL(create).format(cols))
    copy_frame(conn, "stage_values", trail.select(pl.lit(table_id, pl.String).alias("table_id"), *AUDIT_COLUMNS))
    key = _ids(_AUDIT_KEY)
    distinct = sql.SQL("table_id, row_key, field, source, fetched_at, md5(value)")
    # One row per key (a value found twice in one fetch), the chosen one first.
    conn.execute(
        sql.SQL(
            """CREATE TEMP TABLE stage_kept ON COMMIT DROP AS
               SELECT DISTINCT ON ({distinct}) {cols}, md5(value) AS value_md5 FROM stage_values
               ORDER BY {distinct}, chosen DESC"""
        ).format(cols=cols, distinct=distinct)
    )
    # Its key indexed, so every join below is index probes at worst, whatever the planner guesses of row counts
    # (a temporary table has no statistics; a nested loop over a scan of it would be quadratic).
    conn.execute(sql.SQL("ALTER TABLE stage_kept ADD PRIMARY KEY ({})").format(key))
    same_key = sql.SQL(" AND ").join(sql.SQL("f.{0} = s.{0}").format(sql.Identifier(c)) for c in _AUDIT_KEY)
    # A mark this landing sets again stays as it is; every other chosen mark of a decided field is cleared.
    conn.execute(
        sql.SQL(
            """UPDATE glaze.field_values f
               SET chosen = false, reason = 'chosen by an earlier run: ' || coalesce(f.reason, '')
               WHERE f.table_id = %s AND f.chosen AND f.row_key = ANY(%s) AND f.field = ANY(%s)
                 AND NOT EXISTS (SELECT 1 FROM stage_kept s WHERE {same_key} AND s.chosen)"""
        ).format(same_key=same_key),
        (table_id, row_keys, list(decided)),
    )
    # Rows that exist take the new mark and reason only where they differ (a join: unchanged rows are not
    # even locked); new rows are inserted, an existing row keeps its cost.
    conn.execute(
        sql.SQL(
            """UPDATE glaze.field_values f SET chosen = s.chosen, reason = s.reason FROM stage_kept s
               WHERE {same_key} AND (f.chosen, f.reason) IS DISTINCT FROM (s.chosen, s.reason)"""
        ).format(same_key=same_key)
    )
    inserted = conn.execute(
        sql.SQL(
            """INSERT INTO glaze.field_values AS f ({cols})
               SELECT {cols} FROM stage_kept s
               WHERE NOT EXISTS (SELECT 1 FROM glaze.field_values f WHERE {same_key})
               ON CONFLICT ({key}) DO UPDATE SET chosen = EXCLUDED.chosen, reason = EXCLUDED.reason
               RETURNING (xmax = 0) AS inserted"""
        ).format(cols=cols, key=key, same_key=same_key)
    ).fetchall()
    return sum(1 for (new,) in inserted if new)


def _replace_rejects(
    conn: psycopg.Connection, table_id: str, rejects: pl.DataFrame, row_keys: list[str] | None
) -> None:
    """A re-run that no longer rejects a row clears its old validation reject (of `row_keys` only, for a chunk)."""
    if row_keys is None:
        conn.execute("DELETE FROM glaze.rejects WHERE table_id = %s AND stage = 'validation'", (table_id,))
    else:
        conn.execute(
            "DELETE FROM glaze.rejects WHERE table_id = %s AND stage = 'validation' AND row_key = ANY(%s)",
            (table_id, row_keys),
        )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO glaze.rejects (table_id, stage, row_ref, row_key, reasons)"
            " VALUES (%s, 'validation', %s, %s, %s)",
            [(table_id, key, key, reasons) for key, reasons in rejects.select("row_key", "reasons").iter_rows()],
        )


def table_hash(conn: psycopg.Connection, table_id: str) -> str:
    """Fingerprint of what a table says: keys, values, confidences and sources, timestamps excluded.

    Postgres picks each field's status, confidence and source out of the provenance (in key order), so only
    those cross the wire, not the whole provenance with its conflicts and evidence.
    """
    query = sql.SQL(
        """SELECT row_key, {fields},
                  (SELECT coalesce(jsonb_agg(jsonb_build_array(k, v -> 'status', v -> 'confidence', v -> 'source')
                                             ORDER BY k COLLATE "C"), '[]')
                   FROM jsonb_each(provenance) AS e(k, v))
           FROM glaze.records WHERE table_id = %s ORDER BY row_key"""
    )
    digest = hashlib.sha256()
    for row in conn.execute(query.format(fields=_ids(FIELD_NAMES)), (table_id,)):
        evidence = {f: [status, confidence, source] for f, status, confidence, source in row[-1]}
        digest.update(json.dumps([list(row[:-1]), evidence], default=str).encode())
    return digest.hexdigest()


def landed_values(conn: psycopg.Connection, table_id: str, row_keys: list[str] | None = None) -> pl.DataFrame:
    """What a table (or its `row_keys`) holds now: row key, a column per field and provenance (JSON text)."""
    text = "SELECT row_key, {fields}, provenance::text FROM glaze.records WHERE table_id = %s"
    params: tuple[object, ...] = (table_id,)
    if row_keys is not None:
        text += " AND row_key = ANY(%s)"
        params = (table_id, row_keys)
    rows = conn.execute(sql.SQL(text).format(fields=_ids(FIELD_NAMES)), params).fetchall()
    schema = {"row_key": pl.String(), **{n: pl.String() for n in FIELD_NAMES}, "provenance": pl.String()}
    return pl.DataFrame(rows, schema=schema, orient="row")
