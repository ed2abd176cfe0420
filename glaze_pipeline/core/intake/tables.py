"""The upload registry in Postgres: register a parsed upload, track its status, read its entities back.

An upload is stored whole (every input row, its original cells and its outcome)
before any enrichment starts, so nothing the user gave us can be lost later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import polars as pl
import psycopg
from psycopg import sql
from psycopg.rows import class_row

from glaze_pipeline.core.intake.ingest import ROWS_SCHEMA, ParsedUpload
from glaze_pipeline.core.model.fields import field_for_column
from glaze_pipeline.core.storage.db import copy_rows
from glaze_pipeline.errors import UserFacingError

_REGISTRY_LOCK = 7_311_043


class TableNotFound(UserFacingError, LookupError):
    pass


class TableStatus:
    PENDING = "pending"  # uploaded; the sensor will launch it
    PLANNED = "planned"  # uploaded by a dry run: nothing launches it until `glaze enrich TABLE_ID`
    QUEUED = "queued"  # a run was requested by the sensor
    RUNNING = "running"  # a run (sensor-launched or `glaze enrich`) is working on it
    ENRICHED = "enriched"
    FAILED = "failed"


@dataclass(frozen=True)
class TableInfo:
    table_id: str
    name: str
    url_column: str
    columns: list[str]
    wanted_fields: list[str]
    hint_fields: list[str]
    rows_in: int
    accepted: int
    rejected: int
    duplicates: int
    status: str
    created_at: datetime
    source_file: str | None = None
    status_reason: str | None = None
    run_fields: list[str] | None = None  # what the next run asks for; None: every wanted field


def _free_table_id(conn: psycopg.Connection, base: str) -> str:
    taken = {
        r[0]
        for r in conn.execute(
            "SELECT table_id FROM glaze.tables WHERE table_id = %s OR table_id LIKE %s",
            (base, base[:58] + "\\_%"),
        )
    }
    if base not in taken:
        return base
    n = 2
    while f"{base[:58]}_{n}" in taken:
        n += 1
    return f"{base[:58]}_{n}"


def register_upload(
    conn: psycopg.Connection,
    parsed: ParsedUpload,
    wanted: list[str],
    *,
    source_file: str | None,
    status: str = TableStatus.PENDING,
) -> str:
    """Store the upload and its rows in one transaction; returns the table id (made unique)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_REGISTRY_LOCK,))
        table_id = _free_table_id(conn, parsed.table_name)
        counts = parsed.counts
        conn.execute(
            """INSERT INTO glaze.tables (table_id, name, source_file, url_column, columns, wanted_fields,
                   hint_fields, rows_in, accepted, rejected, duplicates, status)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            (
                table_id,
                parsed.table_name,
                source_file,
                parsed.url_column,
                json.dumps(parsed.columns),
                wanted,
                parsed.hint_fields,
                counts.rows_in,
                counts.accepted,
                counts.rejected,
                counts.duplicates,
                status,
            ),
        )
        copy_rows(
            conn,
            "glaze.input_rows",
            ("table_id", *ROWS_SCHEMA),
            ((table_id, *row) for row in parsed.rows.select(list(ROWS_SCHEMA)).iter_rows()),
        )
        rejected = parsed.rows.filter(pl.col("outcome") == "rejected").select("row_number", "reason")
        copy_rows(
            conn,
            "glaze.rejects",
            ("table_id", "stage", "row_ref", "row_number", "reasons"),
            ((table_id, "upload", str(n), n, json.dumps([reason])) for n, reason in rejected.iter_rows()),
        )
    return table_id


def table_info(conn: psycopg.Connection, table_id: str) -> TableInfo:
    cur = conn.cursor(row_factory=class_row(TableInfo))
    info = cur.execute(
        """SELECT table_id, name, url_column, columns, wanted_fields, hint_fields, rows_in, accepted,
                  rejected, duplicates, status, created_at, source_file, status_reason, run_fields
           FROM glaze.tables WHERE table_id = %s""",
        (table_id,),
    ).fetchone()
    if info is None:
        raise TableNotFound(f"no table {table_id!r}; `glaze tables` lists the uploaded ones")
    return info


def list_tables(conn: psycopg.Connection) -> list[TableInfo]:
    ids = [r[0] for r in conn.execute("SELECT table_id FROM glaze.tables ORDER BY created_at")]
    return [table_info(conn, t) for t in ids]


def set_status(
    conn: psycopg.Connection, table_id: str, status: str, run_id: str | None = None, reason: str | None = None
) -> None:
    """Move a table to `status`; `reason` says why (a failure's cause) and is cleared by any later change."""
    conn.execute(
        "UPDATE glaze.tables SET status = %s, last_run_id = coalesce(%s, last_run_id), status_reason = %s,"
        " heartbeat_at = CASE WHEN %s = 'running' THEN now() END, updated_at = now() WHERE table_id = %s",
        (status, run_id, reason, status, table_id),
    )


def set_wanted_fields(conn: psycopg.Connection, table_id: str, wanted: list[str]) -> None:
    conn.execute(
        "UPDATE glaze.tables SET wanted_fields = %s, updated_at = now() WHERE table_id = %s", (wanted, table_id)
    )


def ask_for_fields(conn: psycopg.Connection, table_id: str, fields: list[str]) -> list[str]:
    """Choose the fields of the next run. On a table that has landed before, they are added to what it
    wants and the next run asks only for them; otherwise they replace the wanted fields. Returns the
    fields the table now wants.
    """
    info = table_info(conn, table_id)
    landed = conn.execute("SELECT 1 FROM glaze.records WHERE table_id = %s LIMIT 1", (table_id,)).fetchone()
    if landed is None:
        set_wanted_fields(conn, table_id, fields)
        return fields
    wanted = [*info.wanted_fields, *(f for f in fields if f not in info.wanted_fields)]
    conn.execute(
        "UPDATE glaze.tables SET wanted_fields = %s, run_fields = %s, updated_at = now() WHERE table_id = %s",
        (wanted, fields, table_id),
    )
    return wanted


def accepted_rows(conn: psycopg.Connection, table_ids: list[str]) -> dict[str, int]:
    rows = conn.execute("SELECT table_id, accepted FROM glaze.tables WHERE table_id = ANY(%s)", (table_ids,))
    return dict(rows.fetchall())


def pending_tables(conn: psycopg.Connection) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT table_id FROM glaze.tables WHERE status = %s ORDER BY created_at", (TableStatus.PENDING,)
        )
    ]


