"""A 10k-row table in chunks: the same records as the whole-table job, nothing paid twice, resumable after a crash."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg
import pytest

from glaze_pipeline.config import settings
from glaze_pipeline.core.intake.tables import TableStatus, table_info
from glaze_pipeline.core.intake.uploads import upload_file
from glaze_pipeline.core.pipeline.chunks import enrich_chunk, enrich_table_in_chunks, plan_chunks
from glaze_pipeline.core.pipeline.runtime import BudgetLimits, open_runtime
from glaze_pipeline.core.storage.landing import table_hash
from glaze_pipeline.definitions import defs
from glaze_pipeline.sandbox.apis import ApiSimulator
from glaze_pipeline_tests.helpers import write_table

pytestmark = pytest.mark.slow

ROWS = 10_000
CHUNK = 1_500  # 7 chunks, the last one short
FIELDS = ["company_employee_range", "company_specialities"]  # only LinkedIn fills these
LIMITS = BudgetLimits(max_cost_usd=1_000.0, max_cost_per_row_usd=1.0)


@pytest.fixture
def linkedin(monkeypatch: pytest.MonkeyPatch, fresh_cache: str, fresh_ledger: None) -> Iterator[ApiSimulator]:
    with ApiSimulator("linkedin") as sim:
        for name, value in sim.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("GLAZE_LINKEDIN_RATE_PER_S", "100000")
        monkeypatch.setenv("GLAZE_LINKEDIN_CONCURRENCY", "16")
        yield sim


def big_table(conn, tmp_path: Path, name: str) -> str:
    urls = [f"https://www.linkedin.com/company/big-co-{i}" for i in range(ROWS)]
    path = write_table(tmp_path / f"{name}.csv", urls)
    table_id = upload_file(conn, path, fields=FIELDS, status=TableStatus.RUNNING).table_id
    conn.commit()
    return table_id


def test_chunks_land_what_the_whole_table_job_lands_paying_once_and_resume_after_a_crash(
    servers, conn, linkedin, tmp_path
):
    whole = big_table(conn, tmp_path, "whole")
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tables", [whole])
    budget = {"resources": {"budget": {"config": {"max_cost_usd": 1_000.0, "max_cost_per_row_usd": 1.0}}}}
    result = defs.resolve_job_def("enrich_table").execute_in_process(
        instance=instance, partition_key=whole, run_config=budget
    )
    assert result.success
    paid = linkedin.count()
    assert paid == ROWS
    expected = table_hash(conn, whole)

    chunked = big_table(conn, tmp_path, "chunked")
    chunks = plan_chunks(conn, chunked, CHUNK)
    assert [c.last_row - c.first_row + 1 for c in chunks] == [CHUNK] * 6 + [ROWS - 6 * CHUNK]
    with open_runtime(settings()) as runtime:
        # A first run dies after landing three chunks…
        for chunk in chunks[:3]:
            assert not enrich_chunk(runtime, chunked, chunk, run_id="crashed", limits=LIMITS).skipped
        # …and the re-run does only the four that did not land.
        fingerprint, outcomes = enrich_table_in_chunks(runtime, chunked, "rerun", size=CHUNK, limits=LIMITS)
    assert [o.skipped for o in outcomes] == [True] * 3 + [False] * 4
    assert max(o.rows for o in outcomes) == CHUNK  # no step ever held more than a chunk of the table
    assert fingerprint == table_hash(conn, chunked) == expected
    assert linkedin.count() == paid  # every answer came from the cache: nothing paid twice
    assert table_info(conn, chunked).status == TableStatus.ENRICHED
    marks = conn.execute("SELECT count(*) FROM glaze.landed_chunks WHERE table_id = %s", (chunked,)).fetchone()
    assert marks == (0,)  # a finished run forgets its marks: the next run is a refresh of every chunk

    with open_runtime(settings()) as runtime:
        again, outcomes = enrich_table_in_chunks(runtime, chunked, "refresh", size=CHUNK, limits=LIMITS)
    assert not any(o.skipped for o in outcomes) and again == expected and linkedin.count() == paid


def test_chunks_running_side_by_side_stay_within_the_run_budget_together(servers, conn, linkedin, tmp_path):
    linkedin.knobs.latency_s = 0.05  # both chunks are paying at the same time
    urls = [f"https://www.linkedin.com/company/pair-co-{i}" for i in range(12)]
    path = write_table(tmp_path / "pair.csv", urls)
    table_id = upload_file(conn, path, fields=FIELDS, status=TableStatus.RUNNING).table_id
    conn.commit()
    chunks = plan_chunks(conn, table_id, 6)
    limits = BudgetLimits(max_cost_usd=0.05, max_cost_per_row_usd=1.0)  # 5 calls at $0.01 for the whole run
    with open_runtime(settings()) as runtime, ThreadPoolExecutor(2) as pool:
        side_by_side = [
            pool.submit(enrich_chunk, runtime, table_id, c, run_id="pair", limits=limits, share=c.entities / 12)
            for c in chunks
        ]
        outcomes = [f.result() for f in side_by_side]
    paid = sum(s.paid_calls for o in outcomes for s in o.stages)
    assert paid == linkedin.count(200) == 4  # each chunk may spend its half: 2 calls each, never 5 each
    spent = conn.execute("SELECT sum(cost_usd) FROM glaze.provider_calls WHERE table_id = %s", (table_id,)).fetchone()
    assert float(spent[0]) <= 0.05
