"""The `glaze` commands users type, run through click against the test servers."""

import json

import polars as pl
import psycopg
import pytest
from click.testing import CliRunner

from glaze_pipeline.cli import main
from glaze_pipeline.sandbox.sites import DEMO_SITES, SiteServer, demo_hosts, directory_pages
from glaze_pipeline_tests.helpers import write_table


@pytest.fixture
def runner(servers, fresh_cache) -> CliRunner:
    return CliRunner()


def test_upload_reports_counts_and_a_clear_error_for_bad_files(runner, tmp_path):
    good = write_table(tmp_path / "Leads Q3.csv", ["acme.com", "acme.com/", "ftp://x.org", "globex.com"])
    result = runner.invoke(main, ["upload", str(good), "--fields", "company_name,company_email"])
    assert result.exit_code == 0, result.output
    assert "4 rows in = 2 accepted + 1 rejected + 1 duplicates" in result.output
    assert "leads_q3" in result.output

    empty = tmp_path / "empty.csv"
    empty.write_text("")
    bad = runner.invoke(main, ["upload", str(empty)])
    assert bad.exit_code == 2
    assert "empty" in bad.output.lower()

    unknown = runner.invoke(main, ["upload", str(good), "--fields", "company_nmae"])
    assert unknown.exit_code == 2
    assert "unknown field(s): company_nmae" in unknown.output


@pytest.mark.slow
def test_enrich_then_export_gives_the_users_table_back(runner, tmp_path, monkeypatch):
    hosts = demo_hosts()[:3]
    urls = [f"https://{h}" for h in hosts] + [f"https://{hosts[0]}"]
    source = write_table(tmp_path / "export_me.csv", urls, {"note": ["=HYPERLINK(1)", "plain", "+1", "dup"]})
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    with SiteServer(directory_pages(DEMO_SITES)) as site:
        monkeypatch.setenv("GLAZE_RESOLVE", site.resolve_spec(hosts))
        result = runner.invoke(main, ["enrich", str(source), "--fields", "company_name,company_email"])
    assert result.exit_code == 0, result.output
    assert "company_name" in result.output and "export_me" in result.output

    out_csv = tmp_path / "out.csv"
    exported = runner.invoke(main, ["export", "export_me", "--format", "csv", "-o", str(out_csv)])
    assert exported.exit_code == 0, exported.output
    frame = pl.read_csv(out_csv, infer_schema=False)
    assert frame.columns == [
        *("website", "note", "company_name", "company_name_confidence"),
        *("company_email", "company_email_confidence", "glaze_status"),
    ]
    assert all(int(c) >= 70 for c in frame["company_name_confidence"].to_list())  # landed values only here
    assert frame["website"].to_list() == urls
    assert frame["note"].to_list() == ["'=HYPERLINK(1)", "plain", "+1", "dup"]  # formulas defused, numbers kept
    assert frame["company_name"][3] == frame["company_name"][0]

    status = runner.invoke(main, ["status", "export_me"])
    assert status.exit_code == 0, status.output
    assert "company_email" in status.output and "cost by provider (the ledger)" in status.output
    assert "entities 3: filled 3" in status.output

    out_parquet = tmp_path / "out.parquet"
    assert runner.invoke(main, ["export", "export_me", "--format", "parquet", "-o", str(out_parquet)]).exit_code == 0
    assert pl.read_parquet(out_parquet)["note"][0] == "=HYPERLINK(1)"  # Parquet keeps values as they are

    # `glaze enrich` refreshed the marts through Dagster (no daemon here); `glaze sql -o` writes a query's result.
    assert "marts refreshed" in result.output
    query = "SELECT normalized_url, name, table_ids FROM glaze_marts.companies WHERE table_ids LIKE '%export_me%'"
    for name in ("companies.csv", "companies.parquet"):
        written = runner.invoke(main, ["sql", query + " ORDER BY 1", "-o", str(tmp_path / name)])
        assert written.exit_code == 0, written.output
        assert "wrote 3 rows × 3 columns" in written.output
    from_csv = pl.read_csv(tmp_path / "companies.csv")
    assert from_csv["normalized_url"].to_list() == sorted(f"https://{h}" for h in hosts)
    assert pl.read_parquet(tmp_path / "companies.parquet").equals(from_csv)
    wrong = runner.invoke(main, ["sql", query, "-o", str(tmp_path / "companies.xlsx")])
    assert wrong.exit_code == 2 and "name a .csv or .parquet file" in wrong.output


