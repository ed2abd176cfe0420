"""Merge candidates into one wide record per entity: best value per field, agreement boosts, conflicts kept.

Rules: the highest (boosted) confidence wins per (row, field); ties go to the
provider earlier in the waterfall (input hints first); every extra independent
source that found the same value adds `AGREEMENT_BOOST`, capped at 100; losing
values stay in the provenance as conflicts so nothing a provider said is lost.

Landing policy: a best value below `min_confidence` (GLAZE_MIN_CONFIDENCE) that no
provider beat is kept only as a candidate. The record's cell stays empty, the field's
status is `low_confidence`, and the provenance holds the value, its confidence and
source, so a user can see it, and lower the threshold, without it passing for a fact.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import polars as pl

from glaze_pipeline.core.model.candidates import CANDIDATE_SCHEMA, EVIDENCE, INPUT_SOURCE
from glaze_pipeline.core.model.fields import CATALOG, FIELD_NAMES, SUBJECT_OF_ENTITY, EntityType
from glaze_pipeline.core.model.records import RECORD_KEY_COLUMNS, record_schema
from glaze_pipeline.core.model.status import Status, row_status, worst_unfilled

AGREEMENT_BOOST = 10


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
    min_confidence: int = 0,
) -> pl.DataFrame:
    """One wide record per entity of `rows`, from the candidate frames of every stage.

    Values below `min_confidence` stay candidates (status low_confidence); 0 lands every value.
    """
    all_candidates = (
        pl.concat([f.select(list(CANDIDATE_SCHEMA)) for f in frames], how="vertical")
        if frames
        else pl.DataFrame(schema=CANDIDATE_SCHEMA)
    )
    entities = rows.select(*RECORD_KEY_COLUMNS)
    options = _ranked_options(all_candidates, entities, wanted, [INPUT_SOURCE, *priority])
    failed = _failures_by_row(all_candidates)
    cost_of = dict(all_candidates.group_by("row_key").agg(cost_usd=pl.col("cost_usd").sum()).iter_rows())
    wanted_set = set(wanted)
    records = [
        _record(
            entity,
            options.get(entity[0], {}),
            failed.get(entity[0], {}),
            wanted_set,
            cost_of.get(entity[0]),
            min_confidence,
        )
        for entity in entities.iter_rows()
    ]
    return pl.DataFrame(records, schema=record_schema())


def _ranked_options(
    candidates: pl.DataFrame, entities: pl.DataFrame, wanted: Sequence[str], order: Sequence[str]
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Per row and field, each distinct value with its agreeing sources and boosted confidence, best first."""
    rank = {source: i for i, source in enumerate(order)}
    allowed = _subject_pairs().filter(pl.col("field").is_in(list(wanted)))
    filled = (
        candidates.filter(pl.col("status") == Status.FILLED.value)
        .join(entities.select("row_key", "entity_type"), on="row_key")
        .join(allowed, on=["entity_type", "field"])
        .with_columns(
            value_key=pl.col("value").str.to_lowercase(),
            rank=pl.col("source").replace_strict(rank, default=len(rank), return_dtype=pl.Int32),
            # A provider endorses only the value it chose; its losing candidates are no vote for anything.
            chosen_by_source=pl.col("confidence") == pl.col("confidence").max().over("row_key", "field", "source"),
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
            agreeing=pl.col("source").filter(pl.col("chosen_by_source")).unique(maintain_order=True),
        )
        .with_columns(
            boosted=pl.min_horizontal(
                pl.lit(100),
                # A length is unsigned: cast before subtracting, or a value nobody chose underflows to 100.
                pl.col("confidence")
                + AGREEMENT_BOOST * (pl.col("agreeing").list.len().cast(pl.Int32) - 1).clip(lower_bound=0),
            )
        )
        .sort(["boosted", "rank"], descending=[True, False])
    )
    by_row: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for row in groups.iter_rows(named=True):
        by_row.setdefault(row["row_key"], {}).setdefault(row["field"], []).append(row)
    return by_row


def _failures_by_row(candidates: pl.DataFrame) -> dict[str, dict[str, str]]:
    """Why each provider came back empty-handed, per row: shown beside the field's one summary status."""
    failures = candidates.filter(~pl.col("status").is_in([Status.FILLED.value, EVIDENCE]))
    failed: dict[str, dict[str, str]] = {}
    for key, source, status in failures.select("row_key", "source", "status").iter_rows():
        failed.setdefault(key, {})[source] = status
    return failed


def _record(
    entity: tuple[str, str, str, str],
    options: dict[str, list[dict[str, Any]]],
    failed: dict[str, str],
    wanted: set[str],
    cost: float | None,
    min_confidence: int,
) -> dict[str, object]:
    """One entity's record: the best option per wanted field, or the status that explains the gap."""
    entity_type = entity[3]
    subject = SUBJECT_OF_ENTITY[EntityType(entity_type)]
    record: dict[str, object] = dict(zip(RECORD_KEY_COLUMNS, entity, strict=True))
    provenance: dict[str, dict[str, object]] = {}
    field_statuses: list[str] = []
    for name in FIELD_NAMES:
        record[name] = None
        if name not in wanted or CATALOG[name].subject != subject:
            continue
        if name in options:
            best, *others = options[name]
            provenance[name] = _chosen(best, others)
            if best["boosted"] >= min_confidence:
                record[name] = best["value"]
            else:  # a candidate, not a fact: shown in the provenance, the cell left empty
                provenance[name] |= {"status": Status.LOW_CONFIDENCE.value, "value": best["value"]}
        else:
            status = worst_unfilled(set(failed.values())).value
            provenance[name] = {"status": status, "attempts": failed} if failed else {"status": status}
        field_statuses.append(str(provenance[name]["status"]))
    record["provenance"] = json.dumps(provenance, sort_keys=True, default=str)
    record["cost_usd"] = float(cost or 0.0)
    record["status"] = row_status(field_statuses).value
    return record


def _chosen(best: dict[str, Any], others: list[dict[str, Any]]) -> dict[str, object]:
    return {
        "status": Status.FILLED.value,
        "confidence": best["boosted"],
        "source": best["source"],
        "evidence": best["evidence"],
        "fetched_at": best["fetched_at"].isoformat() if best["fetched_at"] else None,
        "cached": best["cached"],
        "agreeing_sources": best["agreeing"],
        "conflicts": [{"value": o["value"], "confidence": o["boosted"], "source": o["source"]} for o in others],
    }
