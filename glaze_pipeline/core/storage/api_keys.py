"""API keys: created once and shown once, stored only as a hash, checked in constant time, revoked for good.

A key reads `glz_<key id>_<secret>`. The key id finds the row; the SHA-256 of the whole key is compared
with `hmac.compare_digest`. A random 256-bit secret needs no slow hash: nothing about it can be guessed
from its digest. Every way a key can fail (absent, malformed, unknown, wrong, revoked) ends in the same
`None`, after the same comparison, so a caller cannot tell them apart.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row

from glaze_pipeline.errors import UserFacingError

PREFIX = "glz_"
_SHAPE = re.compile(r"^glz_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_NO_SUCH_KEY = hashlib.sha256(b"glaze: no such key").hexdigest()  # compared against when the id is unknown


class KeyNotFound(UserFacingError, LookupError):
    pass


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    rate_per_min: int
    burst: int
    daily_cap_usd: float
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


_COLUMNS = "key_id, name, rate_per_min, burst, daily_cap_usd::float8 AS daily_cap_usd, created_at, revoked_at"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_key(
    conn: psycopg.Connection, name: str, *, rate_per_min: int = 60, burst: int = 10, daily_cap_usd: float = 5.0
) -> tuple[ApiKey, str]:
    """A new key and its secret; the secret is returned here once and never stored."""
    if rate_per_min <= 0 or burst <= 0 or daily_cap_usd < 0:
        raise UserFacingError("a key needs a rate above 0 per minute, a burst of at least 1 and a cap of $0 or more")
    key_id = secrets.token_hex(6)
    token = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    cur = conn.cursor(row_factory=class_row(ApiKey))
    key = cur.execute(
        f"""INSERT INTO glaze.api_keys (key_hash, key_id, name, rate_per_min, burst, daily_cap_usd)
            VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}""",
        (digest(token), key_id, name, rate_per_min, burst, daily_cap_usd),
    ).fetchone()
    assert key is not None
    return key, token


def authenticate(conn: psycopg.Connection, token: str | None) -> ApiKey | None:
    """The active key this token is, or None, whatever the reason (the caller answers one 401 for all)."""
    match = _SHAPE.match(token or "")
    key_id = match.group(1) if match else ""
    row = conn.execute(f"SELECT key_hash, {_COLUMNS} FROM glaze.api_keys WHERE key_id = %s", (key_id,)).fetchone()
    stored = row[0] if row is not None else _NO_SUCH_KEY
    same = hmac.compare_digest(stored.encode(), digest(token or "").encode())
    if row is None or not same or not match:
        return None
    key = ApiKey(*row[1:])
    return key if key.active else None


def key_by_id(conn: psycopg.Connection, key_id: str) -> ApiKey | None:
    """An active key by its id (a console session holds only the id)."""
    cur = conn.cursor(row_factory=class_row(ApiKey))
    return cur.execute(
        f"SELECT {_COLUMNS} FROM glaze.api_keys WHERE key_id = %s AND revoked_at IS NULL", (key_id,)
    ).fetchone()


def list_keys(conn: psycopg.Connection) -> list[ApiKey]:
    cur = conn.cursor(row_factory=class_row(ApiKey))
    return cur.execute(f"SELECT {_COLUMNS} FROM glaze.api_keys WHERE key_id IS NOT NULL ORDER BY created_at").fetchall()


def revoke_key(conn: psycopg.Connection, key_id: str) -> ApiKey:
    """Revoked keys stay listed (their requests keep their owner) and never authenticate again."""
    cur = conn.cursor(row_factory=class_row(ApiKey))
    key = cur.execute(
        f"""UPDATE glaze.api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE key_id = %s
            RETURNING {_COLUMNS}""",
        (key_id,),
    ).fetchone()
    if key is None:
        raise KeyNotFound(f"no API key {key_id!r}; `glaze keys list` shows the key ids")
    return key


def spent_today(conn: psycopg.Connection, key_id: str) -> float:
    """What the key's requests paid since midnight UTC, summed from the ledger (API runs record `api:<key id>`)."""
    row = conn.execute(
        """SELECT coalesce(sum(cost_usd), 0)::float8 FROM glaze.provider_calls
           WHERE table_id = %s AND at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'""",
        (ledger_table(key_id),),
    ).fetchone()
    return float(row[0]) if row else 0.0


def ledger_table(key_id: str) -> str:
    """The ledger's table_id for a key's single-record requests, so its spending sums in one index range."""
    return f"api:{key_id}"
