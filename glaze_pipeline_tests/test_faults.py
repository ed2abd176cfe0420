"""Faults proven harmless: each strikes a real table run at a chosen moment (scenarios in `sandbox/faults.py`).

Servers a fault kills are private ones the scenario starts: never the machine's PostgreSQL or Redis.
"""

from __future__ import annotations

import pytest

from glaze_pipeline.sandbox import faults

pytestmark = pytest.mark.slow  # each runs the whole table job, some twice or three times


def test_postgres_restarting_while_landing_shows_no_half_batch_and_the_rerun_lands_the_same(
    servers, tmp_path, fresh_cache
):
    out = faults.postgres_restart_while_landing(tmp_path, rows=200)
    assert out.details["visible_while_landing"] == 0  # half the rows were written, in a transaction nobody sees
    assert not out.details["first_run_succeeded"]  # the run fails…
    assert out.details["visible_after_restart"] == 0  # …and crash recovery keeps nothing of the half batch
    assert out.details["rerun_succeeded"] and out.details["rerun_paid_calls"] == 0  # answers came back free
    assert (out.rows_in, out.rows_out, out.duplicates, out.extra_paid_calls) == (200, 200, 0, 0)
    assert out.same_as_uninterrupted


def test_redis_dying_mid_run_costs_nothing_and_the_next_run_uses_it_again(servers, tmp_path, fresh_cache):
    out = faults.redis_dies_mid_run(tmp_path, rows=120)
    assert out.details["first_run_succeeded"]
    assert out.details["same_right_after_fault"]  # the results are the same as with Redis up throughout…
    assert "Redis unavailable" in out.details["cache"]  # …and the run says what it ran without: metadata…
    assert out.details["rate_limiter"].startswith("local")
    assert any(w.startswith("linkedin: Redis unavailable") for w in out.details["warnings"])  # …and the log
    assert any("rate limiter" in w for w in out.details["warnings"])
    assert out.details["rerun_succeeded"] and out.details["rerun_calls"] == 0  # the ledger answered what Redis lost
    assert out.details["rerun_cache"] == "ok" and out.details["rerun_rate_limiter"] == "redis"
    assert out.details["cached_after_rerun"] == 120  # and put it back in the Redis that came back
    assert (out.rows_out, out.duplicates, out.extra_paid_calls) == (120, 0, 0)


def test_a_worker_killed_in_the_website_stage_loses_nothing(servers, tmp_path, fresh_cache):
    out = faults.worker_killed_in_website_stage(tmp_path, rows=40)
    assert out.details["sites_answered_before_kill"] < 40 and out.details["visible_after_kill"] == 0
    assert out.details["rerun_exit"] == 0
    assert (out.rows_in, out.rows_out, out.duplicates, out.extra_paid_calls) == (40, 40, 0, 0)
    assert out.same_as_uninterrupted


def test_a_worker_killed_in_a_paid_stage_pays_again_only_for_the_calls_in_flight(
    servers, tmp_path, fresh_cache, fresh_ledger
):
    out = faults.worker_killed_in_paid_stage(tmp_path, rows=60, concurrency=2)
    assert out.details["recorded_at_kill"] == 30 and out.in_flight == 2
    assert out.details["rerun_exit"] == 0
    assert out.details["rerun_calls"] == 60 - 30  # everything the ledger held came back free
    assert out.extra_paid_calls <= out.in_flight  # paid twice: at most what was in flight at the kill
    # The records' costs equal the ledger's, the killed run's calls included (its re-run got them free).
    assert out.details["table_records_usd"] == pytest.approx(out.details["table_ledger_usd"])
    assert (out.rows_in, out.rows_out, out.duplicates) == (60, 60, 0)
    assert out.same_as_uninterrupted


def test_provider_chaos_leaves_every_row_explained_and_the_budget_whole(servers, tmp_path, fresh_cache, fresh_ledger):
    out = faults.provider_chaos(tmp_path, rows=150, seed=12)
    d = out.details
    assert d["succeeded"]
    chaos = d["chaos"]["linkedin"]  # the chaos did strike
    assert chaos["errors"] > 0 and chaos["storm"] == 25 and sum(chaos["malformed"].values()) > 0, chaos
    assert (out.rows_in, out.rows_out, out.duplicates) == (150, 150, 0)  # rows in = rows out
    assert d["unexplained"] == []  # every cell: a value, or a status and the reason
    assert d["wrong_values"] == []  # and no value that a calm run would not have given
    assert d["statuses"]["filled"] > 0 and d["statuses"]["budget_exhausted"] > 0
    assert d["ledger_usd"] <= d["max_cost_usd"]  # the budget holds…
    assert d["ledger_usd"] == pytest.approx(d["records_usd"]) == pytest.approx(d["metadata_usd"])  # …and every figure
    assert d["ledger_usd"] == pytest.approx(d["vendor_billed_usd"])  # equals what the vendors would bill
    assert out.extra_paid_calls == 0  # a malformed answer is not asked again in the same run
