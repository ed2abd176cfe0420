"""The whole table job on real Postgres and Redis, against a loopback website server."""

from __future__ import annotations

import json

import dagster as dg
import polars as pl
import pytest

from glaze_pipeline.core.intake.export import export_frame
from glaze_pipeline.core.intake.tables import TableStatus, ask_for_fields, table_info
from glaze_pipeline.core.intake.uploads import upload_file
from glaze_pipeline.core.storage.landing import table_hash
from glaze_pipeline.definitions import defs
from glaze_pipeline.runner import RunWatch
from glaze_pipeline.sandbox.anthropic_sim import AnthropicSimulator
from glaze_pipeline.sandbox.sites import DEMO_SITES, demo_hosts
from glaze_pipeline_tests.helpers import closed_port_url, write_table

pytestmark = pytest.mark.slow  # runs the whole table job

EXPECTED = json.loads((DEMO_SITES / "expected.json").read_text())
FIELDS = ["company_name", "company_email", "company_phone", "company_country", "company_linkedin"]


def _run(table_id: str, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions("tables", [table_id])
    return defs.resolve_job_def("enrich_table").execute_in_process(instance=instance, partition_key=table_id)


def _records(conn, table_id: str) -> pl.DataFrame:
    cur = conn.execute(
        "SELECT row_key, normalized_url, company_name, company_email, company_phone, company_country,"
        " company_linkedin, status, enriched_at, provenance FROM glaze.records WHERE table_id = %s ORDER BY row_key",
        (table_id,),
    )
    return pl.DataFrame(cur.fetchall(), schema=[d.name for d in cur.description], orient="row")


def test_table_job_enriches_lands_and_is_idempotent(servers, conn, demo_site, tmp_path):
    hosts = demo_hosts()
    urls = [f"https://{h}" for h in hosts] + [f"http://www.{hosts[0]}/", "not a url"]
    hints = [""] * len(urls)
    hints[1] = "Hinted Name Ltd"  # an input column named like a catalog field wins and is never overwritten
    path = write_table(tmp_path / "job.csv", urls, {"company_name": hints})
    uploaded = upload_file(conn, path, fields=FIELDS, status=TableStatus.RUNNING)
    conn.commit()
    assert (uploaded.counts.accepted, uploaded.counts.rejected, uploaded.counts.duplicates) == (
        len(hosts),
        1,
        1,
    )

    instance = dg.DagsterInstance.ephemeral()
    first = _run(uploaded.table_id, instance)
    assert first.success
    hits_after_first = sum(demo_site.hits.values())
    records = _records(conn, uploaded.table_id)
    assert records.height == len(hosts)

    by_host = {r["normalized_url"].split("://")[1]: r for r in records.iter_rows(named=True)}
    for host, expected in EXPECTED.items():
        row = by_host[host]
        for field in FIELDS:
            if host == hosts[1] and field == "company_name":
                continue
            assert row[field] == expected.get(field), (host, field)
    hinted = by_host[hosts[1]]
    assert hinted["company_name"] == "Hinted Name Ltd"
    assert hinted["provenance"]["company_name"]["source"] == "input"

    materialized = {e.asset_key.to_user_string() for e in first.get_asset_materialization_events()}
    assert materialized == {
        "source_rows",
        "website_candidates",
        "search_candidates",
        "linkedin_candidates",
        "llm_candidates",
        "enriched_records",
        "landed_records",
    }
    website_meta = first.asset_materializations_for_node("website_candidates")[0].metadata
    assert website_meta["provider_calls"].value == len(hosts)
    assert table_info(conn, uploaded.table_id).status == TableStatus.ENRICHED

    hash_before = table_hash(conn, uploaded.table_id)
    second = _run(uploaded.table_id, instance)
    assert second.success
    again = _records(conn, uploaded.table_id)
    assert table_hash(conn, uploaded.table_id) == hash_before
    assert again.height == records.height  # no duplicate rows
    assert again["enriched_at"].to_list() == records["enriched_at"].to_list()  # nothing changed, so not touched
    assert sum(demo_site.hits.values()) == hits_after_first  # second run served from the Redis cache
    meta = second.asset_materializations_for_node("website_candidates")[0].metadata
    assert meta["cache_hits"].value == len(hosts) and meta["provider_calls"].value == 0

    exported = export_frame(conn, table_info(conn, uploaded.table_id))
    assert exported["website"].to_list() == urls  # same rows, same order, duplicates included
    assert exported["glaze_status"][-1].startswith("rejected: ")
    assert exported["glaze_company_name"][0] == EXPECTED[hosts[0]]["company_name"]
    assert exported["glaze_company_name"][len(hosts)] == exported["glaze_company_name"][0]  # the duplicate
    assert int(exported["glaze_company_name_confidence"][0]) >= 70  # each value beside its confidence


def test_blocked_site_is_a_row_status_not_a_crash(servers, conn, demo_site, tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("GLAZE_ALLOW_PRIVATE_NETWORKS", "0")  # loopback refused: every fetch is blocked
    path = write_table(tmp_path / "blocked.csv", [f"https://{h}" for h in demo_hosts()[:2]])
    # Only the website finds emails, so the paid providers (no keys here) have nothing to add.
    uploaded = upload_file(conn, path, fields=["company_email"], status=TableStatus.RUNNING)
    conn.commit()
    result = _run(uploaded.table_id, dg.DagsterInstance.ephemeral())
    assert result.success
    assert sum(demo_site.hits.values()) == 0
    records = _records(conn, uploaded.table_id)
    # The summary names what happened to the row (a block), not a missing key that is true of every row;
    # the attempts say what each provider hit.
    assert records["status"].to_list() == ["blocked", "blocked"]
    for provenance in records["provenance"]:
        assert provenance["company_email"]["attempts"] == {"website": "blocked", "llm": "skipped_no_key"}
        assert provenance["company_email"]["source"] == "website"
        assert "which is not an allowed address" in provenance["company_email"]["reason"]


def test_invalid_input_hints_are_rejected_cells_not_lost_rows(servers, conn, demo_site, tmp_path):
    hosts = demo_hosts()[:3]
    path = write_table(
        tmp_path / "hints.csv",
        [f"https://{h}" for h in hosts],
        {"company_country": ["Atlantis", "DE", ""]},
    )
    uploaded = upload_file(conn, path, fields=["company_country"], status=TableStatus.RUNNING)
    conn.commit()
    result = _run(uploaded.table_id, dg.DagsterInstance.ephemeral())
    assert result.success
    records = _records(conn, uploaded.table_id)
    assert records.height == 3
    assert "DE" in records["company_country"].to_list()
    check = result.get_asset_check_evaluations()[0]
    assert check.passed


def test_redis_down_the_run_goes_on_and_says_so(servers, conn, demo_site, tmp_path, monkeypatch):
    monkeypatch.setenv("GLAZE_REDIS_URL", closed_port_url())
    path = write_table(tmp_path / "no_redis.csv", [f"https://{h}" for h in demo_hosts()[:2]])
    uploaded = upload_file(conn, path, fields=["company_name"], status=TableStatus.RUNNING)
    conn.commit()
    instance = dg.DagsterInstance.ephemeral()
    result = _run(uploaded.table_id, instance)
    assert result.success
    meta = result.asset_materializations_for_node("website_candidates")[0].metadata
    assert "Redis unavailable" in meta["cache"].value
    assert meta["provider_calls"].value == 2
    warnings = [r.user_message for r in instance.all_logs(result.run_id) if "Redis unavailable" in r.user_message]
    assert warnings  # said in the run log too
    assert _records(conn, uploaded.table_id)["company_name"].null_count() == 0


def enrich_table_job() -> dg.JobDefinition:
    """Module-level, so `dg.reconstructable` can rebuild the job inside each step's own process."""
    from glaze_pipeline.definitions import defs as definitions

    return definitions.resolve_job_def("enrich_table")


def test_table_job_in_the_multiprocess_executor(servers, conn, demo_site, tmp_path):
    """Each step in its own process, the website step spawning its crawler child: statuses land per row.

    Four rows, so the crawl is a child process's (a batch of up to three is crawled in the step's process)."""
    hosts = demo_hosts()[:3]
    urls = [f"https://{h}" for h in hosts] + ["https://missing-site.example"]
    path = write_table(tmp_path / "multi.csv", urls)
    uploaded = upload_file(conn, path, fields=FIELDS, status=TableStatus.RUNNING)
    conn.commit()
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        instance.add_dynamic_partitions("tables", [uploaded.table_id])
        result = dg.execute_job(
            dg.reconstructable(enrich_table_job),
            instance=instance,
            tags={"dagster/partition": uploaded.table_id},
            # forkserver with the code location preloaded: each step forks in milliseconds instead of
            # importing Dagster and the project afresh (~4 s a step here).
            run_config={
                "execution": {
                    "config": {
                        "multiprocess": {
                            "max_concurrent": 2,
                            "start_method": {"forkserver": {"preload_modules": ["glaze_pipeline.definitions"]}},
                        }
                    }
                }
            },
        )
        assert result.success
        workers = [e for e in result.all_events if e.event_type_value == "STEP_WORKER_STARTED"]
        assert len(workers) >= 4  # source_rows, website_candidates, enriched_records, landed_records
    records = {r["normalized_url"].split("://")[1]: r for r in _records(conn, uploaded.table_id).iter_rows(named=True)}
    for host in hosts:
        assert records[host]["company_name"] == EXPECTED[host]["company_name"]
    # No DNS for it: a row status, not a crash.
    assert records["missing-site.example"]["provenance"]["company_name"]["attempts"]["website"] == "not_found"


def test_only_rows_with_gaps_reach_the_llm(servers, conn, demo_site, tmp_path, monkeypatch):
    with AnthropicSimulator() as sim:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sim-key")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", sim.base_url)
        path = write_table(tmp_path / "llm_gaps.csv", [f"https://{h}" for h in demo_hosts()])
        uploaded = upload_file(conn, path, fields=["company_name", "company_founded_year"], status=TableStatus.RUNNING)
        conn.commit()
        result = _run(uploaded.table_id, dg.DagsterInstance.ephemeral())
    assert result.success
    website = result.asset_materializations_for_node("website_candidates")[0].metadata
    llm = result.asset_materializations_for_node("llm_candidates")[0].metadata
    with_gaps = llm["rows_with_gaps"].value
    assert 0 < with_gaps < website["rows_in"].value  # the website filled some rows completely
    assert sim.counters.requests["messages"] == with_gaps
    records = _records(conn, uploaded.table_id)
    assert records.height == len(demo_hosts())


def test_without_an_anthropic_key_the_llm_stage_is_skipped_and_says_so(servers, conn, demo_site, tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    path = write_table(tmp_path / "no_key.csv", [f"https://{h}" for h in demo_hosts()])
    uploaded = upload_file(conn, path, fields=["company_founded_year"], status=TableStatus.RUNNING)
    conn.commit()
    result = _run(uploaded.table_id, dg.DagsterInstance.ephemeral())
    assert result.success
    llm = result.asset_materializations_for_node("llm_candidates")[0].metadata
    assert "ANTHROPIC_API_KEY" in llm["skipped"].value
    statuses = {p["company_founded_year"]["status"] for p in _records(conn, uploaded.table_id)["provenance"]}
    assert "skipped_no_key" in statuses


def test_the_llm_spends_under_the_run_budget_and_records_its_calls_in_the_ledger(
    servers, conn, demo_site, tmp_path, monkeypatch, fresh_cache, fresh_ledger
):
    with AnthropicSimulator() as sim:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sim-key")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", sim.base_url)
        path = write_table(tmp_path / "llm_budget.csv", [f"https://{h}" for h in demo_hosts()])
        uploaded = upload_file(conn, path, fields=["company_industry"], status=TableStatus.RUNNING)
        conn.commit()
        instance = dg.DagsterInstance.ephemeral()
        instance.add_dynamic_partitions("tables", [uploaded.table_id])
        budget = 0.005  # room for two calls at the LLM's estimated price
        result = defs.resolve_job_def("enrich_table").execute_in_process(
            instance=instance,
            partition_key=uploaded.table_id,
            run_config={"resources": {"budget": {"config": {"max_cost_usd": budget}}}},
        )
    assert result.success
    llm = result.asset_materializations_for_node("llm_candidates")[0].metadata
    assert 0 < sim.counters.requests["messages"] < len(demo_hosts())
    statuses = {p["company_industry"]["status"] for p in _records(conn, uploaded.table_id)["provenance"]}
    assert "budget_exhausted" in statuses
    spent = conn.execute(
        "SELECT count(*), coalesce(sum(cost_usd), 0) FROM glaze.provider_calls"
        " WHERE provider = 'llm' AND table_id = %s",
        (uploaded.table_id,),
    ).fetchone()
    assert spent is not None and spent[0] == sim.counters.requests["messages"]
    assert float(spent[1]) <= budget
    assert llm["cost_usd"].value == pytest.approx(float(spent[1]), abs=1e-6)


@pytest.mark.parametrize("budget", [{"max_cost_usd": float("nan")}, {"max_cost_per_row_usd": -1.0}])
def test_a_budget_in_run_config_that_is_not_a_finite_amount_fails_the_run_before_any_stage(
    servers, conn, demo_site, tmp_path, budget
):
    path = write_table(tmp_path / "nan_budget.csv", [f"https://{h}" for h in demo_hosts()[:1]])
    uploaded = upload_file(conn, path, fields=["company_name"], status=TableStatus.RUNNING)
    conn.commit()
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tables", [uploaded.table_id])
    result = defs.resolve_job_def("enrich_table").execute_in_process(
        instance=instance,
        partition_key=uploaded.table_id,
        run_config={"resources": {"budget": {"config": budget}}},
        raise_on_error=False,
    )
    assert not result.success
    assert not result.get_asset_materialization_events()  # no stage ran, so nothing was paid
    errors = [str(e.event_specific_data) for e in result.all_events if e.is_failure]
    assert any("finite amount of US dollars" in text for text in errors), errors


def test_adding_fields_to_an_enriched_table_runs_only_the_new_fields(servers, conn, demo_site, tmp_path, monkeypatch):
    hosts = demo_hosts()[:2]
    path = write_table(tmp_path / "grow.csv", [f"https://{h}" for h in hosts])
    uploaded = upload_file(conn, path, fields=["company_name"], status=TableStatus.RUNNING)
    conn.commit()
    instance = dg.DagsterInstance.ephemeral()
    assert _run(uploaded.table_id, instance).success
    before = {r["row_key"]: r["provenance"] for r in _records(conn, uploaded.table_id).iter_rows(named=True)}

    assert ask_for_fields(conn, uploaded.table_id, ["company_email"]) == ["company_name", "company_email"]
    conn.commit()
    monkeypatch.setenv("GLAZE_REDIS_PREFIX", f"{servers.redis_prefix}grow2:")  # a cold cache: the site is crawled again
    second = _run(uploaded.table_id, instance)
    assert second.success
    assert second.asset_materializations_for_node("source_rows")[0].metadata["asked_fields"].value == "company_email"

    for row in _records(conn, uploaded.table_id).iter_rows(named=True):
        host = row["normalized_url"].split("://")[1]
        assert row["company_email"] == EXPECTED[host]["company_email"]
        # The name was not decided again: same provenance, down to the first crawl's time.
        assert row["provenance"]["company_name"] == before[row["row_key"]]["company_name"]
        assert row["provenance"]["company_email"]["fetched_at"] > row["provenance"]["company_name"]["fetched_at"]
    names = conn.execute(
        "SELECT count(*) FROM glaze.field_values WHERE table_id = %s AND field = 'company_name'", (uploaded.table_id,)
    ).fetchone()
    assert names == (len(hosts),)  # the second crawl's names were not even candidates
    info = table_info(conn, uploaded.table_id)
    assert info.wanted_fields == ["company_name", "company_email"] and info.run_fields is None

    # What `glaze status` reads from another process: the steps done and each stage's rows.
    watch = RunWatch(instance, second.run_id)
    assert watch.poll()
    assert watch.steps == (watch.total_steps, watch.total_steps) and watch.total_steps >= 7
    assert watch.stages["website"] == (len(hosts), len(hosts))
