"""The merge assets and the blocking check on their own: small frames in, no whole-job run."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl

from glaze_pipeline.config import load_waterfall_order
from glaze_pipeline.core.intake.uploads import upload_file
from glaze_pipeline.core.model.candidates import CANDIDATE_SCHEMA
from glaze_pipeline.core.model.fields import FIELD_NAMES
from glaze_pipeline.core.model.records import record_schema
from glaze_pipeline.defs.ingest.assets import source_rows
from glaze_pipeline.defs.merge.assets import REJECT_COLUMN, build_merge_assets, fit_to_land
from glaze_pipeline.defs.providers.assets import build_provider_assets, candidates_asset_name
from glaze_pipeline.defs.resources import StageIOManager, resources
from glaze_pipeline_tests.helpers import write_table

FETCHED = datetime(2026, 1, 2, tzinfo=UTC)


def record(key: str, email: str | None, reject: str | None = None) -> dict[str, object]:
    values = {name: None for name in FIELD_NAMES} | {"company_email": email}
    provenance = {"company_email": {"status": "filled" if email else "not_found"}}
    return {
        "row_key": key,
        "input_url": f"{key}.example",
        "normalized_url": f"https://{key}.example",
        "entity_type": "company_website",
        **values,
        "provenance": json.dumps(provenance),
        "cost_usd": 0.0,
        "status": "filled" if email else "not_found",
        REJECT_COLUMN: reject,
    }


def three_rows(rejected: int) -> pl.DataFrame:
    rows = [record(k, f"hi@{k}.example") for k in ("a", "b", "c")]
    for row in rows[:rejected]:
        row[REJECT_COLUMN] = '[{"field": "company_email", "check": "pattern"}]'
    return pl.DataFrame(rows, schema=record_schema() | {REJECT_COLUMN: pl.String()})


def test_the_blocking_check_passes_a_clean_three_row_table() -> None:
    result = fit_to_land(three_rows(rejected=0), max_reject_rate=0.5)
    assert result.passed
    assert result.metadata["rejected_rows"].value == 0


def test_the_blocking_check_stops_a_table_whose_reject_rate_is_over_the_limit() -> None:
    result = fit_to_land(three_rows(rejected=2), max_reject_rate=0.5)
    assert not result.passed
    assert "reject rate 66.7% is over the limit 50.0%" in str(result.metadata["problems"].value)


def test_the_blocking_check_stops_a_table_with_a_broken_schema() -> None:
    broken = three_rows(rejected=0).drop("company_email")
    result = fit_to_land(broken, max_reject_rate=0.5)
    assert not result.passed
    assert "missing columns: company_email" in str(result.metadata["problems"].value)


def candidate(key: str, field: str, value: str, confidence: int) -> dict[str, object]:
    return {
        "row_key": key,
        "field": field,
        "value": value,
        "confidence": confidence,
        "source": "website",
        "evidence": "fixture",
        "cost_usd": 0.0,
        "cached": False,
        "fetched_at": FETCHED,
        "status": "filled",
        "detail": "",
    }


def write_stage(base: Path, asset: str, partition: str, frame: pl.DataFrame) -> None:
    path = base / asset / f"{partition}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path)


def test_enriched_records_materialises_alone_from_parquet_stage_files(servers, conn, tmp_path) -> None:
    """Upstream stages are fixture files; only the merge asset (and its check) runs."""
    order = load_waterfall_order()
    upload = upload_file(conn, write_table(tmp_path / "alone.csv", ["https://a.example", "https://b.example"]))
    conn.commit()
    table_id = upload.table_id
    rows = pl.DataFrame(
        {
            "row_key": ["https://a.example", "https://b.example"],
            "input_url": ["https://a.example", "https://b.example"],
            "normalized_url": ["https://a.example", "https://b.example"],
            "entity_type": ["company_website", "company_website"],
        }
    )
    stages = tmp_path / "stages"
    write_stage(stages, "source_rows", table_id, rows)
    found = pl.DataFrame(
        [candidate("https://a.example", "company_email", "hello@a.example", 90)], schema=CANDIDATE_SCHEMA
    )
    for provider in order:
        frame = found if provider == order[0] else pl.DataFrame(schema=CANDIDATE_SCHEMA)
        write_stage(stages, candidates_asset_name(provider), table_id, frame)

    merge_assets, checks = build_merge_assets(order)
    enriched = merge_assets[0]
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tables", [table_id])
    result = dg.materialize(
        [source_rows, *build_provider_assets(order), *merge_assets, *checks],
        selection=[enriched.key],
        partition_key=table_id,
        instance=instance,
        resources=resources() | {"io_manager": StageIOManager(base_dir=str(stages))},
    )
    assert result.success
    out = pl.read_parquet(stages / "enriched_records" / f"{table_id}.parquet")
    emails = dict(out.select("row_key", "company_email").iter_rows())
    assert emails == {"https://a.example": "hello@a.example", "https://b.example": None}
    (check,) = result.get_asset_check_evaluations()
    assert check.passed
