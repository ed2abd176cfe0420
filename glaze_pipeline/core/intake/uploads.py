"""Upload a file: parse it, check the wanted fields, register it with all its rows.

`upload_file` is the one way a table is registered: `glaze upload`/`glaze enrich FILE`, the demo, the
`register_table` job (launchpad and inbox files) and the API's POST /v1/tables all call it.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import psycopg

from glaze_pipeline.config import UploadLimits, settings
from glaze_pipeline.core.intake.ingest import UploadCounts, UploadError, read_upload
from glaze_pipeline.core.intake.tables import TableStatus, register_upload
from glaze_pipeline.core.model.fields import parse_wanted

INBOX_SUFFIXES = frozenset({".csv", ".tsv", ".txt", ".parquet"})


@dataclass(frozen=True)
class Uploaded:
    table_id: str
    counts: UploadCounts
    url_column: str
    wanted: list[str]


def upload_file(
    conn: psycopg.Connection,
    path: Path,
    *,
    name: str | None = None,
    url_column: str | None = None,
    fields: str | list[str] | None = None,
    status: str = TableStatus.PENDING,
    limits: UploadLimits | None = None,
) -> Uploaded:
    """Raises UploadError / UnknownFieldError with a message for the user; stores nothing in that case.

    `limits` default to the configured ones (GLAZE_MAX_UPLOAD_MB & co), so every way in enforces them.
    """
    wanted = parse_wanted(fields)
    parsed = read_upload(path, url_column=url_column, name=name, limits=limits or settings().upload_limits)
    table_id = register_upload(conn, parsed, wanted, source_file=str(path), status=status)
    return Uploaded(table_id, parsed.counts, parsed.url_column, wanted)


def local_source(source: str) -> Path:
    """The file a launchpad config names: a path on the machine that runs the job, or a file:// URL.

    Object-store URLs (s3://, gs://) would need an fsspec backend such as s3fs, which glaze does not ship.
    """
    scheme, sep, _ = source.partition("://")
    if sep and scheme != "file":
        raise UploadError(
            f"{source}: only paths and file:// URLs can be registered here (no {scheme}:// filesystem is installed); "
            "copy the file to the machine that runs Dagster and give its path, or POST it to /v1/tables"
        )
    path = Path(unquote(urlparse(source).path)) if sep else Path(source).expanduser()
    if not path.is_file():
        raise UploadError(f"{source}: no such file where the job runs; give a path the Dagster daemon can read")
    return path


def content_hash(path: Path) -> str:
    """SHA-256 of the file's bytes, read in slices: the inbox sensor's run key for it (a tick parses nothing)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def inbox_files(inbox: Path) -> list[Path]:
    """Files ready in the drop folder, oldest first; partial copies (dot files) are left alone."""
    if not inbox.is_dir():
        return []
    files = [
        p for p in inbox.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in INBOX_SUFFIXES
    ]
    return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))


def file_away(path: Path, inbox: Path, outcome: str, message: str | None = None) -> Path:
    """Move a processed inbox file to inbox/.done or inbox/.failed (with the error beside it): nothing is lost."""
    target_dir = inbox / f".{outcome}"
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / path.name
    n = 1
    while target.exists():
        target = target_dir / f"{path.stem}.{n}{path.suffix}"
        n += 1
    shutil.move(str(path), target)
    if message is not None:
        target.with_name(target.name + ".error.txt").write_text(message + "\n")
    return target
