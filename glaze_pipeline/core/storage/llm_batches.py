"""Where submitted Message Batches are remembered: Postgres, so any process can resume one."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import psycopg


def batch_key(model: str, request_keys: Iterable[str]) -> str:
    """The same rows asking the same things give the same key, so a re-run finds its batch."""
    digest = hashlib.sha256(model.encode())
    for key in sorted(request_keys):
        digest.update(b"\0" + key.encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class SubmittedBatch:
    batch_key: str
    batch_id: str
    status: str


class BatchStore:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    def find(self, key: str) -> SubmittedBatch | None:
        with psycopg.connect(self.database_url) as conn:
            row = conn.execute(
                "SELECT batch_key, batch_id, status FROM glaze.llm_batches WHERE batch_key = %s", (key,)
            ).fetchone()
        return SubmittedBatch(*row) if row else None

    def submitted(self, key: str, batch_id: str, model: str, requests: int) -> None:
        with psycopg.connect(self.database_url) as conn:
            conn.execute(
                "INSERT INTO glaze.llm_batches (batch_key, batch_id, model, requests, status)"
                " VALUES (%s, %s, %s, %s, 'submitted')"
                " ON CONFLICT (batch_key) DO UPDATE SET batch_id = EXCLUDED.batch_id, status = 'submitted',"
                " submitted_at = now(), collected_at = NULL",
                (key, batch_id, model, requests),
            )

    def collected(self, key: str) -> None:
        with psycopg.connect(self.database_url) as conn:
            conn.execute(
                "UPDATE glaze.llm_batches SET status = 'collected', collected_at = now() WHERE batch_key = %s", (key,)
            )
