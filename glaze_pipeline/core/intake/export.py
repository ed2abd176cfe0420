"""Give the user's table back: same rows, same order, duplicates included, enriched columns added.

An export can be uploaded and exported again: the user's columns are kept as they are, and each column
glaze adds takes the first free name of `name`, `glaze_name`, `glaze_name_2`, `glaze_name_3`, …
The file is written beside its target and moved into place, never over an existing file unless forced.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import psycopg
from psycopg import sql

from glaze_pipeline.core.intake.tables import TableInfo
from glaze_pipeline.errors import UserFacingError

STATUS_COLUMN = "glaze_status"
EXPLAIN_PARTS = ("source", "status")  # --explain: `<column>_<part>` beside each enriched column and its confidence
# A spreadsheet runs a cell starting with one of these as a formula (full-width forms too, in some locales).
_FORMULA_START = "=+-@\t\r＝＋－＠"
_RISKY = "^[" + "".join("\\" + c if c in "-+" else c for c in _FORMULA_START) + "]"
_SIGNED_NUMBER = r"^[+-]?[0-9]+(?:\.[0-9]+)?$"  # +14155550123, -3.5: a number, never a formula


class ExportError(UserFacingError):
    """The export cannot be written where asked; the message says what to choose instead."""


@dataclass(frozen=True)
class ExportLayout:
    """Which column each field lands in, its confidence column, and its explanation columns when asked for."""

    fields: dict[str, str]  # field → column
    confidence: dict[str, str]  # field → `<column>_confidence`, always there
    explain: dict[str, tuple[str, str]]  # field → (source, status) columns, with --explain
    status: str


def _free(base: str, taken: set[str]) -> str:
    """`base`, else `glaze_base`, else `glaze_base_2`, `_3` …: the rule a re-upload of an export relies on."""
    stem = base if base.startswith("glaze_") else f"glaze_{base}"
    candidates = itertools.chain((base, stem), (f"{stem}_{n}" for n in itertools.count(2)))
    name = next(c for c in candidates if c not in taken)
    taken.add(name)
    return name


def export_layout(info: TableInfo, *, explain: bool = False) -> ExportLayout:
    taken = set(info.columns)
    fields: dict[str, str] = {}
    confidence: dict[str, str] = {}
    explained: dict[str, tuple[str, str]] = {}
    for field in info.wanted_fields:
        fields[field] = column = _free(field, taken)
        confidence[field] = _free(f"{column}_confidence", taken)
        if explain:
            source, status = (_free(f"{column}_{part}", taken) for part in EXPLAIN_PARTS)
            explained[field] = (source, status)
    return ExportLayout(fields, confidence, explained, _free(STATUS_COLUMN, taken))


def enriched_column_names(info: TableInfo) -> dict[str, str]:
    """Field → export column (see `export_layout`)."""
    return export_layout(info).fields


def confidence_column_names(info: TableInfo) -> dict[str, str]:
    """Field → its confidence column, `<column>_confidence` named by the same rule."""
    return export_layout(info).confidence


def export_frame(conn: psycopg.Connection, info: TableInfo, *, explain: bool = False) -> pl.DataFrame:
    """The user's rows in order; each enriched column followed by its confidence (and, with `explain`, its
    source and status), then `glaze_status`.

    A confidence beside an empty cell is a value kept only as a candidate (below GLAZE_MIN_CONFIDENCE).
    """
    layout = export_layout(info, explain=explain)
    query = sql.SQL(
        """SELECT i.original, i.outcome, i.reason, r.status, r.provenance, {fields}
           FROM glaze.input_rows i
           LEFT JOIN glaze.records r ON r.table_id = i.table_id AND r.row_key = i.row_key
           WHERE i.table_id = %s ORDER BY i.row_number"""
    ).format(fields=sql.SQL(", ").join(sql.SQL("r.") + sql.Identifier(f) for f in layout.fields) or sql.SQL("NULL"))
    schema: dict[str, pl.DataType] = {c: pl.String() for c in info.columns}
    for field, column in layout.fields.items():
        schema |= {column: pl.String(), layout.confidence[field]: pl.Int64()}
        if field in layout.explain:
            source, status = layout.explain[field]
            schema |= {source: pl.String(), status: pl.String()}
    schema[layout.status] = pl.String()
    rows = [_export_row(info, layout, *row) for row in conn.execute(query, (info.table_id,)).fetchall()]
    return pl.DataFrame(rows, schema=schema, orient="row")


def _export_row(
    info: TableInfo,
    layout: ExportLayout,
    original: object,
    outcome: str,
    reason: str | None,
    status: str | None,
    provenance: object,
    *values: object,
) -> list[object]:
    cells = original if isinstance(original, dict) else json.loads(str(original))
    explained = provenance if isinstance(provenance, dict) else json.loads(str(provenance)) if provenance else {}
    row: list[object] = [cells.get(column) for column in info.columns]
    for field, value in zip(layout.fields, values if layout.fields else (), strict=True):
        confidence, source, status = _explanation(explained.get(field))
        row.extend([value, confidence])
        if field in layout.explain:
            row.extend([source, status])
    row.append(f"rejected: {reason}" if outcome == "rejected" else status or "not_enriched")
    return row


def field_confidence(provenance: object, field: str) -> int | None:
    """The confidence the provenance gives a field's best value: landed, or kept only as a candidate."""
    if provenance is None:
        return None
    entries = provenance if isinstance(provenance, dict) else json.loads(str(provenance))
    return _explanation(entries.get(field))[0]


