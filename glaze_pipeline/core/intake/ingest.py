"""Reading an uploaded table: find its URL column, normalise each distinct URL once, classify every row.

Plain functions over files and polars frames; registering the table and storing rows is the caller's job.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import polars as pl

from glaze_pipeline.config import UploadLimits
from glaze_pipeline.core.model.fields import field_for_column
from glaze_pipeline.core.model.urls import InvalidUrl, parse_entity
from glaze_pipeline.errors import UserFacingError

CSV_SUFFIXES = frozenset({".csv", ".tsv", ".txt"})
PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})

# Header names that mean "this is the URL", best first.
URL_COLUMN_NAMES: tuple[str, ...] = (
    "url",
    "website",
    "domain",
    "homepage",
    "site",
    "web",
    "company_website",
    "company_url",
    "linkedin",
    "linkedin_url",
    "profile_url",
    "link",
)

SNIFF_BYTES = 64 * 1024
MAX_HEADER_BYTES = 1024 * 1024  # a longer first line is not a header row
DETECT_SAMPLE_ROWS = 200
_DELIMITERS = ",;\t|"
_NO_DELIMITER = "\x1f"  # ASCII unit separator: never in a typed-in table
# Distinct URLs are parsed in slices so Python objects for 1M rows never live at once.
_PARSE_CHUNK = 100_000
_UTF8_CHUNK = 1 << 20

ROWS_SCHEMA: dict[str, pl.DataType] = {
    "row_number": pl.Int64(),
    "original": pl.String(),
    "input_url": pl.String(),
    "normalized_url": pl.String(),
    "entity_type": pl.String(),
    "row_key": pl.String(),
    "outcome": pl.String(),
    "reason": pl.String(),
}


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"


class UploadError(UserFacingError, ValueError):
    """The upload as a whole cannot be used; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class UploadCounts:
    """rows_in == accepted + rejected + duplicates, always."""

    rows_in: int
    accepted: int
    rejected: int
    duplicates: int


@dataclass(frozen=True)
class ParsedUpload:
    """One uploaded table, read and classified; `rows` has ROWS_SCHEMA, one row per input row, file order."""

    table_name: str
    url_column: str
    columns: list[str]
    rows: pl.DataFrame
    hint_fields: list[str]
    counts: UploadCounts


