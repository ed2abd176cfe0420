"""The candidate frame: the one contract between waterfall stages (long format).

A provider answers with one frame of *attempts*: one row per value it found
(status `filled`), or, when it found nothing for an entity, a single row with
`field` and `value` null and the reason in `status`. Keeping both in one frame
means a stage's output is one Parquet file and costs always sum correctly.

Rows with status `evidence` carry text a provider gathered (page excerpts,
search snippets) in `value` and its source URL in `evidence`, for later stages
(the LLM) to read. They fill no field and cost nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from glaze_pipeline.core.model.fields import CATALOG
from glaze_pipeline.core.model.status import Status

CANDIDATE_SCHEMA: dict[str, pl.DataType] = {
    "row_key": pl.String(),
    "field": pl.String(),
    "value": pl.String(),
    "confidence": pl.UInt8(),
    "source": pl.String(),
    "evidence": pl.String(),
    "cost_usd": pl.Float64(),
    "cached": pl.Boolean(),
    "fetched_at": pl.Datetime("us", "UTC"),
    "status": pl.String(),
    "detail": pl.String(),
}


@dataclass(frozen=True)
class Found:
    """One value an extractor or API adapter found, before it is tied to a row."""

    field: str
    value: str
    confidence: int
    evidence: str
    # Why this value lost to another the same provider chose, or what it was chosen over; empty when unopposed.
    reason: str = ""


EVIDENCE = "evidence"  # candidate-frame status of an evidence row; not a field status
INPUT_SOURCE = "input"  # the source of values the user gave in columns named like catalog fields


@dataclass(frozen=True)
class Evidence:
    """Text a provider saw, labelled with where it came from; untrusted input for the LLM stage."""

    source_url: str
    text: str
    # The provider that gathered it ("website": the visible text of the company's own pages). Set when
    # evidence is handed to a later stage, so the LLM stage knows which quotes the company itself wrote.
    origin: str = ""


@dataclass(frozen=True)
class Attempt:
    """What one provider call produced for one entity: values, or a reason why none."""

    row_key: str
    found: tuple[Found, ...]
    status: Status
    cost_usd: float = 0.0
    cached: bool = False
    fetched_at: datetime | None = None
    detail: str = ""
    evidence: tuple[Evidence, ...] = ()


def empty_candidates() -> pl.DataFrame:
    return pl.DataFrame(schema=CANDIDATE_SCHEMA)


def clean_found(found: Iterable[Found]) -> list[Found]:
    """Normalise through the catalog; drop values the catalog rejects. Never trust a provider's format."""
    kept: list[Found] = []
    for item in found:
        spec = CATALOG.get(item.field)
        value = spec.clean(item.value) if spec else None
        if value is not None:
            confidence = max(0, min(100, int(item.confidence)))
            kept.append(Found(item.field, value, confidence, item.evidence[:500], item.reason[:300]))
    return kept


def attempts_to_frame(attempts: Iterable[Attempt], source: str, wanted: Collection[str] | None = None) -> pl.DataFrame:
    """Flatten attempts to the candidate frame, splitting each call's cost across the values it filled.

    With `wanted`, only those fields become candidates (the cache keeps the whole answer for later
    runs that want more), and a call's cost is split across the wanted values it filled.
    """
    now = datetime.now(UTC)
    rows = [row for attempt in attempts for row in _attempt_rows(attempt, source, wanted, now)]
    if not rows:
        return empty_candidates()
    return pl.DataFrame(rows, schema=CANDIDATE_SCHEMA)


def _attempt_rows(
    attempt: Attempt, source: str, wanted: Collection[str] | None, now: datetime
) -> list[dict[str, object]]:
    """One candidate row per value found (or one row with the reason), then one per piece of evidence."""
    base = {
        "row_key": attempt.row_key,
        "source": source,
        "cached": attempt.cached,
        "fetched_at": attempt.fetched_at or now,
        "detail": attempt.detail,
    }
    found = clean_found(f for f in attempt.found if wanted is None or f.field in wanted)
    rows: list[dict[str, object]]
    if found:
        share = attempt.cost_usd / len(found)
        rows = [
            base
            | {
                "field": f.field,
                "value": f.value,
                "confidence": f.confidence,
                "evidence": f.evidence,
                "cost_usd": share,
                "status": Status.FILLED.value,
                # A choice among one provider's candidates travels with each: the audit trail says why one lost.
                "detail": "; ".join(part for part in (f.reason, attempt.detail) if part),
            }
            for f in found
        ]
    else:
        status = Status.NOT_FOUND if attempt.status == Status.FILLED else attempt.status
        empty = {"field": None, "value": None, "confidence": None, "evidence": None}
        rows = [base | empty | {"cost_usd": attempt.cost_usd, "status": status.value}]
    evidence = {"field": None, "confidence": None, "cost_usd": 0.0, "status": EVIDENCE}
    rows.extend(base | evidence | {"value": item.text, "evidence": item.source_url} for item in attempt.evidence)
    return rows