def load_source_rows(conn: psycopg.Connection, info: TableInfo, rows: tuple[int, int] | None = None) -> pl.DataFrame:
    """One row per distinct entity (first occurrence), with input hints as catalog-named columns.

    `rows` narrows it to an input row-number range (first, last), both included: one chunk of a big table.
    """
    hint_columns = [
        sql.SQL("original ->> {} AS {}").format(sql.Literal(col), sql.Identifier(_field_of(col)))
        for col in info.hint_fields
    ]
    query = sql.SQL(
        "SELECT row_key, input_url, normalized_url, entity_type{hints} FROM glaze.input_rows"
        " WHERE table_id = %s AND outcome = 'accepted' AND row_number BETWEEN %s AND %s ORDER BY row_number"
    ).format(hints=sql.SQL("").join(sql.SQL(", ") + h for h in hint_columns))
    names = [
        "row_key",
        "input_url",
        "normalized_url",
        "entity_type",
        *(_field_of(c) for c in info.hint_fields),
    ]
    first, last = rows or (0, 2**31 - 1)
    found = conn.execute(query, (info.table_id, first, last)).fetchall()
    return pl.DataFrame(found, schema={n: pl.String for n in names}, orient="row")


def _field_of(column: str) -> str:
    name = field_for_column(column)
    if name is None:
        raise ValueError(f"hint column {column!r} is not a catalog field")
    return name