def table_slug(name: str) -> str:
    """A table id candidate matching ^[a-z][a-z0-9_]{0,62}$ (the caller makes it unique)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_name).strip("_")
    if not slug:
        return "table"
    if not slug[0].isalpha():
        slug = "t_" + slug
    return slug[:63].rstrip("_")


def _column_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def detect_url_column(columns: list[str], sample: pl.DataFrame) -> str:
    """The column holding the URLs: by a well-known name first, else by what its values look like.

    `sample` holds the first rows with the same column names as `columns`.
    """
    by_key: dict[str, str] = {}
    for column in columns:
        by_key.setdefault(_column_key(column), column)
    for key in URL_COLUMN_NAMES:
        if key in by_key:
            return by_key[key]

    best, best_parsed = None, 0
    for column in columns:
        values = sample.get_column(column).cast(pl.String).str.strip_chars().drop_nulls()
        values = values.filter(values != "")
        parsed = sum(_parses(value) for value in values.to_list())
        if parsed * 2 > len(values) and parsed > best_parsed:
            best, best_parsed = column, parsed
    if best is None:
        raise UploadError(
            f"no URL column found among columns {_listing(columns)}: name the column 'url' "
            "or pass the URL column explicitly"
        )
    if _parses(best):
        # A header that is itself a URL means the file has no header row and its first row would be lost.
        raise UploadError(f"the first row looks like data ({best!r}), not column names: add a header row such as 'url'")
    return best


def read_upload(
    path: Path, *, url_column: str | None = None, name: str | None = None, limits: UploadLimits | None = None
) -> ParsedUpload:
    """Read a CSV/TSV/Parquet upload into classified rows; raise UploadError when the file is unusable.

    The size limits are checked before the file is parsed (bytes) and before anything is classified or
    stored (rows, the largest cell), so an oversized upload costs little memory and nothing is kept.
    """
    path = Path(path)
    limits = limits or UploadLimits()
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        _check_size(path.name, path.stat().st_size, limits)
        columns, frame = _read_csv(path)
    elif suffix in PARQUET_SUFFIXES:
        columns, frame = _read_parquet(path, limits)
    else:
        raise UploadError(
            f"{path.name}: unsupported file type {suffix or '(no extension)'!r}; "
            "upload a .csv, .tsv, .txt or .parquet file (from Excel: Save As → CSV UTF-8)"
        )
    if frame.height == 0:
        raise UploadError(f"{path.name} is empty: it has a header row but no data rows")
    _check_rows(path.name, frame.height, limits)
    _check_cells(path.name, columns, frame, limits)

    internal = frame.columns
    if url_column is None:
        sample = frame.head(DETECT_SAMPLE_ROWS).rename(dict(zip(internal, columns, strict=True)))
        chosen = detect_url_column(columns, sample)
    else:
        chosen = _given_column(url_column, columns, path.name)

    rows = _classify(frame, columns, internal[columns.index(chosen)])
    counts = _count(rows)
    return ParsedUpload(
        table_name=table_slug(name if name is not None else path.stem),
        url_column=chosen,
        columns=columns,
        rows=rows,
        hint_fields=_hint_columns(columns),
        counts=counts,
    )


def _hint_columns(columns: list[str]) -> list[str]:
    """Columns named like a catalog field; only the first per field, so each field has one input value."""
    hints: dict[str, str] = {}
    for column in columns:
        field = field_for_column(column)
        if field is not None:
            hints.setdefault(field, column)
    return list(hints.values())


def _classify(frame: pl.DataFrame, columns: list[str], url_internal: str) -> pl.DataFrame:
    """Attach entity, row key and outcome to every row; each distinct URL string is parsed once."""
    out = frame.select(
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("row_number"),
        # Aliases, not pl.col(name): user column names like "*" or "^a$" are patterns to polars.
        pl.struct([pl.col(c).alias(n) for c, n in zip(frame.columns, columns, strict=True)])
        .struct.json_encode()
        .alias("original"),
        pl.col(url_internal).str.strip_chars().fill_null("").alias("input_url"),
    )
    lookup = _normalise_distinct(out.get_column("input_url").unique())
    out = out.join(lookup, on="input_url", how="left", maintain_order="left")

    first_row = pl.col("row_number").min().over("row_key")
    rejected = pl.col("row_key").is_null()
    is_first = pl.col("row_number") == first_row
    return out.select(
        "row_number",
        "original",
        "input_url",
        "normalized_url",
        "entity_type",
        "row_key",
        pl.when(rejected)
        .then(pl.lit(Outcome.REJECTED.value))
        .when(is_first)
        .then(pl.lit(Outcome.ACCEPTED.value))
        .otherwise(pl.lit(Outcome.DUPLICATE.value))
        .alias("outcome"),
        pl.when(rejected)
        .then(pl.col("error"))
        .when(is_first)
        .then(pl.lit(None, dtype=pl.String))
        .otherwise(pl.format("duplicate of row {}", first_row))
        .alias("reason"),
    )


def _normalise_distinct(values: pl.Series) -> pl.DataFrame:
    schema = {
        "input_url": pl.String(),
        "normalized_url": pl.String(),
        "entity_type": pl.String(),
        "row_key": pl.String(),
        "error": pl.String(),
    }
    frames = [pl.DataFrame(schema=schema)]
    for start in range(0, len(values), _PARSE_CHUNK):
        chunk = values.slice(start, _PARSE_CHUNK).to_list()
        frames.append(pl.DataFrame([_parse_row(value) for value in chunk], schema=schema, orient="row"))
    return pl.concat(frames)


def _parse_row(value: str) -> tuple[str, str | None, str | None, str | None, str | None]:
    try:
        entity = parse_entity(value)
    except InvalidUrl as exc:
        return value, None, None, None, str(exc)
    return value, entity.normalized_url, entity.entity_type.value, entity.row_key, None


def _parses(value: str) -> bool:
    try:
        parse_entity(value)
    except InvalidUrl:
        return False
    return True


def _count(rows: pl.DataFrame) -> UploadCounts:
    tally = dict(rows.get_column("outcome").value_counts().iter_rows())
    return UploadCounts(
        rows_in=rows.height,
        accepted=tally.get(Outcome.ACCEPTED.value, 0),
        rejected=tally.get(Outcome.REJECTED.value, 0),
        duplicates=tally.get(Outcome.DUPLICATE.value, 0),
    )


def _given_column(url_column: str, columns: list[str], file_name: str) -> str:
    """Exact name first; a unique case/space-insensitive match forgives 'URL' for 'url '."""
    if url_column in columns:
        return url_column
    loose = [column for column in columns if column.strip().lower() == url_column.strip().lower()]
    if len(loose) == 1:
        return loose[0]
    raise UploadError(f"column {url_column!r} is not in {file_name}; available columns: {_listing(columns)}")


def _read_csv(path: Path) -> tuple[list[str], pl.DataFrame]:
    """All cells as text, so zip codes keep their zeros; header names kept exactly as written."""
    data = _as_utf8(path.read_bytes(), path.name)
    if not data.strip():
        raise UploadError(f"{path.name} is empty: upload a file with a header row and at least one data row")
    head = _head(data, path.name)
    delimiter = _sniff_delimiter(head, default="\t" if path.suffix.lower() == ".tsv" else ",")
    try:  # newline="": the csv module reads bare CR line ends itself, as the file gave them
        header = next(csv.reader(io.StringIO(head, newline=""), delimiter=delimiter), [])
    except csv.Error as exc:
        raise UploadError(f"{path.name}: the header row cannot be read as CSV ({exc}); check its quoting") from exc
    _check_header(header, path.name)

    internal = [f"c{i}" for i in range(len(header))]
    try:
        frame = pl.read_csv(
            io.BytesIO(data),
            separator=delimiter,
            has_header=True,
            infer_schema=False,
            quote_char='"',
            raise_if_empty=False,
        )
    except pl.exceptions.PolarsError as exc:
        raise UploadError(_csv_problem(data, delimiter, len(header), path.name, exc)) from exc
    if frame.width != len(header):
        raise UploadError(
            f"{path.name}: could not split the header into columns consistently "
            f"(found {len(header)} and {frame.width}); check the delimiter and quoting"
        )
    frame = frame.rename(dict(zip(frame.columns, internal, strict=True)))
    # Blank lines come through as all-null rows; they are layout, not input rows.
    return header, frame.filter(~pl.all_horizontal(pl.all().is_null()))


def _head(data: bytes, file_name: str) -> str:
    """The first lines for the sniffer: at least the whole header line, and never a line cut in two."""
    first_newline = data.find(b"\n", 0, MAX_HEADER_BYTES)
    if first_newline < 0 and len(data) > MAX_HEADER_BYTES:
        raise UploadError(
            f"{file_name}: the first line is longer than {MAX_HEADER_BYTES // 1024} KB, so it is not a header row; "
            "upload a CSV whose first line names the columns"
        )
    end = max(SNIFF_BYTES, first_newline + 1)
    head = data[:end]
    if len(data) > end and b"\n" in head:
        head = head[: head.rindex(b"\n") + 1]  # a cut line would mislead the sniffer
    return head.decode("utf-8", errors="ignore")


def _read_parquet(path: Path, limits: UploadLimits) -> tuple[list[str], pl.DataFrame]:
    _check_parquet_size(path, limits)
    try:
        frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise UploadError(f"{path.name} could not be read as Parquet: {_first_line(exc)}") from exc
    columns = frame.columns
    _check_header(columns, path.name)
    nested = [c for c, dtype in frame.schema.items() if dtype.is_nested()]
    if nested:
        raise UploadError(
            f"{path.name}: columns {_listing(nested)} hold lists or structs; flatten them to text columns"
        )
    internal = [f"c{i}" for i in range(len(columns))]
    frame = frame.rename(dict(zip(columns, internal, strict=True)))
    _check_binary_text(frame, columns, path.name)
    try:
        frame = frame.select([pl.col(c).cast(pl.String) for c in internal])
    except pl.exceptions.PolarsError as exc:
        raise UploadError(f"{path.name}: a column cannot be read as text: {_first_line(exc)}") from exc
    _check_no_nul(frame, columns, path.name)
    return columns, frame


def _check_parquet_size(path: Path, limits: UploadLimits) -> None:
    """Rows and decompressed bytes from the file's footer, before any page is decoded (a small file can unpack huge)."""
    import duckdb  # only Parquet uploads need it; a run's process (and the API) imports this module without it

    _check_size(path.name, path.stat().st_size, limits)
    try:
        with duckdb.connect() as con:
            row = con.execute(
                "SELECT coalesce(sum(total_uncompressed_size), 0) FROM parquet_metadata($1)", [str(path)]
            ).fetchone()
            rows = con.execute(
                "SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata($1)", [str(path)]
            ).fetchone()
    except duckdb.Error as exc:
        raise UploadError(f"{path.name} could not be read as Parquet: {_first_line(exc)}") from exc
    _check_size(path.name, int(row[0]) if row else 0, limits, unpacked=True)
    _check_rows(path.name, int(rows[0]) if rows else 0, limits)


