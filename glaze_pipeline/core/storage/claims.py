"""Claims on paid requests (`glaze.paid_claims`): of all the processes asking one (provider, request) at once,
exactly one pays; the others wait for its answer in the ledger.

Why Postgres and not Redis: the ledger, which the claim hands over to, lives in Postgres, and money must not
depend on Redis (the cache and the limiter degrade without it). One statement takes a claim: INSERT … ON
CONFLICT DO UPDATE … WHERE the old claim expired (or is ours). Postgres locks the row, so of two concurrent
askers the second re-reads the first's committed claim and gets nothing. The holder renews its claims
while it works and deletes them right after the answers are written to the ledger; a SIGKILLed holder's
claims expire after the lease, and a waiter takes them over.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence

import psycopg


class PaidClaims:
    """One stage's claims on one provider's requests; one connection, safe to use from worker threads."""

    def __init__(self, url: str, *, provider: str, version: str, run_id: str, lease_s: float) -> None:
        self.url = url
        self.provider = provider
        self.version = version
        self.run_id = run_id
        self.lease_s = lease_s
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._conn: psycopg.Connection | None = None

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def claim(self, request_hashes: Sequence[str]) -> set[str]:
        """The requests this stage may now pay for: free, expired, or already its own."""
        if not request_hashes:
            return set()
        rows = (
            self._connection()
            .execute(
                """INSERT INTO glaze.paid_claims AS c
                       (provider, provider_version, request_hash, owner, run_id, expires_at)
                   SELECT %s, %s, h, %s, %s, now() + make_interval(secs => %s)
                   FROM unnest(%s::text[]) AS h ORDER BY h
                   ON CONFLICT (provider, provider_version, request_hash) DO UPDATE
                   SET owner = EXCLUDED.owner, run_id = EXCLUDED.run_id, claimed_at = now(),
                       expires_at = EXCLUDED.expires_at
                   WHERE c.expires_at < now() OR c.owner = EXCLUDED.owner
                   RETURNING c.request_hash""",
                (self.provider, self.version, self.owner, self.run_id, self.lease_s, sorted(set(request_hashes))),
            )
            .fetchall()
        )
        return {r[0] for r in rows}

    def renew(self) -> int:
        """Push this stage's claims' expiry a lease further: it is alive and still paying for them."""
        cur = self._connection().execute(
            "UPDATE glaze.paid_claims SET expires_at = now() + make_interval(secs => %s) WHERE owner = %s",
            (self.lease_s, self.owner),
        )
        return cur.rowcount

    def release(self, request_hashes: Sequence[str] | None = None) -> None:
        """Drop claims (all of this stage's when None): called once their answers are in the ledger, or never sent."""
        if request_hashes is None:
            if self._conn is None:
                return  # never claimed anything
            self._connection().execute("DELETE FROM glaze.paid_claims WHERE owner = %s", (self.owner,))
        elif request_hashes:
            self._connection().execute(
                "DELETE FROM glaze.paid_claims WHERE owner = %s AND provider = %s AND provider_version = %s"
                " AND request_hash = ANY(%s)",
                (self.owner, self.provider, self.version, list(set(request_hashes))),
            )

    def holders(self, request_hashes: Sequence[str]) -> set[str]:
        """The runs that hold claims on these requests now (for the message of a row that waited too long)."""
        rows = (
            self._connection()
            .execute(
                "SELECT DISTINCT run_id FROM glaze.paid_claims WHERE provider = %s AND provider_version = %s"
                " AND request_hash = ANY(%s) AND expires_at >= now()",
                (self.provider, self.version, list(set(request_hashes))),
            )
            .fetchall()
        )
        return {r[0] for r in rows}
