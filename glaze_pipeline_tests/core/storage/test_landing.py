"""Landing on real Postgres: the audit trail keeps every candidate, marks the chosen one, and follows re-runs."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
from psycopg import sql

from glaze_pipeline.core.intake.tables import TableStatus
from glaze_pipeline.core.intake.uploads import upload_file
from glaze_pipeline.core.model.candidates import Attempt, Found, attempts_to_frame
from glaze_pipeline.core.model.fields import FIELD_NAMES
from glaze_pipeline.core.model.status import Status
from glaze_pipeline.core.pipeline.merge import audit_trail, merge
from glaze_pipeline.core.pipeline.waterfall import TableWork
from glaze_pipeline.core.storage.landing import land, table_hash
from glaze_pipeline.core.storage.ledger import Call, Ledger
from glaze_pipeline_tests.helpers import write_table

FIELDS = ["company_name", "company_city"]
ORDER = ["website", "search"]


def _table(conn, tmp_path: Path, name: str) -> TableWork:
    path = write_table(tmp_path / f"{name}.csv", ["https://acme.example"])
    table_id = upload_file(conn, path, fields=FIELDS, status=TableStatus.RUNNING).table_id
    conn.commit()
    return TableWork.load(conn, table_id)


def _land(conn, work: TableWork, *frames: pl.DataFrame) -> int:
    records = merge(work.rows, work.asked, list(frames), ORDER)
    candidates = pl.concat(frames)
    rejects = pl.DataFrame(schema={"row_key": pl.String, "reasons": pl.String})
    stats = land(conn, work.table_id, records, audit_trail(records, candidates), rejects, work.asked)
    conn.commit()
    return stats.field_values_added


def _trail(conn, table_id: str) -> list[tuple[str, str, str, bool, str | None, str | None]]:
    return conn.execute(
        "SELECT field, source, value, chosen, reason, detail FROM glaze.field_values WHERE table_id = %s"
        " ORDER BY field, source, value",
        (table_id,),
    ).fetchall()


def test_every_candidate_is_kept_with_the_chosen_one_marked_and_the_losers_reasons(servers, conn, tmp_path):
    work = _table(conn, tmp_path, "audit_all")
    key = work.rows["row_key"][0]
    fetched = datetime(2026, 3, 1, tzinfo=UTC)
    # Two names from one fetch of one provider: the old key (row, field, source, fetched_at) kept only one.
    website = attempts_to_frame(
        [
            Attempt(
                key,
                (
                    Found("company_name", "Acme", 90, "og:site_name"),
                    Found("company_name", "Acme Widgets", 60, "footer"),
                    Found("company_city", "Berlin", 80, "address"),
                ),
                Status.FILLED,
                fetched_at=fetched,
            )
        ],
        "website",
    ).with_columns(  # the extractor's word on a value it ranked lower travels in `detail`
        detail=pl.when(pl.col("value") == "Acme Widgets").then(pl.lit("lower: footer text only")).otherwise(None)
    )
    search = attempts_to_frame(
        [Attempt(key, (Found("company_name", "Acme Holdings", 70, "snippet"),), Status.FILLED, fetched_at=fetched)],
        "search",
    )
    assert _land(conn, work, website, search) == 4

    trail = _trail(conn, work.table_id)
    assert [(f, s, v, c) for f, s, v, c, _, _ in trail] == [
        ("company_city", "website", "Berlin", True),
        ("company_name", "search", "Acme Holdings", False),
        ("company_name", "website", "Acme", True),
        ("company_name", "website", "Acme Widgets", False),
    ]
    reasons = {v: (reason, detail) for _, _, v, _, reason, detail in trail}
    assert reasons["Acme Holdings"][0] == "lost to 'Acme' from website (confidence 90)"
    assert reasons["Acme Widgets"] == ("lost to 'Acme' from website (confidence 90)", "lower: footer text only")
    # "Why this value and not that one" is one query: the landed value beside every other candidate.
    why = conn.execute(
        """SELECT loser.value, loser.reason FROM glaze.field_values kept
           JOIN glaze.field_values loser USING (table_id, row_key, field)
           JOIN glaze.records r USING (table_id, row_key)
           WHERE kept.chosen AND NOT loser.chosen AND kept.value = r.company_name
             AND r.table_id = %s AND kept.field = 'company_name' ORDER BY loser.value""",
        (work.table_id,),
    ).fetchall()
    assert [v for v, _ in why] == ["Acme Holdings", "Acme Widgets"]


def test_a_rerun_moves_the_chosen_mark_and_adds_only_what_is_new(servers, conn, tmp_path):
    work = _table(conn, tmp_path, "audit_rerun")
    key = work.rows["row_key"][0]
    first_fetch = datetime(2026, 3, 1, tzinfo=UTC)
    old = attempts_to_frame(
        [Attempt(key, (Found("company_name", "Acme", 80, "title"),), Status.FILLED, fetched_at=first_fetch)], "website"
    )
    assert _land(conn, work, old) == 1
    assert _land(conn, work, old) == 0  # the same answer again (a cache hit) adds nothing

    newer = attempts_to_frame(
        [
            Attempt(
                key,
                (Found("company_name", "Acme Robotics", 95, "json-ld"),),
                Status.FILLED,
                fetched_at=first_fetch + timedelta(days=40),
            )
        ],
        "website",
    )
    assert _land(conn, work, newer) == 1
    trail = {v: (chosen, reason) for _, _, v, chosen, reason, _ in _trail(conn, work.table_id)}
    assert trail["Acme Robotics"][0] is True
    assert trail["Acme"][0] is False
    assert trail["Acme"][1].startswith("chosen by an earlier run: website at confidence 80")
    chosen = conn.execute(
        "SELECT count(*) FROM glaze.field_values WHERE table_id = %s AND field = 'company_name' AND chosen",
        (work.table_id,),
    ).fetchone()
    assert chosen == (1,)


def test_landing_the_same_trail_again_rewrites_no_audit_row_and_a_moved_mark_touches_only_its_rows(
    servers, conn, tmp_path
):
    work = _table(conn, tmp_path, "audit_same")
    key = work.rows["row_key"][0]
    fetched = datetime(2026, 3, 1, tzinfo=UTC)
    found = (Found("company_name", "Acme", 80, "title"), Found("company_city", "Berlin", 80, "address"))
    first = attempts_to_frame([Attempt(key, found, Status.FILLED, fetched_at=fetched)], "website")
    _land(conn, work, first)
    versions = "SELECT field, source, value, xmin::text FROM glaze.field_values WHERE table_id = %s ORDER BY 1, 2, 3"
    before = conn.execute(versions, (work.table_id,)).fetchall()
    trail = _trail(conn, work.table_id)
    assert _land(conn, work, first) == 0  # a cached re-run: the same candidates, the same decisions
    assert conn.execute(versions, (work.table_id,)).fetchall() == before  # no row version was written
    assert _trail(conn, work.table_id) == trail

    # A search value with more agreement now wins the name: the old mark is cleared, the city row is untouched.
    search = attempts_to_frame(
        [Attempt(key, (Found("company_name", "Acme Robotics", 95, "snippet"),), Status.FILLED, fetched_at=fetched)],
        "search",
    )
    _land(conn, work, first, search)
    after = {(f, s, v): x for f, s, v, x in conn.execute(versions, (work.table_id,)).fetchall()}
    old = {(f, s, v): x for f, s, v, x in before}
    assert after[("company_city", "website", "Berlin")] == old[("company_city", "website", "Berlin")]
    assert after[("company_name", "website", "Acme")] != old[("company_name", "website", "Acme")]
    marks = {v: (chosen, reason) for _, _, v, chosen, reason, _ in _trail(conn, work.table_id)}
    assert marks["Acme Robotics"] == (True, "search at confidence 95; beat 'Acme' from website (80)")
    assert marks["Acme"] == (False, "lost to 'Acme Robotics' from search (confidence 95)")
    assert marks["Berlin"][0] is True
    assert table_hash(conn, work.table_id) == _hash_of_whole_provenance(conn, work.table_id)


def _hash_of_whole_provenance(conn, table_id: str) -> str:
    """The table hash as it was computed before Postgres picked the parts out: every provenance read whole."""
    query = sql.SQL("SELECT row_key, {}, provenance FROM glaze.records WHERE table_id = %s ORDER BY row_key")
    digest = hashlib.sha256()
    for row in conn.execute(query.format(sql.SQL(", ").join(map(sql.Identifier, FIELD_NAMES))), (table_id,)):
        evidence = {f: [p.get("status"), p.get("confidence"), p.get("source")] for f, p in sorted(row[-1].items())}
        digest.update(json.dumps([list(row[:-1]), evidence], default=str).encode())
    return digest.hexdigest()


def test_a_rows_cost_is_the_ledgers_even_when_a_killed_run_paid_and_the_rerun_was_served_free(servers, conn, tmp_path):
    work = _table(conn, tmp_path, "cost_after_kill")
    key = work.rows["row_key"][0]
    # The killed run paid $0.01 and recorded it in the ledger, then died before landing anything.
    Ledger(servers.database_url, run_id="killed-run", table_id=work.table_id).record(
        "search", "1", [Call("h1", key, "https://acme.example", "filled", 0.01, b"{}")]
    )
    # The re-run is served that answer free from the cache (cost 0) and pays $0.02 for another call.
    cached = Attempt(key, (Found("company_name", "Acme", 80, "snippet"),), Status.FILLED, 0.0, cached=True)
    fresh = Attempt(key, (Found("company_city", "Leeds", 80, "snippet"),), Status.FILLED, 0.02)
    Ledger(servers.database_url, run_id="re-run", table_id=work.table_id).record(
        "search", "1", [Call("h2", key, "https://acme.example", "filled", 0.02, b"{}")]
    )
    _land(conn, work, attempts_to_frame([cached, fresh], "search"))
    (cost,) = conn.execute(
        "SELECT cost_usd::float8 FROM glaze.records WHERE table_id = %s AND row_key = %s", (work.table_id, key)
    ).fetchone()
    assert cost == 0.03  # not the $0.02 this run's candidates carry