def _check_binary_text(frame: pl.DataFrame, columns: list[str], file_name: str) -> None:
    """Binary columns become text only if they are UTF-8; say where the first one that is not sits."""
    for internal, column in zip(frame.columns, columns, strict=True):
        if frame.schema[internal] != pl.Binary:
            continue
        values = frame.get_column(internal)
        try:
            values.cast(pl.String)
            continue
        except pl.exceptions.PolarsError:
            pass
        for number, value in enumerate(values.to_list(), start=1):  # error path only: find the row
            try:
                value is None or value.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UploadError(
                    f"{file_name}: column {column!r}, row {number} is not UTF-8 text (byte 0x{value[exc.start]:02x}); "
                    "write the column as UTF-8 strings and upload the file again"
                ) from exc


def _check_no_nul(frame: pl.DataFrame, columns: list[str], file_name: str) -> None:
    """Postgres refuses NUL in text and JSON, so it is refused here, with where it is, like the CSV reader does."""
    for name in columns:
        if "\x00" in name:
            raise UploadError(f"{file_name}: a column name contains a NUL byte; rename the column and upload it again")
    has_nul = frame.select(pl.all().str.contains("\x00", literal=True).any()).row(0)
    for internal, column, found in zip(frame.columns, columns, has_nul, strict=True):
        if found:
            number = int(frame.get_column(internal).str.contains("\x00", literal=True).arg_true()[0]) + 1
            raise UploadError(
                f"{file_name}: column {column!r}, row {number} contains a NUL byte, which a text cell cannot hold; "
                "remove it (it often comes from binary data or UTF-16 text) and upload the file again"
            )


