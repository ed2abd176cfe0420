"""Fuzzed uploads: whatever bytes arrive, each file is accepted with its counts adding up (and stores in
Postgres), or refused with a sentence. No other exception, no traceback."""

from __future__ import annotations

import codecs
import io
import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from glaze_pipeline.config import UploadLimits
from glaze_pipeline.core.intake.ingest import UploadError, read_upload
from glaze_pipeline.core.intake.tables import register_upload

LIMITS = UploadLimits(max_bytes=256 * 1024, max_rows=400, max_cell_bytes=2048)
FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,  # the same corpus every run: a failure is reproducible, not a flake
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

URLISH = st.sampled_from(
    [
        "acme.example",
        "https://globex.example/x?utm_source=a",
        "linkedin.com/in/jane",
        "ftp://x",
        "",
        "http://",
        "😀.example",
    ]
)
CELL = st.one_of(URLISH, st.text(max_size=40), st.text(alphabet="\x00\r\n\",;\t|'=+-@\ufeff\u2028", max_size=8))


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    """Tables with hostile headers, cells, delimiters, quoting and encodings; sometimes a bit of raw noise."""
    width = draw(st.integers(1, 5))
    header = draw(
        st.lists(
            st.one_of(st.sampled_from(["url", "website", "company_name", "glaze_status"]), st.text(max_size=12)),
            min_size=width,
            max_size=width,
        )
    )
    rows = draw(st.lists(st.lists(CELL, min_size=0, max_size=width + 1), max_size=30))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    quote = draw(st.booleans())

    def line(cells: list[str]) -> str:
        return delimiter.join('"' + c.replace('"', '""') + '"' if quote else c for c in cells)

    text = "\n".join(line(r) for r in [header, *rows]) + draw(st.sampled_from(["", "\n", "\r\n"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1"]))
    data = text.encode(encoding, errors="replace")
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))] + draw(st.binary(max_size=16))
    return data


@st.composite
def parquet_files(draw: st.DrawFn) -> bytes:
    """Parquet with text (NUL included), binary, numbers, nulls and lists; sometimes cut short."""
    n = draw(st.integers(0, 20))
    columns: dict[str, pl.Series] = {
        "url": pl.Series([draw(URLISH) for _ in range(n)], dtype=pl.String),
    }
    for i in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["text", "binary", "int", "list", "null"]))
        name = draw(st.one_of(st.just(f"c{i}"), st.text(max_size=6)))
        if name in columns:
            continue
        if kind == "text":
            columns[name] = pl.Series([draw(CELL) for _ in range(n)], dtype=pl.String)
        elif kind == "binary":
            columns[name] = pl.Series([draw(st.binary(max_size=6)) for _ in range(n)], dtype=pl.Binary)
        elif kind == "int":
            columns[name] = pl.Series([draw(st.integers(-(2**63), 2**63 - 1)) for _ in range(n)], dtype=pl.Int64)
        elif kind == "list":
            columns[name] = pl.Series([[draw(st.text(max_size=3))] for _ in range(n)])
        else:
            columns[name] = pl.Series([None] * n, dtype=pl.String)
    buffer = io.BytesIO()
    pl.DataFrame(columns).write_parquet(buffer)
    data = buffer.getvalue()
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return data


def _check(conn, data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzz{suffix}"
        path.write_bytes(data)
        try:
            parsed = read_upload(path, limits=LIMITS)
        except UploadError as exc:
            message = str(exc)
            assert message.strip() and "Traceback" not in message
            return
    counts = parsed.counts
    assert counts.rows_in == counts.accepted + counts.rejected + counts.duplicates == parsed.rows.height
    conn.execute("SELECT 1")  # an open transaction: register_upload's block becomes a savepoint we roll back
    register_upload(conn, parsed, ["company_name"], source_file=str(path))
    conn.rollback()


@FUZZ
@given(data=csv_files())
@example(data=b"\xff\xfeu\x00r\x00l\x00\n\x00\x00\x00")  # found by this test: UTF-16 text holding a NUL
def test_fuzzed_csv_is_accepted_whole_or_refused_with_a_sentence(conn, data):
    _check(conn, data, ".csv")


@FUZZ
@given(data=parquet_files())
def test_fuzzed_parquet_is_accepted_whole_or_refused_with_a_sentence(conn, data):
    _check(conn, data, ".parquet")


@pytest.mark.parametrize("bom", [codecs.BOM_UTF16_LE, codecs.BOM_UTF8, b""])
@FUZZ
@given(data=st.binary(max_size=300))
@example(data=b"\r\x01")  # found by this test: a bare CR line end broke the header reader
def test_raw_bytes_are_accepted_or_refused(conn, bom, data):
    _check(conn, bom + data, ".csv")
