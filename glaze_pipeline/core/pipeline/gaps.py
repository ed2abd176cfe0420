"""Gap analysis: which rows each provider should see, and the input hints that count as values.

A provider only ever sees rows that still need one of the fields it can fill,
so every later (dearer) stage runs on fewer rows than the one before.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import polars as pl

from glaze_pipeline.core.model.candidates import CANDIDATE_SCHEMA, EVIDENCE, INPUT_SOURCE, Evidence, empty_candidates
from glaze_pipeline.core.model.fields import CATALOG, SUBJECT_OF_ENTITY, EntityType, field_for_column
from glaze_pipeline.core.model.provider import Provider, Target
from glaze_pipeline.core.model.status import Status


def hint_candidates(rows: pl.DataFrame, hint_columns: Sequence[str], uploaded_at: datetime) -> pl.DataFrame:
    """Input columns named like catalog fields are values from source `input`, confidence 100.

    `hint_columns` are the user's column names; `rows` carries them under their catalog names.
    """
    frames = []
    for column in hint_columns:
        name = field_for_column(column)
        if name is None or name not in rows.columns:
            continue
        spec = CATALOG[name]
        values = rows.select("row_key", pl.col(name).alias("raw")).drop_nulls("raw")
        cleaned = [(k, spec.clean(v)) for k, v in values.iter_rows()]
        kept = [(k, v) for k, v in cleaned if v is not None]
        if not kept:
            continue
        frames.append(
            pl.DataFrame(kept, schema={"row_key": pl.String, "value": pl.String}, orient="row").with_columns(
                field=pl.lit(name),
                confidence=pl.lit(100, pl.UInt8),
                source=pl.lit(INPUT_SOURCE),
                evidence=pl.lit("input column " + name),
                cost_usd=pl.lit(0.0),
                cached=pl.lit(False),
                fetched_at=pl.lit(uploaded_at).cast(pl.Datetime("us", "UTC")),
                status=pl.lit(Status.FILLED.value),
                detail=pl.lit(""),
            )
        )
    if not frames:
        return empty_candidates()
    return pl.concat(frames).select(list(CANDIDATE_SCHEMA))


def best_confidence(candidates: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """Highest confidence so far per (row_key, field), over every upstream stage."""
    filled = [f.filter(pl.col("status") == Status.FILLED.value) for f in candidates if f.height]
    if not filled:
        return pl.DataFrame(schema={"row_key": pl.String, "field": pl.String, "best": pl.UInt8})
    return (
        pl.concat([f.select("row_key", "field", "confidence") for f in filled])
        .group_by("row_key", "field")
        .agg(best=pl.col("confidence").max())
    )


def gap_targets(
    rows: pl.DataFrame,
    wanted: Sequence[str],
    upstream: Sequence[pl.DataFrame],
    provider: Provider,
    min_confidence: int,
) -> list[Target]:
    """Rows this provider should see: an accepted entity type and a wanted field it can fill still weak."""
    fillable = [
        (entity.value, name)
        for entity in provider.entity_types
        for name in wanted
        if name in provider.fields and CATALOG[name].subject == SUBJECT_OF_ENTITY[entity]
    ]
    if not fillable or rows.is_empty():
        return []
    pairs = pl.DataFrame(fillable, schema={"entity_type": pl.String, "field": pl.String}, orient="row")
    best = best_confidence(upstream)
    gaps = (
        rows.select("row_key", "entity_type", "normalized_url")
        .join(pairs, on="entity_type")
        .join(best, on=["row_key", "field"], how="left")
        .filter(pl.col("best").is_null() | (pl.col("best") < min_confidence))
        .group_by("row_key", "entity_type", "normalized_url", maintain_order=True)
        .agg(missing=pl.col("field"))
    )
    known = _known_values(upstream)
    evidence = _evidence(upstream)
    return [
        Target(key, EntityType(entity), url, tuple(missing), known.get(key, {}), evidence.get(key, ()))
        for key, entity, url, missing in gaps.iter_rows()
    ]


def _evidence(upstream: Sequence[pl.DataFrame]) -> dict[str, tuple[Evidence, ...]]:
    rows = [f.filter(pl.col("status") == EVIDENCE) for f in upstream if f.height]
    by_row: dict[str, list[Evidence]] = {}
    for frame in rows:
        for key, url, text, source in frame.select("row_key", "evidence", "value", "source").iter_rows():
            by_row.setdefault(key, []).append(Evidence(url or "", text or "", source or ""))
    return {key: tuple(items) for key, items in by_row.items()}


def _known_values(upstream: Sequence[pl.DataFrame]) -> dict[str, dict[str, str]]:
    """Best value so far per row and field, so a later provider can build on it (a name to search for)."""
    filled = [f.filter(pl.col("status") == Status.FILLED.value) for f in upstream if f.height]
    if not filled:
        return {}
    best = (
        pl.concat([f.select("row_key", "field", "value", "confidence") for f in filled])
        .sort("confidence", descending=True)
        .unique(["row_key", "field"], keep="first")
    )
    known: dict[str, dict[str, str]] = {}
    for key, name, value, _ in best.iter_rows():
        known.setdefault(key, {})[name] = value
    return known
