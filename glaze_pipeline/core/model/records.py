"""The wide record: one row per entity, a text column per catalog field, provenance and totals.

The merge builds it, validation checks it and landing writes it; all three read its shape here.
"""

from __future__ import annotations

import polars as pl

from glaze_pipeline.core.model.fields import FIELD_NAMES

RECORD_KEY_COLUMNS = ("row_key", "input_url", "normalized_url", "entity_type")


def record_schema() -> dict[str, pl.DataType]:
    """Entity keys, one text column per catalog field, provenance (JSON), cost and row status."""
    return (
        {c: pl.String() for c in RECORD_KEY_COLUMNS}
        | {name: pl.String() for name in FIELD_NAMES}
        | {"provenance": pl.String(), "cost_usd": pl.Float64(), "status": pl.String()}
    )


# The audit trail (glaze.field_values): every value a provider found, whether it landed, and why not.
# `reason` is the merge's word on it; `detail` what the provider itself said.
AUDIT_COLUMNS = (
    "row_key",
    "field",
    "source",
    "fetched_at",
    "value",
    "confidence",
    "evidence",
    "cost_usd",
    "cached",
    "chosen",
    "reason",
    "detail",
)
