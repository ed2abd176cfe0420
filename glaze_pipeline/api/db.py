"""The API's Postgres connections: one pool for writes, one for reads that cannot write.

Every read path of the API (requests, tables, exports, metrics) takes its connection from `reading()`.
Reads run in read-only transactions with a statement timeout; when the project's read-only role lands
(issue 14, `glaze sql`), only `READ_OPTIONS` and the read pool's login change, here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool

READ_OPTIONS = "-c default_transaction_read_only=on -c statement_timeout=30000"


class Databases:
    def __init__(self, url: str, *, max_size: int = 8) -> None:
        self.url = url
        self._write = ConnectionPool(url, min_size=1, max_size=max_size, open=True, name="glaze-api-write")
        self._read = ConnectionPool(
            url, min_size=1, max_size=max_size, open=True, name="glaze-api-read", kwargs={"options": READ_OPTIONS}
        )

    @contextmanager
    def writing(self) -> Iterator[psycopg.Connection]:
        """A connection whose work commits when the block ends without an error."""
        with self._write.connection() as conn:
            yield conn

    @contextmanager
    def reading(self) -> Iterator[psycopg.Connection]:
        with self._read.connection() as conn:
            yield conn

    def close(self) -> None:
        self._write.close()
        self._read.close()
