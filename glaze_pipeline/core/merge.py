"""Merge candidates into one wide record per entity: best value per field, agreement boosts, conflicts kept.

Rules: the highest (boosted) confidence wins per (row, field); ties go to the
provider earlier in the waterfall (input hints first); every extra independent
source that found the same value adds `AGREEMENT_BOOST`, capped at 100; losing
values stay in the provenance as conflicts so nothing a provider said is lost.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import polars as pl

from glaze_pipeline.core.candidates import CANDIDATE_SCHEMA, EVIDENCE
from glaze_pipeline.core.fields import CATALOG, FIELD_NAMES, SUBJECT_OF_ENTITY, EntityType
from glaze_pipeline.core.status import Status, row_status, worst_unfilled
from glaze_pipeline.core.waterfall import INPUT_SOURCE

AGREEMENT_BOOST = 10
RECORD_KEY_COLUMNS = ("row_key", "input_url", "normalized_url", "entity_type")


def record_schema() -> dict[str, pl.DataType]:
    """The wide record frame: entity keys, one text column per catalog field, provenance and totals."""
    return (
        {c: pl.String() for c in RECORD_KEY_COLUMNS}
        | {name: pl.String() for name in FIELD_NAMES}
        | {"provenance": pl.String(), "cost_usd": pl.Float64(), "status": pl.String()}
    )


def _subject_pairs() -> pl.DataFrame:
    return pl.DataFrame(
        [(e.value, n) for e in EntityType for n in FIELD_NAMES if CATALOG[n].subject == SUBJECT_OF_ENTITY[e]],
        schema={"entity_type": pl.String, "field": pl.String},
        orient="row",
    )


def merge(
    rows: pl.DataFrame,
    wanted: Sequence[str],
    frames: Sequence[pl.DataFrame],
    priority: Sequence[str],
) -> pl.DataFrame:
    rank = {source: i for i, source in enumerate([INPUT_SOURCE, *priority])}
    all_candidates = (
        pl.concat([f.select(list(CANDIDATE_SCHEMA)) for f in frames], how="vertical")
        if frames
        else pl.DataFrame(schema=CANDIDATE_SCHEMA)
    )
    entities = rows.select(*RECORD_KEY_COLUMNS)
    allowed = _subject_pairs().filter(pl.col("field").is_in(list(wanted)))
    filled = (
        all_candidates.filter(pl.col("status") == Status.FILLED.value)
        .join(entities.select("row_key", "entity_type"), on="row_key")
        .join(allowed, on=["entity_type", "field"])
        .with_columns(
            value_key=pl.col("value").str.to_lowercase(),
            rank=pl.col("source").replace_strict(rank, default=len(rank), return_dtype=pl.Int32),
        )
        .sort(["confidence", "rank"], descending=[True, False])
    )
    groups = (
        filled.group_by("row_key", "field", "value_key", maintain_order=True)
        .agg(
            pl.col("value").first(),
            pl.col("confidence").first().cast(pl.Int32),
            pl.col("source").first(),
            pl.col("rank").first(),
            pl.col("evidence").first(),
            pl.col("fetched_at").first(),
            pl.col("cached").first(),
            agreeing=pl.col("source").unique(maintain_order=True),
        )
        .with_columns(
            boosted=pl.min_horizontal(
                pl.lit(100),
                pl.col("confidence") + AGREEMENT_BOOST * (pl.col("agreeing").list.len() - 1),
            )
        )
        .sort(["boosted", "rank"], descending=[True, False])
        .with_columns(place=pl.int_range(pl.len()).over("row_key", "field"))
    )
    failures = all_candidates.filter(~pl.col("status").is_in([Status.FILLED.value, EVIDENCE])).select(
        "row_key", "source", "status"
    )
    costs = all_candidates.group_by("row_key").agg(cost_usd=pl.col("cost_usd").sum())

    by_row: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for row in groups.iter_rows(named=True):
        by_row.setdefault(row["row_key"], {}).setdefault(row["field"], []).append(row)
    # Why each provider came back empty-handed, per row: shown beside the field's one summary status.
    failed: dict[str, dict[str, str]] = {}
    for key, source, status in failures.iter_rows():
        failed.setdefault(key, {})[source] = status
    cost_of = dict(costs.iter_rows())

    wanted_set = set(wanted)
    records: list[dict[str, object]] = []
    for key, input_url, normalized_url, entity_type in entities.iter_rows():
        subject = SUBJECT_OF_ENTITY[EntityType(entity_type)]
        record: dict[str, object] = {
            "row_key": key,
            "input_url": input_url,
            "normalized_url": normalized_url,
            "entity_type": entity_type,
        }
        provenance: dict[str, dict[str, object]] = {}
        field_statuses: list[str] = []
        for name in FIELD_NAMES:
            record[name] = None
            if name not in wanted_set or CATALOG[name].subject != subject:
                continue
            options = by_row.get(key, {}).get(name)
            if options:
                best, *others = options
                record[name] = best["value"]
                provenance[name] = {
                    "status": Status.FILLED.value,
                    "confidence": best["boosted"],
                    "source": best["source"],
                    "evidence": best["evidence"],
                    "fetched_at": best["fetched_at"].isoformat() if best["fetched_at"] else None,
                    "cached": best["cached"],
                    "agreeing_sources": best["agreeing"],
                    "conflicts": [
                        {"value": o["value"], "confidence": o["boosted"], "source": o["source"]} for o in others
                    ],
                }
                field_statuses.append(Status.FILLED.value)
            else:
                reasons = failed.get(key, {})
                status = worst_unfilled(set(reasons.values())).value
                provenance[name] = {"status": status, "attempts": reasons} if reasons else {"status": status}
                field_statuses.append(status)
        record["provenance"] = json.dumps(provenance, sort_keys=True, default=str)
        record["cost_usd"] = float(cost_of.get(key, 0.0) or 0.0)
        record["status"] = row_status(field_statuses).value
        records.append(record)
    return pl.DataFrame(records, schema=record_schema())
