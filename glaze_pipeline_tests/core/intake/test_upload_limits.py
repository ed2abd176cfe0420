"""Upload limits (bytes, rows, cells) refused early with a sentence; Parquet refuses NUL and non-UTF-8 text like CSV;
a header line over 64 KB is read as a header."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from glaze_pipeline.config import UploadLimits
from glaze_pipeline.core.intake.ingest import UploadError, read_upload
from glaze_pipeline.core.intake.tables import list_tables
from glaze_pipeline.core.intake.uploads import upload_file

SMALL = UploadLimits(max_bytes=64 * 1024, max_rows=5, max_cell_bytes=1024)


def test_a_file_over_the_byte_limit_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "big.csv"
    # Invalid UTF-8 too: the size message (not the encoding one) proves the file was never parsed.
    path.write_bytes(b"url\n" + b"\xff" * (SMALL.max_bytes + 1))
    with pytest.raises(UploadError, match=r"above the upload limit of 0\.0625 MB \(GLAZE_MAX_UPLOAD_MB\)"):
        read_upload(path, limits=SMALL)


def test_too_many_rows_are_refused(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("url\n" + "".join(f"site{i}.example\n" for i in range(6)))
    with pytest.raises(UploadError, match=r"6 rows, above the upload limit of 5 \(GLAZE_MAX_UPLOAD_ROWS\)"):
        read_upload(path, limits=SMALL)


def test_a_huge_cell_is_refused_with_where_it_is(tmp_path):
    path = tmp_path / "cell.csv"
    path.write_text("url,notes\nacme.example,ok\nglobex.example," + "x" * 2000 + "\n")
    with pytest.raises(UploadError, match=r"column 'notes', row 2 holds 2 KB, above the cell limit of 1 KB"):
        read_upload(path, limits=SMALL)


def test_a_parquet_row_count_is_read_from_the_footer(tmp_path):
    path = tmp_path / "rows.parquet"
    pl.DataFrame({"url": [f"s{i}.example" for i in range(6)]}).write_parquet(path)
    with pytest.raises(UploadError, match="6 rows, above the upload limit"):
        read_upload(path, limits=SMALL)


def test_a_parquet_that_unpacks_beyond_the_limit_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.parquet"
    pl.DataFrame({"url": ["acme.example"], "blob": ["a" * 200_000]}).write_parquet(path, compression="zstd")
    assert path.stat().st_size < SMALL.max_bytes  # small on disk
    with pytest.raises(UploadError, match="unpacks to"):
        read_upload(path, limits=SMALL)


def test_parquet_with_a_nul_byte_is_refused_like_csv_and_nothing_is_stored(conn, tmp_path):
    path = tmp_path / "nul.parquet"
    pl.DataFrame({"url": ["acme.example", "globex.example"], "name": ["Acme", "Glo\x00bex"]}).write_parquet(path)
    before = len(list_tables(conn))
    with pytest.raises(UploadError, match=r"column 'name', row 2 contains a NUL byte"):
        upload_file(conn, path)
    conn.rollback()
    assert len(list_tables(conn)) == before


def test_parquet_with_a_nul_byte_in_a_column_name_is_refused(tmp_path):
    path = tmp_path / "nul_header.parquet"
    pl.DataFrame({"url": ["acme.example"], "na\x00me": ["Acme"]}).write_parquet(path)
    with pytest.raises(UploadError, match="NUL"):
        read_upload(path)


def test_parquet_binary_that_is_not_utf8_is_refused_with_its_row(tmp_path):
    path = tmp_path / "binary.parquet"
    pl.DataFrame({"url": ["acme.example", "globex.example"], "raw": [b"fine", b"\xff\xfe"]}).write_parquet(path)
    with pytest.raises(UploadError, match=r"column 'raw', row 2 is not UTF-8 text \(byte 0xff\)"):
        read_upload(path)


def test_binary_utf8_is_read_as_text(tmp_path):
    path = tmp_path / "binary_ok.parquet"
    pl.DataFrame({"url": [b"acme.example"], "raw": [b"caf\xc3\xa9"]}).write_parquet(path)
    parsed = read_upload(path)
    assert parsed.counts.accepted == 1
    assert '"café"' in parsed.rows.item(0, "original")


def test_a_header_line_over_64_kb_is_still_the_header(tmp_path):
    names = [f"column_{i:05d}_" + "x" * 20 for i in range(2500)]  # about 75 KB of header
    path = tmp_path / "wide.csv"
    path.write_text(",".join(["url", *names]) + "\n" + ",".join(["acme.example", *("v" for _ in names)]) + "\n")
    parsed = read_upload(path)
    assert parsed.columns[0] == "url" and len(parsed.columns) == 2501
    assert parsed.counts.accepted == 1


def test_a_first_line_over_a_megabyte_is_not_a_header(tmp_path):
    path = tmp_path / "one_line.csv"
    path.write_text("url" + "," * (1024 * 1024 + 10))
    with pytest.raises(UploadError, match="first line is longer than 1024 KB"):
        read_upload(path)


def test_the_configured_limits_apply_to_every_upload(conn, tmp_path, monkeypatch):
    monkeypatch.setenv("GLAZE_MAX_UPLOAD_ROWS", "2")
    path = tmp_path / "three.csv"
    path.write_text("url\na.example\nb.example\nc.example\n")
    with pytest.raises(UploadError, match="GLAZE_MAX_UPLOAD_ROWS"):
        upload_file(conn, Path(path))
