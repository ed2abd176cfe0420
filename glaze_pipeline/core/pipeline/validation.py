"""pandera checks of the merged table, generated from the field catalog.

Row-level failures never drop a row: the failing cell is cleared, marked
`rejected` in provenance, and the reason goes to `glaze.rejects`. The table-level
check (schema intact, reject rate under a threshold) is what stops the chain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaErrors

from glaze_pipeline.core.model.fields import CATALOG, FIELD_NAMES, EntityType
from glaze_pipeline.core.model.records import RECORD_KEY_COLUMNS, record_schema
from glaze_pipeline.core.model.status import Status, row_status_of

ROW_STATUSES = [s.value for s in Status]


def record_model() -> pa.DataFrameSchema:
    columns: dict[str, pa.Column] = {
        "row_key": pa.Column(pl.String, unique=True, nullable=False),
        "input_url": pa.Column(pl.String, nullable=False),
        "normalized_url": pa.Column(pl.String, nullable=False, checks=pa.Check.str_startswith("http")),
        "entity_type": pa.Column(pl.String, checks=pa.Check.isin([e.value for e in EntityType])),
        "provenance": pa.Column(pl.String, nullable=False),
        "cost_usd": pa.Column(pl.Float64, checks=pa.Check.ge(0)),
        "status": pa.Column(pl.String, checks=pa.Check.isin(ROW_STATUSES)),
    }
    for name in FIELD_NAMES:
        spec = CATALOG[name]
        checks = [pa.Check.str_length(1, spec.max_length)]
        if spec.pattern:
            checks.append(pa.Check.str_matches(spec.pattern))
        columns[name] = pa.Column(pl.String, nullable=True, checks=checks)
    return pa.DataFrameSchema(columns, strict=True, ordered=False, name="enriched_records")


@dataclass(frozen=True)
class ValidationResult:
    records: pl.DataFrame  # every row kept; failing cells cleared and marked rejected
    rejects: pl.DataFrame  # row_key, reasons (JSON list)
    failure_cases: pl.DataFrame  # pandera's own report, for metadata


def _failure_cases(records: pl.DataFrame) -> pl.DataFrame:
    try:
        record_model().validate(records, lazy=True)
    except SchemaErrors as exc:
        return exc.failure_cases
    return pl.DataFrame(schema={"failure_case": pl.String, "column": pl.String, "check": pl.String, "index": pl.Int32})


def passes_every_check(records: pl.DataFrame) -> bool:
    """The rules of `record_model`, in one vectorised pass: a table that passes needs no per-check report.

    pandera runs each check as its own query (a few milliseconds each, most of a single record's time);
    this pass costs one query, and pandera still explains whatever fails it.
    """
    if dict(records.schema) != record_schema():
        return False  # a missing, extra or mistyped column: pandera says which
    rules = [
        pl.col("row_key").is_not_null().all() & pl.col("row_key").is_unique().all(),
        pl.col("input_url").is_not_null().all() & pl.col("provenance").is_not_null().all(),
        (pl.col("normalized_url").is_not_null() & pl.col("normalized_url").str.starts_with("http")).all(),
        (pl.col("entity_type").is_not_null() & pl.col("entity_type").is_in([e.value for e in EntityType])).all(),
        (pl.col("cost_usd").is_not_null() & (pl.col("cost_usd") >= 0)).all(),
        (pl.col("status").is_not_null() & pl.col("status").is_in(ROW_STATUSES)).all(),
    ]
    for name in FIELD_NAMES:
        spec = CATALOG[name]
        cell = pl.col(name).str.len_chars().is_between(1, spec.max_length)
        if spec.pattern:
            cell = cell & pl.col(name).str.contains(
                spec.pattern if spec.pattern.startswith("^") else "^" + spec.pattern
            )
        rules.append((pl.col(name).is_null() | cell).all())
    return records.is_empty() or all(records.select(rules).row(0))


def validate_records(records: pl.DataFrame) -> ValidationResult:
    """Validate row by row; clear bad field cells and explain them instead of dropping rows."""
    if passes_every_check(records):
        empty = pl.DataFrame(
            schema={"failure_case": pl.String, "column": pl.String, "check": pl.String, "index": pl.Int32}
        )
        return ValidationResult(records, pl.DataFrame(schema={"row_key": pl.String, "reasons": pl.String}), empty)
    cases = _failure_cases(records)
    if cases.is_empty():
        return ValidationResult(records, pl.DataFrame(schema={"row_key": pl.String, "reasons": pl.String}), cases)
    field_cases = cases.filter(pl.col("column").is_in(list(FIELD_NAMES)) & pl.col("index").is_not_null())
    structural = cases.filter(~pl.col("column").is_in(list(FIELD_NAMES)))
    if not structural.is_empty():
        # Keys, status or provenance broken: that is a bug upstream, not a bad row; the table check stops it.
        return ValidationResult(records, pl.DataFrame(schema={"row_key": pl.String, "reasons": pl.String}), cases)

    bad: dict[int, list[tuple[str, str, str]]] = {}
    for index, column, check, failure in field_cases.select("index", "column", "check", "failure_case").iter_rows():
        bad.setdefault(int(index), []).append((column, check, str(failure)))

    rows = records.to_dicts()
    rejects: list[dict[str, str]] = []
    for index, problems in bad.items():
        row = rows[index]
        provenance = json.loads(row["provenance"])
        reasons = []
        for column, check, failure in problems:
            row[column] = None
            provenance[column] = provenance.get(column, {}) | {
                "status": Status.REJECTED.value,
                "rejected_value": failure,
            }
            reasons.append({"field": column, "check": check, "value": failure[:200]})
        row["provenance"] = json.dumps(provenance, sort_keys=True)
        row["status"] = row_status_of(provenance.values()).value
        rejects.append({"row_key": row["row_key"], "reasons": json.dumps(reasons)})
    cleaned = pl.DataFrame(rows, schema=records.schema)
    return ValidationResult(cleaned, pl.DataFrame(rejects, schema={"row_key": pl.String, "reasons": pl.String}), cases)


@dataclass(frozen=True)
class TableVerdict:
    passed: bool
    rows: int
    rejected_rows: int
    reject_rate: float
    problems: list[str]


def check_table(records: pl.DataFrame, rejected_rows: int, max_reject_rate: float) -> TableVerdict:
    """Is the table as a whole fit to land? Schema must hold and the reject rate stay under the limit."""
    problems = []
    missing = [c for c in (*RECORD_KEY_COLUMNS, *FIELD_NAMES) if c not in records.columns]
    if missing:
        problems.append(f"missing columns: {', '.join(missing)}")
    else:
        cases = _failure_cases(records)
        if not cases.is_empty():
            summary = cases.group_by("column", "check").len().sort("len", descending=True).head(10)
            problems.extend(f"{c}: {k} failed {n}x" for c, k, n in summary.iter_rows())
    rate = rejected_rows / records.height if records.height else 0.0
    if rate > max_reject_rate:
        problems.append(f"reject rate {rate:.1%} is over the limit {max_reject_rate:.1%}")
    return TableVerdict(not problems, records.height, rejected_rows, rate, problems)