def _check_size(file_name: str, size: int, limits: UploadLimits, *, unpacked: bool = False) -> None:
    if size > limits.max_bytes:
        what = "holds" if not unpacked else "unpacks to"
        raise UploadError(
            f"{file_name} {what} {size / 2**20:.1f} MB, above the upload limit of {limits.max_bytes / 2**20:g} MB "
            "(GLAZE_MAX_UPLOAD_MB): split it into smaller files"
        )


def _check_rows(file_name: str, rows: int, limits: UploadLimits) -> None:
    if rows > limits.max_rows:
        raise UploadError(
            f"{file_name} has {rows} rows, above the upload limit of {limits.max_rows} (GLAZE_MAX_UPLOAD_ROWS): "
            "split it into smaller files"
        )


def _check_cells(file_name: str, columns: list[str], frame: pl.DataFrame, limits: UploadLimits) -> None:
    """No cell (and no column name) above GLAZE_MAX_CELL_KB: such a cell is a mistake, not a company's URL."""
    too_long = [c for c in columns if len(c.encode()) > limits.max_cell_bytes]
    if too_long:
        raise UploadError(f"{file_name}: a column name is longer than {limits.max_cell_bytes // 1024} KB; shorten it")
    longest = frame.select(pl.all().str.len_bytes().max()).row(0)
    for internal, column, size in zip(frame.columns, columns, longest, strict=True):
        if size is not None and size > limits.max_cell_bytes:
            number = int(frame.get_column(internal).str.len_bytes().arg_max() or 0) + 1
            raise UploadError(
                f"{file_name}: column {column!r}, row {number} holds {size / 1024:.0f} KB, above the cell limit of "
                f"{limits.max_cell_bytes // 1024} KB (GLAZE_MAX_CELL_KB): shorten or remove that cell"
            )


