"""Reading uploads: formats, encodings, URL column detection, row outcomes and counts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest

from glaze_pipeline.core.intake.ingest import (
    ROWS_SCHEMA,
    UploadCounts,
    UploadError,
    detect_url_column,
    read_upload,
    table_slug,
)
from glaze_pipeline.core.model.urls import parse_entity


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


# --- table_slug ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Leads", "leads"),
        ("My Leads (2)", "my_leads_2"),
        ("  --Q3 leads--  ", "q3_leads"),
        ("2024 leads", "t_2024_leads"),
        ("_private", "private"),
        ("Bäckereien München", "backereien_munchen"),
        ("", "table"),
        ("!!!", "table"),
        ("a" * 100, "a" * 63),
    ],
)
def test_table_slug(name: str, slug: str) -> None:
    assert table_slug(name) == slug


def test_table_slug_always_matches_the_table_id_pattern() -> None:
    for name in ["x" * 62 + "-y", "9" * 80, "über/../etc", "Ünïcödé ☃ sheet"]:
        assert re.fullmatch(r"[a-z][a-z0-9_]{0,62}", table_slug(name)), name


# --- delimiters and encodings ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("comma.csv", "name,url\nAcme,acme.com\nGlobex,globex.com\n"),
        ("semicolon.csv", "name;url\nAcme;acme.com\nGlobex;globex.com\n"),
        ("tab.tsv", "name\turl\nAcme\tacme.com\nGlobex\tglobex.com\n"),
        ("tab.txt", "name\turl\nAcme\tacme.com\nGlobex\tglobex.com\n"),
        ("pipe.csv", "name|url\nAcme|acme.com\nGlobex|globex.com\n"),
        ("crlf.csv", "name,url\r\nAcme,acme.com\r\nGlobex,globex.com\r\n"),
    ],
)
def test_delimiter_is_sniffed(tmp_path: Path, name: str, content: str) -> None:
    parsed = read_upload(write(tmp_path, name, content))
    assert parsed.columns == ["name", "url"]
    assert parsed.rows.get_column("normalized_url").to_list() == ["https://acme.com", "https://globex.com"]


def test_semicolon_file_with_decimal_commas(tmp_path: Path) -> None:
    parsed = read_upload(write(tmp_path, "eu.csv", "name;url;price\nAcme;acme.com;1,50\nGlobex;globex.com;2,75\n"))
    assert parsed.columns == ["name", "url", "price"]
    assert json.loads(parsed.rows.item(1, "original"))["price"] == "2,75"


def test_single_column_file_keeps_commas_inside_urls(tmp_path: Path) -> None:
    parsed = read_upload(write(tmp_path, "one.csv", "url\nhttps://acme.com/p?ids=1,2\nglobex.com\n"))
    assert parsed.columns == ["url"]
    assert parsed.rows.get_column("normalized_url").to_list() == [
        "https://acme.com/p?ids=1,2",
        "https://globex.com",
    ]


def test_comma_inside_quotes_does_not_split(tmp_path: Path) -> None:
    parsed = read_upload(write(tmp_path, "q.csv", 'name,url\n"Acme, Inc.",acme.com\n'))
    assert json.loads(parsed.rows.item(0, "original")) == {"name": "Acme, Inc.", "url": "acme.com"}


def test_utf8_bom_is_not_part_of_the_first_column_name(tmp_path: Path) -> None:
    parsed = read_upload(write(tmp_path, "bom.csv", b"\xef\xbb\xbfurl,name\nacme.com,Caf\xc3\xa9\n"))
    assert parsed.columns == ["url", "name"]
    assert parsed.url_column == "url"
    assert json.loads(parsed.rows.item(0, "original")) == {"url": "acme.com", "name": "Café"}


def test_utf16_with_bom_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, "u16.csv", "url,name\nacme.com,Café\n".encode("utf-16"))
    parsed = read_upload(path)
    assert json.loads(parsed.rows.item(0, "original")) == {"url": "acme.com", "name": "Café"}


def test_latin1_file_is_refused_with_offset_and_advice(tmp_path: Path) -> None:
    path = write(tmp_path, "latin.csv", "url,name\nacme.com,Café\n".encode("latin-1"))
    with pytest.raises(UploadError) as caught:
        read_upload(path)
    message = str(caught.value)
    assert "byte offset 21" in message  # "url,name\nacme.com,Caf" is 21 bytes
    assert "save the file as UTF-8" in message


def test_invalid_utf8_far_into_the_file_reports_its_offset(tmp_path: Path) -> None:
    body = b"url\n" + b"acme.com\n" * 200_000 + b"caf\xe9.com\n"
    with pytest.raises(UploadError, match=rf"byte offset {len(body) - 6}\b"):
        read_upload(write(tmp_path, "late.csv", body))


def test_nul_bytes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UploadError, match="NUL byte at byte offset 4"):
        read_upload(write(tmp_path, "nul.csv", b"url\n\x00acme.com\n"))


# --- empty and malformed files -------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"  \n\n", b"\xef\xbb\xbf"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    with pytest.raises(UploadError, match=r"empty\.csv is empty"):
        read_upload(write(tmp_path, "empty.csv", content))


@pytest.mark.parametrize("content", ["url,name\n", "url,name", "url,name\n\n\n"])
def test_header_only(tmp_path: Path, content: str) -> None:
    with pytest.raises(UploadError, match=r"head\.csv is empty: it has a header row but no data rows"):
        read_upload(write(tmp_path, "head.csv", content))


def test_duplicate_header_is_named(tmp_path: Path) -> None:
    with pytest.raises(UploadError, match=r"duplicate column name\(s\) 'url'"):
        read_upload(write(tmp_path, "dup.csv", "url,name,url\nacme.com,Acme,x\n"))


def test_blank_header_is_named_by_position(tmp_path: Path) -> None:
    with pytest.raises(UploadError, match=r"column\(s\) 3 have no name"):
        read_upload(write(tmp_path, "blank.csv", "url,name,\nacme.com,Acme,x\n"))


def test_row_with_too_many_fields_is_pointed_at(tmp_path: Path) -> None:
    with pytest.raises(UploadError, match="row 2 has 3 fields but the header has 2"):
        read_upload(write(tmp_path, "ragged.csv", "url,name\nacme.com,Acme\nglobex.com,Globex,extra\n"))


@pytest.mark.parametrize("name", ["leads.xlsx", "leads.json", "leads"])
def test_unsupported_format(tmp_path: Path, name: str) -> None:
    with pytest.raises(UploadError, match="unsupported file type"):
        read_upload(write(tmp_path, name, "url\nacme.com\n"))


def test_corrupt_parquet(tmp_path: Path) -> None:
    with pytest.raises(UploadError, match="could not be read as Parquet"):
        read_upload(write(tmp_path, "bad.parquet", b"not parquet at all"))


# --- URL column ----------------------------------------------------------------------------------


def test_given_url_column_missing_lists_available_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "name,homepage\nAcme,acme.com\n")
    with pytest.raises(UploadError) as caught:
        read_upload(path, url_column="website")
    assert "'website' is not in a.csv" in str(caught.value)
    assert "available columns: 'name', 'homepage'" in str(caught.value)


def test_given_url_column_wins_over_detection(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "url,backup\nacme.com,globex.com\n")
    parsed = read_upload(path, url_column="backup")
    assert parsed.url_column == "backup"
    assert parsed.rows.item(0, "normalized_url") == "https://globex.com"


def test_given_url_column_matches_case_and_space_insensitively(tmp_path: Path) -> None:
    parsed = read_upload(write(tmp_path, "a.csv", "Name, Website \nAcme,acme.com\n"), url_column="website")
    assert parsed.url_column == " Website "


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (["name", "URL"], "URL"),
        (["Company Website", "name"], "Company Website"),
        (["notes", "LinkedIn URL"], "LinkedIn URL"),
        # priority: "website" beats "link" regardless of column order
        (["link", "website"], "website"),
        (["Domain ", "site"], "Domain "),
    ],
)
def test_url_column_detected_by_name(header: list[str], expected: str) -> None:
    sample = pl.DataFrame({name: ["x"] for name in header})
    assert detect_url_column(header, sample) == expected


def test_url_column_detected_by_content(tmp_path: Path) -> None:
    content = "name,notes,where\nAcme,call back,acme.com\nGlobex,n/a,www.globex.com\nInitech,x,initech.io\n"
    parsed = read_upload(write(tmp_path, "c.csv", content))
    assert parsed.url_column == "where"
    assert parsed.counts.accepted == 3


def test_content_detection_picks_the_column_with_most_urls() -> None:
    sample = pl.DataFrame(
        {
            "a": ["acme.com", "nope", None, None],
            "b": ["acme.com", "globex.com", "initech.io", "bad value"],
        }
    )
    assert detect_url_column(["a", "b"], sample) == "b"


def test_content_detection_needs_a_majority() -> None:
    sample = pl.DataFrame({"a": ["acme.com", "not one", "nor this"], "b": ["x", "y", "z"]})
    with pytest.raises(UploadError, match=r"no URL column found among columns 'a', 'b'"):
        detect_url_column(["a", "b"], sample)


def test_no_detectable_url_column(tmp_path: Path) -> None:
    path = write(tmp_path, "n.csv", "name,city\nAcme,Berlin\nGlobex,Paris\n")
    with pytest.raises(UploadError) as caught:
        read_upload(path)
    assert "no URL column found among columns 'name', 'city'" in str(caught.value)
    assert "name the column 'url'" in str(caught.value)


def test_file_without_header_row_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UploadError, match="first row looks like data"):
        read_upload(write(tmp_path, "h.csv", "acme.com\nglobex.com\ninitech.io\n"))


# --- rows, outcomes and counts -------------------------------------------------------------------

MIXED = (
    "company,url\n"
    "Acme,acme.com\n"  # 1 accepted
    "Acme again,https://www.ACME.com/\n"  # 2 duplicate of 1
    "Nothing,\n"  # 3 rejected: empty
    "Garbage,foo bar\n"  # 4 rejected
    "FTP,ftp://files.acme.com\n"  # 5 rejected
    "Jane,linkedin.com/in/jane-doe\n"  # 6 accepted
    "Acme EN,acme.com/en\n"  # 7 duplicate of 1
    "Jane DE,https://de.linkedin.com/in/Jane-Doe/\n"  # 8 duplicate of 6
    "Globex,globex.com\n"  # 9 accepted
)


def test_counts_identity_and_numbers(tmp_path: Path) -> None:
    parsed = read_upload(write(tmp_path, "mixed.csv", MIXED))
    assert parsed.counts == UploadCounts(rows_in=9, accepted=3, rejected=3, duplicates=3)
    c = parsed.counts
    assert c.rows_in == c.accepted + c.rejected + c.duplicates == parsed.rows.height


def test_rows_schema_and_file_order(tmp_path: Path) -> None:
    rows = read_upload(write(tmp_path, "mixed.csv", MIXED)).rows
    assert dict(rows.schema) == ROWS_SCHEMA
    assert rows.get_column("row_number").to_list() == list(range(1, 10))
    assert rows.get_column("outcome").to_list() == [
        "accepted",
        "duplicate",
        "rejected",
        "rejected",
        "rejected",
        "accepted",
        "duplicate",
        "duplicate",
        "accepted",
    ]


def test_rejected_rows_carry_reasons(tmp_path: Path) -> None:
    rows = read_upload(write(tmp_path, "mixed.csv", MIXED)).rows
    rejected = rows.filter(pl.col("outcome") == "rejected")
    assert rejected.select("row_number", "input_url", "reason").rows() == [
        (3, "", "empty URL"),
        (4, "foo bar", "not a URL: 'foo bar'"),
        (5, "ftp://files.acme.com", "unsupported scheme 'ftp'"),
    ]
    assert rejected.select(pl.col("row_key", "normalized_url", "entity_type").is_null().all()).row(0) == (
        True,
        True,
        True,
    )


def test_duplicates_reference_first_row_and_keep_row_key(tmp_path: Path) -> None:
    rows = read_upload(write(tmp_path, "mixed.csv", MIXED)).rows
    by_number = {r["row_number"]: r for r in rows.iter_rows(named=True)}
    assert by_number[2]["reason"] == "duplicate of row 1"
    assert by_number[7]["reason"] == "duplicate of row 1"
    assert by_number[8]["reason"] == "duplicate of row 6"
    assert by_number[2]["row_key"] == by_number[1]["row_key"] == parse_entity("acme.com").row_key
    assert by_number[8]["row_key"] == by_number[6]["row_key"]
    assert by_number[1]["reason"] is None
    assert by_number[7]["normalized_url"] == "https://acme.com/en"


def test_entity_types_are_recorded(tmp_path: Path) -> None:
    rows = read_upload(write(tmp_path, "mixed.csv", MIXED)).rows
    accepted = rows.filter(pl.col("outcome") == "accepted")
    assert accepted.select("normalized_url", "entity_type").rows() == [
        ("https://acme.com", "company_website"),
        ("https://www.linkedin.com/in/jane-doe", "linkedin_person"),
        ("https://globex.com", "company_website"),
    ]


def test_input_url_is_stripped_but_otherwise_as_given(tmp_path: Path) -> None:
    rows = read_upload(write(tmp_path, "s.csv", 'url\n"  https://WWW.Acme.com/?utm_source=x  "\n')).rows
    assert rows.item(0, "input_url") == "https://WWW.Acme.com/?utm_source=x"
    assert rows.item(0, "normalized_url") == "https://acme.com"


def test_blank_lines_are_not_rows(tmp_path: Path) -> None:
    parsed = read_upload(write(tmp_path, "b.csv", "url,name\nacme.com,Acme\n\n\nglobex.com,Globex\n\n"))
    assert parsed.counts == UploadCounts(rows_in=2, accepted=2, rejected=0, duplicates=0)
    assert parsed.rows.get_column("row_number").to_list() == [1, 2]


def test_original_columns_round_trip_exactly_in_order(tmp_path: Path) -> None:
    content = 'Zip,url, Notes ,"A ""quoted"" col",phone\n01234,acme.com,"line one\nline two",,+49 030 1234\n'
    parsed = read_upload(write(tmp_path, "o.csv", content))
    assert parsed.columns == ["Zip", "url", " Notes ", 'A "quoted" col', "phone"]
    original = parsed.rows.item(0, "original")
    decoded = json.loads(original)
    assert list(decoded) == parsed.columns
    assert decoded == {
        "Zip": "01234",
        "url": "acme.com",
        " Notes ": "line one\nline two",
        'A "quoted" col': None,
        "phone": "+49 030 1234",
    }


def test_leading_zeros_and_numbers_stay_text(tmp_path: Path) -> None:
    content = "url,zip,phone,amount\nacme.com,00501,0049301234,1.50\nglobex.com,02134,007,1e3\n"
    parsed = read_upload(write(tmp_path, "z.csv", content))
    values = [json.loads(o) for o in parsed.rows.get_column("original")]
    assert [v["zip"] for v in values] == ["00501", "02134"]
    assert [v["phone"] for v in values] == ["0049301234", "007"]
    assert [v["amount"] for v in values] == ["1.50", "1e3"]


def test_column_names_that_look_like_polars_patterns(tmp_path: Path) -> None:
    parsed = read_upload(write(tmp_path, "p.csv", "url,*,^a$\nacme.com,star,regex\n"))
    assert json.loads(parsed.rows.item(0, "original")) == {"url": "acme.com", "*": "star", "^a$": "regex"}


# --- hints, table name, parquet ------------------------------------------------------------------


def test_hint_fields_match_catalog_names_case_insensitively(tmp_path: Path) -> None:
    content = "url,Company_Name ,company_city,industry,PERSON_TITLE\nacme.com,Acme,Berlin,Tools,CEO\n"
    parsed = read_upload(write(tmp_path, "h.csv", content))
    assert parsed.hint_fields == ["Company_Name ", "company_city", "PERSON_TITLE"]


def test_hint_fields_list_one_column_per_field(tmp_path: Path) -> None:
    parsed = read_upload(write(tmp_path, "h.csv", "url,company_name,Company_Name\nacme.com,Acme,ACME\n"))
    assert parsed.hint_fields == ["company_name"]


def test_no_hint_fields(tmp_path: Path) -> None:
    assert read_upload(write(tmp_path, "h.csv", "url,name\nacme.com,Acme\n")).hint_fields == []


def test_table_name_from_file_stem_or_given_name(tmp_path: Path) -> None:
    path = write(tmp_path, "Q3 Leads (final).csv", "url\nacme.com\n")
    assert read_upload(path).table_name == "q3_leads_final"
    assert read_upload(path, name="2025 Prospects").table_name == "t_2025_prospects"


def test_parquet_input_is_read_as_text(tmp_path: Path) -> None:
    path = tmp_path / "leads.parquet"
    pl.DataFrame(
        {
            "Website": ["acme.com", "https://www.acme.com", None, "globex.com"],
            "employees": [10, 20, None, 40],
            "company_name": ["Acme", "Acme", "Nobody", "Globex"],
        }
    ).write_parquet(path)
    parsed = read_upload(path)
    assert parsed.url_column == "Website"
    assert parsed.columns == ["Website", "employees", "company_name"]
    assert parsed.hint_fields == ["company_name"]
    assert parsed.counts == UploadCounts(rows_in=4, accepted=2, rejected=1, duplicates=1)
    assert json.loads(parsed.rows.item(0, "original")) == {
        "Website": "acme.com",
        "employees": "10",
        "company_name": "Acme",
    }
    assert parsed.rows.item(2, "reason") == "empty URL"
    assert parsed.table_name == "leads"


def test_parquet_with_nested_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nested.parquet"
    pl.DataFrame({"url": ["acme.com"], "tags": [["a", "b"]]}).write_parquet(path)
    with pytest.raises(UploadError, match="columns 'tags' hold lists or structs"):
        read_upload(path)


def test_same_url_repeated_many_times_is_parsed_into_one_accepted_row(tmp_path: Path) -> None:
    body = "url\n" + "acme.com\n" * 5000 + "globex.com\n"
    parsed = read_upload(write(tmp_path, "many.csv", body))
    assert parsed.counts == UploadCounts(rows_in=5001, accepted=2, rejected=0, duplicates=4999)
    assert parsed.rows.item(5000, "outcome") == "accepted"
    assert parsed.rows.item(4999, "reason") == "duplicate of row 1"


def test_large_upload_keeps_file_order_and_row_alignment(tmp_path: Path) -> None:
    # More distinct URLs than one parse chunk, so chunked parsing and the join back are exercised.
    n = 130_000
    body = "url,id\n" + "".join(f"site{i % 110_000}.com,{i}\n" for i in range(n))
    rows = read_upload(write(tmp_path, "big.csv", body)).rows
    assert rows.get_column("row_number").to_list() == list(range(1, n + 1))
    originals = rows.select(pl.col("original").str.json_decode(pl.Struct({"url": pl.String, "id": pl.String})))
    ids = originals.get_column("original").struct.field("id").cast(pl.Int64)
    assert ids.to_list() == list(range(n))
    urls = originals.get_column("original").struct.field("url")
    assert (urls == rows.get_column("input_url")).all()
    assert rows.filter(pl.col("outcome") == "duplicate").height == n - 110_000
    assert rows.item(n - 1, "reason") == f"duplicate of row {(n - 1) % 110_000 + 1}"
