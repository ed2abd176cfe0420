"""Upload a file: parse it, check the wanted fields, register it with all its rows.

Used by the CLI, the demo and the inbox sensor alike.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import psycopg

from glaze_pipeline.config import UploadLimits, settings
from glaze_pipeline.core.intake.ingest import UploadCounts, read_upload
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