def test_sql_is_read_only(runner):
    ok = runner.invoke(main, ["sql", "SELECT count(*) AS n FROM glaze.tables"])
    assert ok.exit_code == 0, ok.output
    assert " n " in ok.output or "┃ n" in ok.output
    refused = runner.invoke(main, ["sql", "DELETE FROM glaze.tables"])
    assert refused.exit_code == 2
    assert "read-only" in refused.output


def test_unknown_table_is_a_clear_error(runner, tmp_path):
    result = runner.invoke(main, ["export", "no_such_table", "-o", str(tmp_path / "x.csv")])
    assert result.exit_code == 2
    assert "no table 'no_such_table'" in result.output


@pytest.mark.slow
def test_enrich_an_uploaded_table_again_for_other_fields(runner, tmp_path, monkeypatch):
    host = demo_hosts()[0]
    source = write_table(tmp_path / "rerun_me.csv", [f"https://{host}"])
    assert runner.invoke(main, ["upload", str(source), "--fields", "company_name"]).exit_code == 0
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    with SiteServer(directory_pages(DEMO_SITES)) as site:
        monkeypatch.setenv("GLAZE_RESOLVE", site.resolve_spec([host]))
        result = runner.invoke(main, ["enrich", "rerun_me", "--fields", "company_name,company_email", "--no-marts"])
    assert result.exit_code == 0, result.output
    out_csv = tmp_path / "rerun.csv"
    assert runner.invoke(main, ["export", "rerun_me", "-o", str(out_csv)]).exit_code == 0
    frame = pl.read_csv(out_csv, infer_schema=False)
    expected = json.loads((DEMO_SITES / "expected.json").read_text())[host]["company_email"]
    assert frame["company_email"][0] == expected


# --- glaze extract: no servers, so no `runner` fixture ------------------------------------------------


def _extract_json(args: list[str]) -> tuple[int, list[dict[str, object]], str]:
    result = CliRunner().invoke(main, ["extract", *args, "--json"])  # click 8.2+ keeps stderr apart
    return result.exit_code, json.loads(result.stdout), result.stderr


def test_extract_prints_only_a_json_array_of_candidates(tmp_path):
    home = tmp_path / "home.html"
    home.write_text(
        '<title>Acme Widgets | Home</title><a href="mailto:hello@acmewidgets.example">mail</a>', encoding="utf-8"
    )
    contact = tmp_path / "contact.html"
    contact.write_text("<p>Phone: +44 20 7946 0958</p>", encoding="utf-8")
    code, rows, _ = _extract_json([str(home), str(contact), "--url", "https://acmewidgets.example/"])
    assert code == 0
    assert {(r["field"], r["value"]) for r in rows} >= {
        ("company_name", "Acme Widgets"),
        ("company_email", "hello@acmewidgets.example"),
        ("company_phone", "+442079460958"),
    }
    assert all(
        set(r) == {"field", "value", "confidence", "evidence", "reason"} and isinstance(r["confidence"], int)
        for r in rows
    )
    phone = next(r for r in rows if r["field"] == "company_phone")
    assert phone["evidence"] == "phone in text @ https://acmewidgets.example/contact"


def test_extract_with_nothing_found_is_an_empty_array(tmp_path):
    page = tmp_path / "blank.html"
    page.write_bytes(b"<html><body><p>Under construction</p></body></html>")
    assert _extract_json([str(page), "--url", "https://blank.example/"])[:2] == (0, [])


def test_extract_works_on_a_corpus_page(shared_corpus):
    page = shared_corpus / "caltronind-com" / "contact.html"
    code, rows, _ = _extract_json([str(page), "--url", "http://www.caltronind.com/contact"])
    assert code == 0
    assert ("company_email", "sales@caltronind.com") in {(r["field"], r["value"]) for r in rows}


def test_glaze_dbt_reaches_the_pipelines_own_database(runner, servers, tmp_path, capfd):
    """`glaze dbt` fills dbt's profile from GLAZE_DATABASE_URL: `dbt debug` connects to the test's own database."""
    result = runner.invoke(main, ["dbt", "debug", "--no-use-colors", "--log-path", str(tmp_path)])
    printed = capfd.readouterr().out  # dbt is a child process: it writes to the real stdout
    assert result.exit_code == 0, printed
    assert "Connection test: [OK connection ok]" in printed
    assert f"database: {psycopg.conninfo.conninfo_to_dict(servers.database_url)['dbname']}" in printed
