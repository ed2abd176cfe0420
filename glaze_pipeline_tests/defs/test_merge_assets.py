"""The merge assets and the blocking check on their own: small frames in, no whole-job run."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl

from glaze_pipeline.config import load_waterfall_order, settings
from glaze_pipeline.core import aio
from glaze_pipeline.core.intake.export import export_frame
from glaze_pipeline.core.intake.tables import table_info
from glaze_pipeline.core.intake.uploads import upload_file
from glaze_pipeline.core.model.candidates import CANDIDATE_SCHEMA
from glaze_pipeline.core.model.fields import FIELD_NAMES
from glaze_pipeline.core.model.records import record_schema
from glaze_pipeline.core.pipeline.runtime import open_runtime
from glaze_pipeline.core.pipeline.stage import run_stage
from glaze_pipeline.core.pipeline.waterfall import TableWork, run_provider_stage
from glaze_pipeline.core.providers.registry import crawl_options
from glaze_pipeline.core.providers.website import WebsiteProvider
from glaze_pipeline.core.web.fetch import OverrideResolver
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


def test_an_unresolvable_host_lands_and_exports_not_found_with_its_reason(servers, conn, tmp_path) -> None:
    """The website stage really crawls (one row: in its own process) a name that does not resolve; the paid providers
    have no keys. The cell says not_found and why, never skipped_no_key; the run says which field no provider fills."""
    order = load_waterfall_order()
    wanted = ["company_name", "company_email", "company_industry"]
    path = write_table(tmp_path / "dead_host.csv", ["https://nowhere-at-all.example"])
    table_id = upload_file(conn, path, fields=wanted).table_id
    conn.commit()
    s = settings()
    with open_runtime(s) as runtime:
        with runtime.connection() as c:
            work = TableWork.load(c, table_id)
        # No DNS fallback: the name does not resolve, and nothing leaves loopback.
        website = WebsiteProvider(crawl_options(s), OverrideResolver({}, fallback=None))
        frames = [aio.run(run_stage(website, work.targets(website, [], s.min_confidence), runtime.cache))[0]]
        for name in order[1:]:
            provider = runtime.provider(name)
            frames.append(aio.run(run_provider_stage(runtime, provider, work, frames, run_id="dead-host"))[0])
    stages = tmp_path / "stages"
    write_stage(stages, "source_rows", table_id, work.rows)
    for name, frame in zip(order, frames, strict=True):
        write_stage(stages, candidates_asset_name(name), table_id, frame)

    merge_assets, checks = build_merge_assets(order)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tables", [table_id])
    result = dg.materialize(
        [source_rows, *build_provider_assets(order), *merge_assets, *checks],
        selection=[a.key for a in merge_assets],
        partition_key=table_id,
        instance=instance,
        resources=resources() | {"io_manager": StageIOManager(base_dir=str(stages))},
    )
    assert result.success

    status, provenance = conn.execute(
        "SELECT status, provenance FROM glaze.records WHERE table_id = %s", (table_id,)
    ).fetchone()
    assert status == "not_found"
    for field in ("company_name", "company_email"):
        assert provenance[field]["status"] == "not_found"
        assert provenance[field]["source"] == "website"
        assert provenance[field]["reason"] == "website: host name 'nowhere-at-all.example' does not resolve"
    # The website never fills an industry: that field's reason is the providers that would, without keys.
    assert provenance["company_industry"]["status"] == "skipped_no_key"
    assert "is not set" in provenance["company_industry"]["reason"]
    exported = export_frame(conn, table_info(conn, table_id))
    assert exported["glaze_status"].to_list() == [
        "not_found: website: host name 'nowhere-at-all.example' does not resolve"
    ]
    landed = result.asset_materializations_for_node("landed_records")[0].metadata
    assert "company_industry: no configured provider fills it" in landed["fields_no_provider_fills"].value
    assert "| `company_name` | 0 | 1 | 0 | not_found 1 |" in landed["picture"].value
    assert landed["coverage_pct"].value == 0.0
