"""Claims on paid requests and on tables, straight against Postgres: exactly one holder, lapsed holders replaced."""

from __future__ import annotations

import pytest

from glaze_pipeline.core.intake.lifecycle import TableBusy, claim_table, queue_table, release_table
from glaze_pipeline.core.intake.tables import TableStatus, table_info
from glaze_pipeline.core.intake.uploads import upload_file
from glaze_pipeline.core.storage.claims import PaidClaims
from glaze_pipeline_tests.helpers import write_table


def _claims(servers, run_id: str, lease_s: float) -> PaidClaims:
    return PaidClaims(servers.database_url, provider="claims-test", version="1", run_id=run_id, lease_s=lease_s)


def test_one_holder_per_request_until_it_lets_go_or_its_lease_lapses(servers):
    first, second, late = _claims(servers, "r1", 60), _claims(servers, "r2", 60), _claims(servers, "r3", 0)
    try:
        assert first.claim(["a", "b"]) == {"a", "b"}
        assert second.claim(["a", "b", "c"]) == {"c"}  # a and b are the first holder's
        assert first.claim(["a"]) == {"a"}  # a holder may claim its own again
        assert second.holders(["a", "b"]) == {"r1"}
        first.release(["a"])
        assert second.claim(["a", "b"]) == {"a"}
        assert first.renew() == 1  # b is still first's, renewed
        first.release()
        assert late.claim(["d"]) == {"d"}  # a claim with a lease of 0 lapses at once…
        assert second.claim(["b", "d"]) == {"b", "d"}  # …and is taken over, as a SIGKILLed holder's would be
    finally:
        for c in (first, second, late):
            c.release()
            c.close()


def test_a_running_table_is_refused_to_a_second_run(servers, conn, tmp_path):
    path = write_table(tmp_path / "held.csv", ["https://held.example"])
    table_id = upload_file(conn, path, fields=["company_name"], status=TableStatus.PENDING).table_id
    claim_table(conn, table_id, "run-a")
    claim_table(conn, table_id, "run-a")  # the holder's own second claim (its first step) is fine
    with pytest.raises(TableBusy, match=f"table {table_id} is already being enriched by run run-a"):
        claim_table(conn, table_id, "run-b")
    assert not release_table(conn, table_id, "not mine", run_id="run-b")  # the refused run cannot release it
    assert release_table(conn, table_id, "done", run_id="run-a")
    claim_table(conn, table_id, "run-b")
    assert not queue_table(conn, table_id)  # the sensor cannot queue a table a run holds
    assert table_info(conn, table_id).status == TableStatus.RUNNING
    conn.rollback()
