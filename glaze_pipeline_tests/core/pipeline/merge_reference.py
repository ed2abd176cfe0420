"""The merge as it was before its options were read column-wise (frozen, for the equivalence test only).

`test_merge_equivalence.py` checks that the current `merge` gives the same records, provenance text
included, on random candidates full of ties, agreements, nulls and mixed provider orders.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import polars as pl

from glaze_pipeline.core.model.candidates import CANDIDATE_SCHEMA, INPUT_SOURCE
from glaze_pipeline.core.model.fields import CATALOG, FIELD_NAMES, SUBJECT_OF_ENTITY, EntityType
from glaze_pipeline.core.model.records import RECORD_KEY_COLUMNS, record_schema
from glaze_pipeline.core.model.status import Outcome, Status, row_status_of
from glaze_pipeline.core.pipeline.merge import (
    AGREEMENT_BOOST,
    NOBODY_ANSWERED,
    NOBODY_FILLS,
    _outcomes_by_row,
    _subject_pairs,
    _why_chosen,
    _without_implausible,
    unfilled,
)


def reference_merge(
    rows: pl.DataFrame,
    wanted: Sequence[str],
    frames: Sequence[pl.DataFrame],
    priority: Sequence[str],
    min_confidence: int = 0,
    *,
    fills: Mapping[str, Collection[str]] | None = None,
) -> pl.DataFrame:
    """One wide record per entity of `rows`, from the candidate frames of every stage.

    Values below `min_confidence` stay candidates (status low_confidence); 0 lands every value.
    `fills` (provider → the fields it can fill) keeps a provider's failure out of the fields it could
    never have filled; without it, a provider's failure speaks for every field of the row.
    """
    all_candidates = (
        pl.concat([f.select(list(CANDIDATE_SCHEMA)) for f in frames], how="vertical")
        if frames
        else pl.DataFrame(schema=CANDIDATE_SCHEMA)
    )
    entities = rows.select(*RECORD_KEY_COLUMNS)
    options = _ranked_options(all_candidates, entities, wanted, [INPUT_SOURCE, *priority])
    failed = _outcomes_by_row(all_candidates)
    cost_of = dict(all_candidates.group_by("row_key").agg(cost_usd=pl.col("cost_usd").sum()).iter_rows())
    wanted_set = set(wanted)
    records = [
        _record(entity, options.get(key, {}), failed.get(key, []), wanted_set, cost_of.get(key), min_confidence, fills)
        for entity in entities.iter_rows()
        for key in (entity[0],)
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
    filled = _without_implausible(filled, entities)
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


def _record(
    entity: tuple[str, str, str, str],
    options: dict[str, list[dict[str, Any]]],
    failed: list[Outcome],
    wanted: set[str],
    cost: float | None,
    min_confidence: int,
    fills: Mapping[str, Collection[str]] | None,
) -> dict[str, object]:
    """One entity's record: the best option per wanted field, or the status and reason that explain the gap."""
    entity_type = entity[3]
    subject = SUBJECT_OF_ENTITY[EntityType(entity_type)]
    record: dict[str, object] = dict(zip(RECORD_KEY_COLUMNS, entity, strict=True))
    provenance: dict[str, dict[str, object]] = {}
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
                provenance[name] |= {
                    "status": Status.LOW_CONFIDENCE.value,
                    "value": best["value"],
                    "reason": f"{best['source']} found {best['value']!r} at confidence {best['boosted']},"
                    f" below GLAZE_MIN_CONFIDENCE ({min_confidence})",
                }
        else:
            tried = [o for o in failed if fills is None or name in fills.get(o.source, ())]
            provenance[name] = unfilled(tried, NOBODY_FILLS if fills is not None else NOBODY_ANSWERED)
    record["provenance"] = json.dumps(provenance, sort_keys=True, default=str)
    record["cost_usd"] = float(cost or 0.0)
    record["status"] = row_status_of(provenance.values()).value
    return record


def _chosen(best: dict[str, Any], others: list[dict[str, Any]]) -> dict[str, object]:
    return {
        "status": Status.FILLED.value,
        # Not `reason`: that names why a cell is empty (the export shows it beside the status).
        "chosen_because": _why_chosen(best, others),
        "confidence": best["boosted"],
        "source": best["source"],
        "evidence": best["evidence"],
        "fetched_at": best["fetched_at"].isoformat() if best["fetched_at"] else None,
        "cached": best["cached"],
        "agreeing_sources": best["agreeing"],
        "conflicts": [{"value": o["value"], "confidence": o["boosted"], "source": o["source"]} for o in others],
    }
