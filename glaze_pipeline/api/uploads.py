"""A multipart upload streamed to disk with a size cap: 413 while it streams, never after reading it all."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart.multipart import MultipartParser, parse_options_header

from glaze_pipeline.errors import UserFacingError

MAX_FIELD_BYTES = 64 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


class UploadTooLarge(UserFacingError):
    pass


class BadForm(UserFacingError):
    pass


@dataclass
class UploadedForm:
    fields: dict[str, str] = field(default_factory=dict)
    file_path: Path | None = None
    file_name: str | None = None


def safe_file_name(name: str) -> str:
    """The last path part of a client's file name, with only plain characters: never a path of its own."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE.sub("_", base).strip(" .") or "upload"
    return cleaned[-120:]


class _Parts:
    """Collects the form: small text fields in memory, the one file part straight to `folder`."""

    def __init__(self, folder: Path, file_field: str) -> None:
        self.folder = folder
        self.file_field = file_field
        self.form = UploadedForm()
        self._header_name = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._name = ""
        self._text = bytearray()
        self._out: IO[bytes] | None = None

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda d, s, e: self._add("_header_name", d[s:e]),
            "on_header_value": lambda d, s, e: self._add("_header_value", d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_done,
            "on_part_data": self._data,
            "on_part_end": self._end,
        }

    def _add(self, attr: str, data: bytes) -> None:
        setattr(self, attr, getattr(self, attr) + data)

    def _begin(self) -> None:
        self._headers, self._text, self._name = {}, bytearray(), ""

    def _header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name = self._header_value = b""

    def _headers_done(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = params.get(b"name", b"").decode("utf-8", "replace")
        file_name = params.get(b"filename")
        if file_name is not None and self._name == self.file_field:
            if self.form.file_path is not None:
                raise BadForm("send one file per upload")
            self.form.file_name = file_name.decode("utf-8", "replace")
            self.form.file_path = self.folder / safe_file_name(self.form.file_name)
            self._out = self.form.file_path.open("wb")

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._out is not None:
            self._out.write(data[start:end])
            return
        self._text += data[start:end]
        if len(self._text) > MAX_FIELD_BYTES:
            raise BadForm(f"form field {self._name!r} is longer than {MAX_FIELD_BYTES // 1024} KB")

    def _end(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
        elif self._name:
            self.form.fields[self._name] = self._text.decode("utf-8", "replace")

    def close(self) -> None:
        if self._out is not None:
            self._out.close()


async def receive_form(
    content_type: str,
    content_length: str | None,
    body: AsyncIterator[bytes],
    folder: Path,
    *,
    max_bytes: int,
    file_field: str = "file",
) -> UploadedForm:
    """Parse a multipart/form-data body chunk by chunk; stop at `max_bytes` with UploadTooLarge."""
    too_large = UploadTooLarge(f"the upload is larger than {max_bytes // (1024 * 1024)} MB; split the table")
    if content_length and content_length.isdigit() and int(content_length) > max_bytes:
        raise too_large
    kind, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise BadForm("send the table as multipart/form-data with a `file` part")
    parts = _Parts(folder, file_field)
    parser = MultipartParser(boundary, parts.callbacks())  # type: ignore[arg-type]
    received = 0
    try:
        async for chunk in body:
            received += len(chunk)
            if received > max_bytes:
                raise too_large
            parser.write(chunk)
        parser.finalize()
    except UserFacingError:
        raise
    except Exception as exc:  # the multipart parser's own errors: a malformed body, said plainly
        raise BadForm(f"the form could not be read ({exc}); send multipart/form-data with a `file` part") from exc
    finally:
        parts.close()
    if parts.form.file_path is None:
        raise BadForm("the form has no `file` part; attach the table as `file`")
    return parts.form
