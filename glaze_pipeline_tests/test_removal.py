"""`glaze delete` and `glaze purge` on tables the real job enriched: afterwards, no trace anywhere.

"Anywhere" is every column of every table and view glaze and its SQL marts hold (schemas glaze,
glaze_staging, glaze_marts), every key and value under the test's Redis prefix, and every stage file;
the ledger keeps its cost rows (money truth) and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
import redis
from click.testing import CliRunner
from psycopg import sql

from glaze_pipeline.cli import main
from glaze_pipeline.config import settings
from glaze_pipeline.core.intake.tables import TableStatus, table_info
from glaze_pipeline.core.intake.uploads import upload_file
from glaze_pipeline.core.model.urls import parse_entity
from glaze_pipeline.runner import dagster_instance, partition_runs, run_table
from glaze_pipeline.sandbox.apis import ApiSimulator
from glaze_pipeline.sandbox.sites import DEMO_SITES, SiteServer, demo_hosts, directory_pages
from glaze_pipeline_tests.helpers import write_table

pytestmark = pytest.mark.slow  # runs the whole table job twice

FIELDS = ["company_name", "company_email", "company_employee_range"]  # the last one only LinkedIn (paid) fills
SUFFIX = "-erased.example"  # the demo sites under names no other test uses: "no trace" means no trace at all


def hosts_of_this_test() -> list[str]:
    return [h.removesuffix(".example") + SUFFIX for h in demo_hosts()]


def demo_pages_under_own_names(host: str, path: str) -> bytes | None:
    return directory_pages(DEMO_SITES)(host.removesuffix(SUFFIX) + ".example", path)


@pytest.fixture
def two_tables(servers, conn, fresh_cache, fresh_ledger, tmp_path, monkeypatch) -> Iterator[tuple[str, str]]:
    """Table one holds hosts 0, 1, 2; table two holds hosts 1 and 3: host 1 is shared."""
    hosts = hosts_of_this_test()
    with SiteServer(demo_pages_under_own_names) as site, ApiSimulator("linkedin") as linkedin:
        for name, value in linkedin.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("GLAZE_LINKEDIN_RATE_PER_S", "100")
        monkeypatch.setenv("GLAZE_RESOLVE", site.resolve_spec(hosts))
        ids = []
        for name, picked in (("erase_first", [0, 1, 2]), ("erase_second", [1, 3])):
            path = write_table(tmp_path / f"{name}.csv", [f"https://{hosts[i]}" for i in picked])
            ids.append(upload_file(conn, path, fields=FIELDS, status=TableStatus.RUNNING).table_id)
            conn.commit()
            assert run_table(ids[-1], dagster_instance(settings())).success
        yield ids[0], ids[1]


def traces(conn, needle: str) -> list[str]:
    """Every column whose text holds `needle`, as schema.table.column (count)."""
    columns = conn.execute(
        "SELECT table_schema, table_name, column_name FROM information_schema.columns"
        " WHERE table_schema IN ('glaze', 'glaze_staging', 'glaze_marts')"
    ).fetchall()
    found = []
    for schema, table, column in columns:
        query = sql.SQL("SELECT count(*) FROM {} WHERE strpos({}::text, %s) > 0").format(
            sql.Identifier(schema, table), sql.Identifier(column)
        )
        (n,) = conn.execute(query, (needle,)).fetchone()
        if n:
            found.append(f"{schema}.{table}.{column} ({n})")
    conn.rollback()  # read locks held open would stall dbt rebuilding the marts
    return found


def redis_traces(servers, prefix: str, needle: str) -> list[str]:
    client = redis.Redis.from_url(servers.redis_url)
    found = []
    for key in client.scan_iter(match=prefix + "*", count=1000):
        value = client.get(key) if client.type(key) == b"string" else b""
        if needle.encode() in key or needle.encode() in (value or b""):
            found.append(key.decode())
    return found


def stage_traces(home: Path, needle: str) -> list[str]:
    found = []
    for path in home.glob("stages/*/*.parquet"):
        frame = pl.read_parquet(path).select(pl.all().cast(pl.String))
        holds = pl.any_horizontal(pl.all().str.contains(needle, literal=True)).fill_null(False)
        hits = frame.select(holds.sum()).item()
        if needle in path.name or hits:
            found.append(str(path))
    return found


def cache_keys(servers, prefix: str) -> set[str]:
    return {k.decode() for k in redis.Redis.from_url(servers.redis_url).scan_iter(match=prefix + "cache:*")}


def ledger(conn) -> tuple[int, float]:
    n, cost = conn.execute("SELECT count(*), coalesce(sum(cost_usd), 0) FROM glaze.provider_calls").fetchone()
    conn.rollback()
    return n, float(cost)


def test_delete_removes_a_table_everywhere_and_keeps_what_others_share(servers, conn, two_tables, fresh_cache):
    first, second = two_tables
    hosts = hosts_of_this_test()
    calls_before = ledger(conn)
    keys_before = cache_keys(servers, fresh_cache)
    assert calls_before[0] > 0 and traces(conn, first)

    result = CliRunner().invoke(main, ["delete", first, "--yes", "--no-marts"])
    assert result.exit_code == 0, result.output
    assert "glaze.records: 3" in result.output and "stage files: 6" in result.output

    assert traces(conn, first) == []
    assert stage_traces(servers.home, first) == []
    assert ledger(conn) == calls_before  # what was paid stays on the books
    only_first = [hosts[0], hosts[2]]
    for host in only_first:
        assert traces(conn, host) == [] and redis_traces(servers, fresh_cache, host) == []
    gone = keys_before - cache_keys(servers, fresh_cache)
    assert len(gone) == 4  # website and LinkedIn answers of the two hosts only this table held
    assert int(conn.execute("SELECT count(*) FROM glaze.records WHERE table_id = %s", (second,)).fetchone()[0]) == 2
    assert redis_traces(servers, fresh_cache, hosts[1])  # the shared host's answers serve the other table
    instance = dagster_instance(settings())
    assert not instance.has_dynamic_partition("tables", first) and partition_runs(instance, first) == []
    assert CliRunner().invoke(main, ["status", first]).exit_code == 2  # gone: a clear error, no traceback


def test_purge_removes_one_company_from_every_table_the_cache_and_the_ledgers_answers(
    servers, conn, two_tables, fresh_cache
):
    first, second = two_tables
    shared = hosts_of_this_test()[1]
    row_key = parse_entity(f"https://{shared}").row_key
    assert CliRunner().invoke(main, ["dbt", "build"]).exit_code == 0  # the marts hold the company too
    calls_before = ledger(conn)
    assert traces(conn, shared) and traces(conn, row_key) and redis_traces(servers, fresh_cache, shared)
    assert [t for t in traces(conn, shared) if t.startswith("glaze_marts.")]
    (held,) = conn.execute("SELECT count(*) FROM glaze.records WHERE row_key = %s", (row_key,)).fetchone()
    conn.rollback()
    assert held >= 2  # both tables of this test (and the earlier test's second table)

    result = CliRunner().invoke(main, ["purge", "--entity", f"https://{shared}/", "--yes"])
    assert result.exit_code == 0, result.output
    assert f"glaze.records: {held}" in result.output and "glaze.provider_calls answers blanked: 1" in result.output
    assert "marts refreshed" in result.output

    for needle in (shared, row_key):
        assert traces(conn, needle) == []
        assert redis_traces(servers, fresh_cache, needle) == []
        assert stage_traces(servers.home, needle) == []
    assert ledger(conn) == calls_before  # the call still cost what it cost
    for table_id, left in ((first, 2), (second, 1)):
        info = table_info(conn, table_id)
        assert (info.rows_in, info.accepted) == (left, left)
        assert conn.execute("SELECT count(*) FROM glaze.records WHERE table_id = %s", (table_id,)).fetchone()[0] == left

    again = CliRunner().invoke(main, ["purge", "--entity", "not a url at all", "--yes"])
    assert again.exit_code == 2 and "is not a URL glaze could have stored" in again.output