def _explanation(cell: object) -> tuple[int | None, str | None, str | None]:
    """(confidence, source, status) of one cell's provenance; the status carries its reason when there is one."""
    if not isinstance(cell, dict):
        return None, None, None
    status = cell.get("status")
    reason = cell.get("reason")
    confidence = cell.get("confidence")
    return (
        int(confidence) if isinstance(confidence, int | float) else None,
        str(cell["source"]) if cell.get("source") is not None else None,
        f"{status}: {reason}" if status and reason else (str(status) if status else None),
    )


def escape_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """Stop spreadsheet apps from running cells or headers: prefix a risky first character with a quote.

    A signed number (an E.164 phone, -3.5) is left alone: it cannot hold a formula.
    """
    cells = frame.with_columns(
        pl.when(pl.col(c).str.contains(_RISKY) & ~pl.col(c).str.contains(_SIGNED_NUMBER))
        .then("'" + pl.col(c))
        .otherwise(pl.col(c))
        .alias(c)
        for c in frame.columns
        if frame.schema[c] == pl.String
    )
    return cells.rename({c: _escape_text(c) for c in frame.columns})


def _escape_text(text: str) -> str:
    if text[:1] and text[0] in _FORMULA_START and not re.fullmatch(_SIGNED_NUMBER, text):
        return "'" + text
    return text


def write_export(
    frame: pl.DataFrame, path: Path, fmt: str, *, force: bool = False, inputs: tuple[Path, ...] = ()
) -> None:
    """Write the export next to `path` and move it into place: never over a file (or an input) unless forced."""
    if fmt not in ("csv", "parquet"):
        raise ExportError(f"unknown export format {fmt!r}: use csv or parquet")
    target = path.expanduser()
    folder = target.parent
    if not folder.is_dir():
        raise ExportError(f"the folder {folder} does not exist: create it, or choose another -o")
    if not force and any(target.resolve() == p.expanduser().resolve() for p in inputs):
        raise ExportError(f"{target} is the file this table was uploaded from: choose another -o (or --force)")
    if not force and target.exists():
        raise ExportError(f"{target} already exists: choose another -o, or add --force to replace it")
    partial = folder / f".{target.name}.{uuid.uuid4().hex[:8]}.partial"
    try:
        if fmt == "csv":
            escape_formulas(frame).write_csv(partial)
        else:
            frame.write_parquet(partial)
        _move_into_place(partial, target, force)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)


def _move_into_place(partial: Path, target: Path, force: bool) -> None:
    if force:
        os.replace(partial, target)
        return
    try:
        os.link(partial, target)  # fails if the target appeared meanwhile: no race can overwrite it
    except FileExistsError as exc:
        raise ExportError(f"{target} already exists: choose another -o, or add --force to replace it") from exc
    except OSError:  # a filesystem without hard links
        if target.exists():
            raise ExportError(f"{target} already exists: choose another -o, or add --force to replace it") from None
        os.replace(partial, target)
