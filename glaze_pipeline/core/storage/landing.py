"""The one place that writes enriched results to Postgres: COPY into staging, one upsert per batch.

Idempotent by construction: records upsert on (table_id, row_key) and only touch
`enriched_at` when a value changed; the audit trail adds the candidates it has not seen and
moves the `chosen` mark to what landed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl
import psycopg
from psycopg import sql

from glaze_pipeline.core.model.fields import FIELD_NAMES
from glaze_pipeline.core.model.records import AUDIT_COLUMNS, RECORD_KEY_COLUMNS
from glaze_pipeline.core.storage.db import copy_rows

_RECORD_COLUMNS = (*RECORD_KEY_COLUMNS, *FIELD_NAMES, "provenance", "cost_usd", "status")
_AUDIT_KEY = ("table_id", "row_key", "field", "source", "fetched_at", "value_md5")


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
) -> LandingStats:
    """Write one table's merged records, its audit trail (`merge.audit_trail`) and validation rejects in one
    transaction. `decided` are the fields this run chose values for: their old `chosen` marks are cleared.
    """
    with conn.transaction():
        written = _upsert_records(conn, table_id, records)
        _costs_from_ledger(conn, table_id)
        added = _add_field_values(conn, table_id, trail, records["row_key"].to_list(), decided)
        _replace_rejects(conn, table_id, rejects)
        conn.execute("UPDATE glaze.tables SET run_fields = NULL WHERE table_id = %s", (table_id,))
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


def _costs_from_ledger(conn: psycopg.Connection, table_id: str) -> None:
    """A row's cost is what the ledger says was paid for it in this table, over every run.

    The upsert adds what this run paid; a run that paid and then died before landing (killed, the
    database restarted) is served free by the ledger on its re-run, so only the ledger still knows.
    """
    conn.execute(
        """UPDATE glaze.records r SET cost_usd = l.cost_usd
           FROM (SELECT row_key, sum(cost_usd) AS cost_usd FROM glaze.provider_calls
                 WHERE table_id = %s GROUP BY row_key) l
           WHERE r.table_id = %s AND r.row_key = l.row_key AND r.cost_usd IS DISTINCT FROM l.cost_usd""",
        (table_id, table_id),
    )


def _add_field_values(
    conn: psycopg.Connection, table_id: str, trail: pl.DataFrame, row_keys: list[str], decided: Collection[str]
) -> int:
    """The audit trail: every candidate once; the `chosen` mark and the reason follow the latest decision."""
    conn.execute(
        "UPDATE glaze.field_values SET chosen = false, reason = 'chosen by an earlier run: ' || coalesce(reason, '')"
        " WHERE table_id = %s AND chosen AND row_key = ANY(%s) AND field = ANY(%s)",
        (table_id, row_keys, list(decided)),
    )
    cols = _ids(("table_id", *AUDIT_COLUMNS))
    create = "CREATE TEMP TABLE stage_values ON COMMIT DROP AS SELECT {} FROM glaze.field_values WITH NO DATA"
    conn.execute(sql.SQL(create).format(cols))
    copy_rows(
        conn,
        "stage_values",
        ("table_id", *AUDIT_COLUMNS),
        [(table_id, *r) for r in trail.select(AUDIT_COLUMNS).iter_rows()],
    )
    key = _ids(_AUDIT_KEY)
    distinct = sql.SQL("table_id, row_key, field, source, fetched_at, md5(value)")
    # One row per key (a value found twice in one fetch), the chosen one first; an existing row keeps its cost.
    inserted = conn.execute(
        sql.SQL(
            """INSERT INTO glaze.field_values AS f ({cols})
               SELECT DISTINCT ON ({distinct}) {cols} FROM stage_values ORDER BY {distinct}, chosen DESC
               ON CONFLICT ({key}) DO UPDATE SET chosen = EXCLUDED.chosen, reason = EXCLUDED.reason
               RETURNING (xmax = 0) AS inserted"""
        ).format(cols=cols, key=key, distinct=distinct)
    ).fetchall()
    return sum(1 for (new,) in inserted if new)


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


def landed_values(conn: psycopg.Connection, table_id: str) -> pl.DataFrame:
    """What a table holds now: row key, a column per field and provenance (JSON text), for a run that keeps some."""
    query = sql.SQL("SELECT row_key, {fields}, provenance::text FROM glaze.records WHERE table_id = %s")
    rows = conn.execute(query.format(fields=_ids(FIELD_NAMES)), (table_id,)).fetchall()
    schema = {"row_key": pl.String(), **{n: pl.String() for n in FIELD_NAMES}, "provenance": pl.String()}
    return pl.DataFrame(rows, schema=schema, orient="row")
