"""The API's Postgres connections: one pool for writes, one for reads that cannot write.

Every read path of the API (requests, tables, exports, metrics) takes its connection from `reading()`,
which logs in as the read-only role `glaze_reader` (the same role and check as `glaze sql`), so a bug
in a read path cannot change data. Keys are looked up over the write pool: the reader may not see
`glaze.api_keys`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool

from glaze_pipeline.core.storage.readonly import check_reader, connect_reader

READ_OPTIONS = "-c default_transaction_read_only=on -c statement_timeout=30000"


class Databases:
    def __init__(self, url: str, reader_url: str, *, max_size: int = 8) -> None:
        self.url = url
        with connect_reader(reader_url) as conn:  # a missing or too powerful reader is refused at start
            check_reader(conn)
        self._write = ConnectionPool(url, min_size=1, max_size=max_size, open=True, name="glaze-api-write")
        self._read = ConnectionPool(
            reader_url,
            min_size=1,
            max_size=max_size,
            open=True,
            name="glaze-api-read",
            kwargs={"options": READ_OPTIONS, "application_name": "glaze api read-only"},
        )

    @contextmanager
    def writing(self) -> Iterator[psycopg.Connection]:
        """A connection whose work commits when the block ends without an error."""
        with self._write.connection() as conn:
            yield conn

    @contextmanager
    def reading(self) -> Iterator[psycopg.Connection]:
        """A connection as `glaze_reader`: every statement in it runs read-only."""
        with self._read.connection() as conn:
            yield conn

    def close(self) -> None:
        self._write.close()
        self._read.close()