def _as_utf8(data: bytes, file_name: str) -> bytes:
    """UTF-8 bytes without BOM; UTF-16 with BOM is transcoded; anything else is refused with its offset."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            data = data.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError as exc:
            raise UploadError(
                f"{file_name} starts like UTF-16 but is not valid UTF-16 at byte offset {exc.start}; "
                "save the file as UTF-8 (CSV UTF-8) and upload it again"
            ) from exc
        if b"\x00" in data:
            raise UploadError(f"{file_name} contains a NUL character, which a text cell cannot hold; remove it")
        return data
    # NUL is legal UTF-8 but never in a text table, and Postgres refuses it in text and JSONB.
    nul = data.find(b"\x00")
    if nul >= 0:
        raise UploadError(
            f"{file_name} contains a NUL byte at byte offset {nul}: it is not a text file in UTF-8 "
            "(UTF-16 without byte-order mark, or a spreadsheet renamed to .csv); save the file as UTF-8 CSV"
        )
    _check_utf8(data, file_name)
    return data


def _check_utf8(data: bytes, file_name: str) -> None:
    """Validate in slices: decoding a large file to one str would double its memory for nothing."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    for start in range(0, max(len(data), 1), _UTF8_CHUNK):
        pending = len(decoder.getstate()[0])
        chunk = view[start : start + _UTF8_CHUNK]
        try:
            decoder.decode(chunk, final=start + _UTF8_CHUNK >= len(data))
        except UnicodeDecodeError as exc:
            offset = start - pending + exc.start
            raise UploadError(
                f"{file_name} is not valid UTF-8 (byte 0x{data[offset]:02x} at byte offset {offset}); "
                "it is probably in a legacy encoding such as Windows-1252 or Latin-1: "
                "save the file as UTF-8 (in Excel: Save As → CSV UTF-8) and upload it again"
            ) from exc


def _sniff_delimiter(head: str, default: str) -> str:
    """csv.Sniffer's guess, kept only if the header line actually contains it."""
    header_line = head.split("\n", 1)[0]
    if not any(d in header_line for d in _DELIMITERS):
        # One column: a URL list whose query strings contain commas must not be split.
        return _NO_DELIMITER
    try:
        guess = csv.Sniffer().sniff(head, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        guess = ""
    if guess and guess in header_line:
        return guess
    counts = {d: header_line.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    if counts[best] and counts[best] > counts.get(default, 0):
        return best
    return default


def _check_header(header: list[str], file_name: str) -> None:
    if not header:
        raise UploadError(f"{file_name} is empty: upload a file with a header row and at least one data row")
    blank = [str(i + 1) for i, name in enumerate(header) if not name.strip()]
    if blank:
        raise UploadError(
            f"{file_name}: column(s) {', '.join(blank)} have no name in the header row; name them or delete them"
        )
    seen: set[str] = set()
    duplicated: list[str] = []
    for name in header:
        key = name.strip()
        if key in seen and key not in duplicated:
            duplicated.append(key)
        seen.add(key)
    if duplicated:
        raise UploadError(
            f"{file_name}: duplicate column name(s) {_listing(duplicated)}; rename them so each is unique"
        )


def _csv_problem(data: bytes, delimiter: str, width: int, file_name: str, exc: Exception) -> str:
    """Point at the first data row with more fields than the header (error path only)."""
    records = (r for r in csv.reader(io.StringIO(data.decode("utf-8"), newline=""), delimiter=delimiter) if r)
    try:
        for number, record in enumerate(records):
            if len(record) > width:
                return (
                    f"{file_name}: row {number} has {len(record)} fields but the header has {width}; "
                    "fix that row or quote values that contain the delimiter"
                )
    except csv.Error:
        pass  # the parser's own message below says enough
    return f"{file_name} could not be read as CSV: {_first_line(exc)}"


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _listing(names: list[str]) -> str:
    return ", ".join(repr(name) for name in names)
