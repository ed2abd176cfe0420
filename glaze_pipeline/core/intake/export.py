"""Give the user's table back: same rows, same order, duplicates included, enriched columns added."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import psycopg
from psycopg import sql

from glaze_pipeline.core.intake.tables import TableInfo

STATUS_COLUMN = "glaze_status"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def enriched_column_names(info: TableInfo) -> dict[str, str]:
    """Field → export column; a field whose name the user's table already uses gets a `glaze_` prefix."""
    taken = set(info.columns)
    return {f: (f"glaze_{f}" if f in taken else f) for f in info.wanted_fields}


def confidence_column_names(info: TableInfo) -> dict[str, str]:
    """Field → its confidence column (`<column>_confidence`), prefixed the same way when the name is taken."""
    taken = set(info.columns)
    names = {f: f"{column}_confidence" for f, column in enriched_column_names(info).items()}
    return {f: (f"glaze_{c}" if c in taken else c) for f, c in names.items()}


def field_confidence(provenance: object, field: str) -> str | None:
    """The confidence the provenance gives a field's best value: landed, or kept only as a candidate."""
    if provenance is None:
        return None
    entry = (provenance if isinstance(provenance, dict) else json.loads(str(provenance))).get(field) or {}
    confidence = entry.get("confidence")
    return None if confidence is None else str(confidence)


def export_frame(conn: psycopg.Connection, info: TableInfo) -> pl.DataFrame:
    """The user's rows in order; each enriched column followed by its confidence, then `glaze_status`.

    A confidence beside an empty cell is a value kept only as a candidate (below GLAZE_MIN_CONFIDENCE).
    """
    names, confidences = enriched_column_names(info), confidence_column_names(info)
    query = sql.SQL(
        """SELECT i.original, i.outcome, i.reason, r.status, r.provenance, {fields}
           FROM glaze.input_rows i
           LEFT JOIN glaze.records r ON r.table_id = i.table_id AND r.row_key = i.row_key
           WHERE i.table_id = %s ORDER BY i.row_number"""
    ).format(fields=sql.SQL(", ").join(sql.SQL("r.") + sql.Identifier(f) for f in names) or sql.SQL("NULL"))
    rows = conn.execute(query, (info.table_id,)).fetchall()
    out: dict[str, list[object]] = {c: [] for c in info.columns}
    for field, column in names.items():
        out[column], out[confidences[field]] = [], []
    out[STATUS_COLUMN] = []
    for original, outcome, reason, status, provenance, *values in rows:
        cells = original if isinstance(original, dict) else json.loads(original)
        for column in info.columns:
            out[column].append(cells.get(column))
        for (field, column), value in zip(names.items(), values, strict=True):
            out[column].append(value)
            out[confidences[field]].append(field_confidence(provenance, field))
        if outcome == "rejected":
            out[STATUS_COLUMN].append(f"rejected: {reason}")
        else:
            out[STATUS_COLUMN].append(status or "not_enriched")
    return pl.DataFrame(out, schema={c: pl.String for c in out})


def escape_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """Stop spreadsheet apps from executing cells: prefix risky leading characters with a quote."""
    pattern = "^[" + "".join("\\" + c if c in "-+" else c for c in _FORMULA_START) + "]"
    return frame.with_columns(
        pl.when(pl.col(c).str.contains(pattern)).then("'" + pl.col(c)).otherwise(pl.col(c)).alias(c)
        for c in frame.columns
        if frame.schema[c] == pl.String
    )


def write_export(frame: pl.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "csv":
        escape_formulas(frame).write_csv(path)
    elif fmt == "parquet":
        frame.write_parquet(path)
    else:
        raise ValueError(f"unknown export format {fmt!r}; use csv or parquet")
