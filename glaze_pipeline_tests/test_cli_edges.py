"""Careless hands at the CLI's edge: every mistake gets one sentence and exit code 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from glaze_pipeline.cli import main
from glaze_pipeline.core.intake.tables import list_tables
from glaze_pipeline.core.storage.readonly import ROLE_SQL
from glaze_pipeline_tests.helpers import closed_port, demo_urls, write_table


@pytest.fixture
def runner(servers, fresh_cache) -> CliRunner:
    return CliRunner()


def refused(result, *words: str) -> str:
    """The run ended with exit code 2 and one sentence that contains `words`; no traceback anywhere."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit), result.exception  # click's exit, not an escaped error
    message = result.output.strip()
    assert message.startswith("Error: "), message
    for word in words:
        assert word in message, message
    return message


def _table_count(conn) -> int:
    count = len(list_tables(conn))
    conn.rollback()
    return count


# --- glaze sql ---------------------------------------------------------------------------------------


def test_sql_prints_json_as_json_and_says_when_rows_were_cut(runner):
    result = runner.invoke(
        main, ["sql", """SELECT '{"a": [1, "é"]}'::jsonb AS doc, generate_series(1, 5) AS n""", "--limit", "3"]
    )
    assert result.exit_code == 0, result.output
    assert '{"a": [1, "é"]}' in result.output  # JSON, not a Python dict
    assert "{'a'" not in result.output
    assert "more rows: showing the first 3" in result.output


def test_sql_limit_must_be_positive_and_within_the_cap(runner, monkeypatch):
    negative = runner.invoke(main, ["sql", "SELECT 1", "--limit", "-2"])
    assert negative.exit_code == 2 and "-2" in negative.output
    monkeypatch.setenv("GLAZE_SQL_MAX_ROWS", "100")
    refused(runner.invoke(main, ["sql", "SELECT 1", "--limit", "101"]), "GLAZE_SQL_MAX_ROWS")


def test_sql_query_that_is_not_utf8_is_one_sentence(runner):
    refused(runner.invoke(main, ["sql", "SELECT '\udcff'"]), "not valid UTF-8")


def test_sql_refuses_to_write(runner):
    refused(runner.invoke(main, ["sql", "DELETE FROM glaze.tables"]), "read-only")
    refused(runner.invoke(main, ["sql", "SELECT 1; DELETE FROM glaze.tables"]), "one statement")


def test_sql_role_sql_prints_what_an_administrator_runs(runner):
    result = runner.invoke(main, ["sql", "--role-sql"])
    assert result.exit_code == 0
    assert result.output.strip() == ROLE_SQL.strip()


def test_sql_duckdb_refuses_files_outside_the_stages(runner, servers):
    refused(runner.invoke(main, ["sql", "--duckdb", "SELECT * FROM read_csv('/etc/passwd')"]), "SQL error")


def test_debug_shows_the_traceback_behind_the_sentence(runner):
    result = runner.invoke(main, ["--debug", "sql", "DELETE FROM glaze.tables"])
    assert result.exit_code == 2
    assert "Traceback" in result.output and "QueryRefused" in result.output


# --- configuration and servers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("GLAZE_RESOLVE", "acme.example=not-an-ip:80", "GLAZE_RESOLVE"),
        ("GLAZE_RESOLVE", "acme.example", "GLAZE_RESOLVE"),
        ("GLAZE_ALLOW_PRIVATE_NETWORKS", "maybe", "GLAZE_ALLOW_PRIVATE_NETWORKS"),
        ("GLAZE_ALLOW_PRIVATE_NETWORKS", "10.0.0.0/33", "GLAZE_ALLOW_PRIVATE_NETWORKS"),
        ("GLAZE_MAX_CELL_KB", "0", "GLAZE_MAX_CELL_KB"),
        ("GLAZE_MAX_COST_USD", "nan", "GLAZE_MAX_COST_USD"),
        ("GLAZE_MAX_COST_USD", "-1", "GLAZE_MAX_COST_USD"),
        ("GLAZE_MAX_COST_PER_ROW_USD", "inf", "GLAZE_MAX_COST_PER_ROW_USD"),
        ("GLAZE_SEARCH_PRICE_USD", "nan", "GLAZE_SEARCH_PRICE_USD"),
        ("GLAZE_LINKEDIN_PRICE_USD", "-0.01", "GLAZE_LINKEDIN_PRICE_USD"),
    ],
)
def test_bad_configuration_stops_the_command_before_anything_is_queued(
    runner, conn, tmp_path, monkeypatch, variable, value, named
):
    before = _table_count(conn)
    monkeypatch.setenv(variable, value)
    source = write_table(tmp_path / "never_queued.csv", demo_urls())
    refused(runner.invoke(main, ["enrich", str(source)]), named)
    refused(runner.invoke(main, ["upload", str(source)]), named)
    assert _table_count(conn) == before


