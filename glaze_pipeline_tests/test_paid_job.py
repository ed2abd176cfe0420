"""The whole table job with the paid providers on their loopback simulators: costs, budgets, retries, dry runs.

A run killed mid-stage is in `test_faults.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from click.testing import CliRunner

from glaze_pipeline.cli import main
from glaze_pipeline.config import settings
from glaze_pipeline.core.intake.tables import TableStatus, table_info
from glaze_pipeline.core.intake.uploads import upload_file
from glaze_pipeline.core.pipeline import waterfall
from glaze_pipeline.definitions import build_definitions, defs
from glaze_pipeline.defs.providers import assets as provider_assets
from glaze_pipeline.runner import estimate_table
from glaze_pipeline.sandbox.anthropic_sim import AnthropicSimulator
from glaze_pipeline.sandbox.apis import ApiSimulator, company_facts
from glaze_pipeline.sandbox.sites import DEMO_SITES, SiteServer, demo_hosts, directory_pages
from glaze_pipeline_tests.helpers import write_table

pytestmark = pytest.mark.slow  # runs the whole table job

LINKEDIN_ONLY = ["company_employee_range", "company_specialities"]  # neither the website nor search fills these
PRICE = 0.01


@pytest.fixture
def sims(
    monkeypatch: pytest.MonkeyPatch, fresh_cache: str, fresh_ledger: None
) -> Iterator[tuple[ApiSimulator, ApiSimulator]]:
    with ApiSimulator("linkedin") as linkedin, ApiSimulator("search") as search:
        for name, value in (linkedin.env() | search.env()).items():
            monkeypatch.setenv(name, value)
        for api in ("LINKEDIN", "SEARCH"):
            monkeypatch.setenv(f"GLAZE_{api}_RATE_PER_S", "500")
            monkeypatch.setenv(f"GLAZE_{api}_CONCURRENCY", "4")
        yield linkedin, search


@pytest.fixture
def sites(monkeypatch: pytest.MonkeyPatch) -> Iterator[SiteServer]:
    with SiteServer(directory_pages(DEMO_SITES)) as site:
        monkeypatch.setenv("GLAZE_RESOLVE", site.resolve_spec(demo_hosts()))
        yield site


def linkedin_table(tmp_path: Path, name: str, n: int) -> Path:
    return write_table(tmp_path / f"{name}.csv", [f"https://www.linkedin.com/company/{name}-co-{i}" for i in range(n)])


def upload(conn, path: Path, fields: list[str], status: str = TableStatus.RUNNING) -> str:
    table_id = upload_file(conn, path, fields=fields, status=status).table_id
    conn.commit()
    return table_id


def run(
    table_id: str,
    job: dg.JobDefinition | None = None,
    instance: dg.DagsterInstance | None = None,
    **budget: float,
) -> dg.ExecuteInProcessResult:
    instance = instance or dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tables", [table_id])
    job = job or defs.resolve_job_def("enrich_table")
    config = {"resources": {"budget": {"config": budget}}} if budget else None
    return job.execute_in_process(instance=instance, partition_key=table_id, run_config=config)


def meta(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, object]:
    return {k: v.value for k, v in result.asset_materializations_for_node(asset)[0].metadata.items()}


def records(conn, table_id: str) -> pl.DataFrame:
    cur = conn.execute("SELECT * FROM glaze.records WHERE table_id = %s ORDER BY normalized_url", (table_id,))
    return pl.DataFrame(
        cur.fetchall(), schema=[d.name for d in cur.description], orient="row", infer_schema_length=None
    )


def test_the_waterfall_pays_for_gaps_only_records_costs_and_reruns_free(servers, conn, sims, sites, tmp_path):
    linkedin, search = sims
    hosts = demo_hosts()
    fields = ["company_name", "company_linkedin", "company_founded_year", *LINKEDIN_ONLY]
    table_id = upload(conn, write_table(tmp_path / "paid.csv", [f"https://{h}" for h in hosts]), fields)

    first = run(table_id)
    assert first.success
    search_meta, linkedin_meta = meta(first, "search_candidates"), meta(first, "linkedin_candidates")
    assert search_meta["paid_calls"] == search.count(200) > 0
    assert linkedin_meta["paid_calls"] == linkedin.count(200) == len(hosts)  # every row lacks the LinkedIn-only fields
    spent = search.count(200) * 0.001 + linkedin.count(200) * PRICE
    assert search_meta["cost_usd"] + linkedin_meta["cost_usd"] == pytest.approx(spent)

    rows = records(conn, table_id)
    for row in rows.iter_rows(named=True):
        label = row["normalized_url"].split("://")[1].split(".")[0]
        assert row["company_employee_range"] == company_facts(label)["band"]
        assert row["provenance"]["company_employee_range"]["source"] == "linkedin"
    assert float(rows["cost_usd"].cast(pl.Float64).sum()) == pytest.approx(spent)  # per row…
    field_cost = conn.execute("SELECT sum(cost_usd) FROM glaze.field_values WHERE table_id = %s", (table_id,))
    assert float(field_cost.fetchone()[0]) == pytest.approx(spent)  # …and per field, summing to the same
    ledger = conn.execute(
        "SELECT count(*), sum(cost_usd) FROM glaze.provider_calls WHERE table_id = %s AND cost_usd > 0", (table_id,)
    ).fetchone()
    assert ledger[0] == search.count(200) + linkedin.count(200) and float(ledger[1]) == pytest.approx(spent)
    assert "sim-key" not in str(search_meta) + str(linkedin_meta)

    second = run(table_id)
    assert second.success
    assert (linkedin.count(), search.count()) == (len(hosts), search_meta["paid_calls"])  # nothing paid twice
    assert meta(second, "linkedin_candidates")["cost_usd"] == 0
    assert meta(second, "linkedin_candidates")["cache_hits"] == len(hosts)


def test_a_provider_without_key_is_skipped_in_log_metadata_and_row_status(servers, conn, fresh_cache, tmp_path):
    table_id = upload(conn, linkedin_table(tmp_path, "nokey", 2), LINKEDIN_ONLY)
    instance = dg.DagsterInstance.ephemeral()
    result = run(table_id, instance=instance)
    assert result.success
    assert meta(result, "linkedin_candidates")["skipped"] == "GLAZE_LINKEDIN_API_KEY is not set: linkedin skipped"
    assert set(records(conn, table_id)["status"]) == {"skipped_no_key"}
    logs = [r.user_message for r in instance.all_logs(result.run_id) if r.user_message.startswith("linkedin: G")]
    assert logs == [
        "linkedin: GLAZE_LINKEDIN_API_KEY is not set: linkedin skipped; rows it would fill are marked skipped_no_key"
    ]


def test_the_budget_stops_spending_and_a_bigger_one_continues_without_paying_twice(servers, conn, sims, tmp_path):
    linkedin, _ = sims
    table_id = upload(conn, linkedin_table(tmp_path, "budget", 12), LINKEDIN_ONLY)
    first = run(table_id, max_cost_usd=0.05)
    assert first.success  # the run ends cleanly
    assert linkedin.count() <= 0.05 / PRICE
    statuses = records(conn, table_id)["status"].value_counts()
    assert dict(statuses.iter_rows()) == {"filled": 5, "budget_exhausted": 7}
    assert "run budget $0.05 reached" in meta(first, "linkedin_candidates")["budget"]

    conn.execute("UPDATE glaze.tables SET status = 'enriched' WHERE table_id = %s", (table_id,))
    conn.commit()
    second = CliRunner().invoke(main, ["enrich", table_id, "--max-cost", "1", "--no-marts"])  # the CLI's budget flag
    assert second.exit_code == 0, second.output
    assert linkedin.count() == 12  # only the 7 unpaid rows were called
    assert set(records(conn, table_id)["status"]) == {"filled"}


def test_a_step_retry_does_not_pay_again_for_rows_already_answered(servers, conn, sims, tmp_path, monkeypatch):
    linkedin, _ = sims
    rows = 40
    table_id = upload(conn, linkedin_table(tmp_path, "retry", rows), LINKEDIN_ONLY)
    real = waterfall.run_stage
    crashed: list[int] = []

    async def crash_once(provider, targets, cache, **kwargs):
        if provider.name == "linkedin" and not crashed:

            def lost_worker(done: int, total: int) -> None:
                if done >= total // 2:
                    crashed.append(done)
                    raise RuntimeError("worker lost mid-stage")

            kwargs["progress"] = lost_worker
        return await real(provider, targets, cache, **kwargs)

    monkeypatch.setattr(waterfall, "run_stage", crash_once)
    monkeypatch.setattr(provider_assets, "STEP_RETRY", dg.RetryPolicy(max_retries=2, delay=0.05))
    result = run(table_id, build_definitions().resolve_job_def("enrich_table"))
    assert result.success and crashed
    assert linkedin.count() <= rows + 2 * 4  # each row once, plus at most the calls in flight at the crash
    assert (
        meta(result, "linkedin_candidates")["cache_hits"] + meta(result, "linkedin_candidates")["ledger_hits"]
        >= crashed[0]
    )


def test_the_dry_run_prices_the_llm_per_token_and_bounds_what_the_run_pays(
    servers, conn, fresh_cache, fresh_ledger, sites, tmp_path, monkeypatch
):
    with AnthropicSimulator() as sim:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sim-key")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", sim.base_url)
        path = write_table(tmp_path / "dry_llm.csv", [f"https://{h}" for h in demo_hosts()])
        upload(conn, path, ["company_industry"], TableStatus.PLANNED)  # the demo sites do not say it
        plan = {e.provider: e for e in estimate_table(settings(), "dry_llm")}["llm"]
        assert sim.counters.requests["messages"] == 0 and plan.calls > 0
        # Per token: several times the old nominal $0.002 a call for pages of evidence and max_tokens.
        assert plan.cost_usd == pytest.approx(plan.calls * plan.price_usd) and plan.price_usd > 0.002
        conn.execute("UPDATE glaze.tables SET status = 'running' WHERE table_id = 'dry_llm'")
        conn.commit()
        assert run("dry_llm").success
    paid = conn.execute(
        "SELECT coalesce(sum(cost_usd), 0)::float8 FROM glaze.provider_calls"
        " WHERE table_id = 'dry_llm' AND provider = 'llm'"
    ).fetchone()[0]
    assert 0 < paid <= plan.cost_usd


def test_dry_run_pays_nothing_and_bounds_the_real_run(servers, conn, sims, sites, tmp_path):
    linkedin, search = sims
    hosts = demo_hosts()
    urls = [f"https://{h}" for h in hosts] + [f"https://www.linkedin.com/company/dry-co-{i}" for i in range(4)]
    path = write_table(tmp_path / "dry.csv", urls)
    fields = "company_name,company_industry,company_linkedin,company_website,company_employee_range"
    result = CliRunner().invoke(main, ["enrich", str(path), "--fields", fields, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "no paid provider was called" in result.output
    assert (linkedin.count(), search.count()) == (0, 0)
    assert table_info(conn, "dry").status == TableStatus.PLANNED

    plan = {e.provider: e for e in estimate_table(settings(), "dry")}
    assert (linkedin.count(), search.count()) == (0, 0)
    assert plan["search"].calls > 0 and plan["linkedin"].calls > 0
    assert plan["search"].cost_usd == pytest.approx(plan["search"].calls * 0.001)

    conn.execute("UPDATE glaze.tables SET status = 'running' WHERE table_id = 'dry'")
    conn.commit()
    real = run("dry")
    assert real.success
    assert meta(real, "search_candidates")["provider_calls"] == plan["search"].calls == search.count()  # exact
    assert meta(real, "linkedin_candidates")["provider_calls"] <= plan["linkedin"].calls  # an upper bound
    again = {e.provider: e.calls for e in estimate_table(settings(), "dry")}
    assert again == {"website": 0, "search": 0, "linkedin": 0, "llm": 0}  # all cached; no LLM key here
