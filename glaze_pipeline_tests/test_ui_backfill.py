"""A backfill launched through Dagster's GraphQL API against a running `glaze dev`, as the UI's dialog does it.

Three tables are registered with `glaze upload`. The LLM provider is misconfigured the way a user can
misconfigure it: `GLAZE_LLM_MODEL` names a model glaze has no price for (`claude-sonnet-5`), with an
Anthropic key set. glaze refuses to call a paid API whose cost it cannot bound, so the `llm_candidates`
step raises "no price for model …" (after its step retries) and that run fails. Provider faults on a row
(HTTP errors, garbage answers) are row statuses and never fail a run; this one is a refusal for the whole
stage. Only a table that reaches the LLM with gaps hits it: `bad` asks for `company_industry`, which no demo
site publishes (search and LinkedIn have no keys, so they skip), while `good_a` and `good_b` ask only for
the name and website that every demo site gives, so their LLM stage has nothing to ask and never prices a
call. Nothing leaves loopback: the Anthropic URL is a closed port on 127.0.0.1, never called.

The new-tables sensor is stopped first through the same API (as a user switches it off in the UI), so the
backfill's runs are the only ones; the backfill dialog's "add partition" is `addDynamicPartition`. The
GraphQL calls are in `glaze_pipeline/sandbox/ui_api.py` (shared with bench/small_runs.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from glaze_pipeline.sandbox.dev import GlazeDev, wait_until
from glaze_pipeline.sandbox.ui_api import DagsterUi
from glaze_pipeline_tests.conftest import TestServers
from glaze_pipeline_tests.helpers import closed_port, write_table

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.fixture
def dev(servers: TestServers) -> Iterator[GlazeDev]:
    misconfigured_llm = {
        "ANTHROPIC_API_KEY": "sk-ant-not-sent",
        "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{closed_port()}",
        "GLAZE_LLM_MODEL": "claude-sonnet-5",
    }
    running = GlazeDev(closed_port(), misconfigured_llm, startup_timeout_s=240)
    with running:
        yield running
    assert running.left_after_sigterm == [], "glaze dev left processes behind after SIGTERM"


def register(dev: GlazeDev, folder: Path, name: str, hosts: list[str], fields: str) -> None:
    path = write_table(folder / f"{name}.csv", [f"https://{h}" for h in hosts])
    done = dev.glaze("upload", str(path), "--name", name, "--fields", fields)
    assert done.returncode == 0, done.stderr


def table_statuses(database_url: str) -> dict[str, tuple[str, str | None]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT table_id, status, status_reason FROM glaze.tables").fetchall()
    return {table_id: (status, reason) for table_id, status, reason in rows}


def test_graphql_backfill_fails_only_the_partition_whose_provider_fails(dev: GlazeDev, tmp_path: Path) -> None:
    ui = DagsterUi(dev.port)
    ui.stop_sensor("new_tables_sensor")

    register(dev, tmp_path, "good_a", ["tinyforge.example", "northwind-robotics.example"], "company_name")
    register(dev, tmp_path, "good_b", ["helix-biotech.example", "bluefjord-analytics.example"], "company_name")
    register(dev, tmp_path, "bad", ["cafe-lumiere.example", "kestrel-logistics.example"], "company_industry")
    tables = ["good_a", "good_b", "bad"]
    for table in tables:
        ui.add_partition(table)

    backfill_id = ui.launch_backfill(tables)
    runs, _ = ui.wait_for_backfill(backfill_id, 3, timeout_s=600)
    assert runs == {"good_a": "SUCCESS", "good_b": "SUCCESS", "bad": "FAILURE"}
    assert len(ui.job_run_ids()) == 3, "runs other than the backfill's were launched"

    # The run-failure sensor marks the failed table with its step's reason; the good ones landed.
    wait_until(lambda: table_statuses(dev.database_url)["bad"][0] == "failed", "the failed table's status", 60)
    statuses = table_statuses(dev.database_url)
    assert statuses["good_a"][0] == statuses["good_b"][0] == "enriched"
    reason = statuses["bad"][1] or ""
    assert "llm_candidates" in reason and "no price for model 'claude-sonnet-5'" in reason, reason
    with psycopg.connect(dev.database_url) as conn:
        landed = conn.execute("SELECT table_id, count(*) FROM glaze.records GROUP BY table_id").fetchall()
    assert dict(landed) == {"good_a": 2, "good_b": 2}
    ui.wait_until_idle(300)  # the marts run that follows a landing, before glaze dev is stopped