@pytest.mark.parametrize("flag", ["--max-cost", "--max-cost-per-row"])
@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "-1", "1e999", "ten"])
def test_a_budget_flag_that_is_not_a_finite_amount_is_refused_before_anything_is_stored(
    runner, conn, tmp_path, flag, value
):
    before = _table_count(conn)
    source = write_table(tmp_path / "no_budget.csv", demo_urls())
    refused(runner.invoke(main, ["enrich", str(source), flag, value]), flag, "finite amount of US dollars")
    assert _table_count(conn) == before


def test_unreachable_postgres_is_one_sentence_without_the_password(runner, monkeypatch):
    monkeypatch.setenv("GLAZE_DATABASE_URL", f"postgresql://glaze:s3cret@127.0.0.1:{closed_port()}/glaze")
    message = refused(runner.invoke(main, ["tables"]), "cannot reach PostgreSQL", "GLAZE_DATABASE_URL")
    assert "s3cret" not in message


# --- field lists --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fields", [",,,", "", " , ", "all,company_name"])
def test_a_field_list_naming_nothing_is_refused_and_nothing_is_stored(runner, conn, tmp_path, fields):
    before = _table_count(conn)
    source = write_table(tmp_path / "no_fields.csv", demo_urls())
    refused(runner.invoke(main, ["upload", str(source), "--fields", fields]), "field")
    refused(runner.invoke(main, ["enrich", str(source), "--fields", fields]), "field")
    assert _table_count(conn) == before


def test_fields_all_means_every_field(runner, conn, tmp_path):
    source = write_table(tmp_path / "all_fields.csv", demo_urls())
    result = runner.invoke(main, ["upload", str(source), "--fields", "all"])
    assert result.exit_code == 0, result.output


# --- export --------------------------------------------------------------------------------------------


@pytest.fixture
def uploaded(runner, tmp_path) -> tuple[str, str]:
    source = write_table(tmp_path / "export_edges.csv", demo_urls()[:2])
    result = runner.invoke(main, ["upload", str(source), "--fields", "company_name"])
    assert result.exit_code == 0, result.output
    table_id = result.output.split("→ table ")[1].split()[0]
    return table_id, str(source)


def test_export_to_a_missing_folder_is_one_sentence(runner, uploaded, tmp_path):
    table_id, _ = uploaded
    refused(runner.invoke(main, ["export", table_id, "-o", str(tmp_path / "nowhere" / "out.csv")]), "does not exist")


def test_export_never_overwrites_without_force(runner, uploaded, tmp_path):
    table_id, source = uploaded
    original = Path(source).read_text()
    refused(runner.invoke(main, ["export", table_id, "-o", source]), "uploaded from", "--force")
    assert Path(source).read_text() == original

    existing = tmp_path / "existing.csv"
    existing.write_text("keep me\n")
    refused(runner.invoke(main, ["export", table_id, "-o", str(existing)]), "already exists", "--force")
    assert existing.read_text() == "keep me\n"

    forced = runner.invoke(main, ["export", table_id, "-o", str(existing), "--force"])
    assert forced.exit_code == 0, forced.output
    assert pl.read_csv(existing).columns == ["website", "company_name", "company_name_confidence", "glaze_status"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
