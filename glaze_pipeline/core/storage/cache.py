"""Provider-result cache in Redis: bulk lookups and writes, TTLs, and safe degradation when Redis is down.

Keys are `<prefix>cache:<provider>:<version>:<sha256 of the exact request>`, so a
provider that changes what it returns bumps its version and never reads stale shapes.
The request includes what else changes the answer (`scoped_request`): a website fetched
through a GLAZE_RESOLVE pin or from a private network is keyed apart from the plain fetch.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl
import redis

from glaze_pipeline.core.model.candidates import CANDIDATE_SCHEMA, EVIDENCE, Attempt, Evidence, Found
from glaze_pipeline.core.model.fields import CATALOG
from glaze_pipeline.core.model.status import Status

log = logging.getLogger(__name__)

_CHUNK = 1_000  # keys per MGET / pipeline round trip
_PIPELINED = 20  # MGETs sent in one round trip when reading (20,000 keys)
# Only outcomes that will not change on a retry are worth remembering.
CACHEABLE = frozenset({Status.FILLED, Status.NOT_FOUND})


def scoped_request(request: str, scope: str) -> str:
    """A request joined with whatever else changes its answer (the fetch configuration): part of the cache key."""
    return f"{request}\nscope {scope}" if scope else request


def request_hash(request: str) -> str:
    return hashlib.sha256(request.encode()).hexdigest()


def encode_attempt(attempt: Attempt, cost_usd: float) -> bytes:
    return json.dumps(
        {
            "found": [[f.field, f.value, f.confidence, f.evidence] for f in attempt.found],
            "status": attempt.status.value,
            "detail": attempt.detail,
            "fetched_at": attempt.fetched_at.isoformat() if attempt.fetched_at else None,
            "paid_usd": cost_usd,
            "evidence": [[e.source_url, e.text] for e in attempt.evidence],
        }
    ).encode()


def decode_attempt(row_key: str, payload: bytes) -> Attempt:
    """A cached answer is free this time and keeps its original fetch time."""
    data = json.loads(payload)
    return Attempt(
        row_key=row_key,
        found=tuple(Found(f, v, int(c), e) for f, v, c, e in data["found"]),
        status=Status(data["status"]),
        cost_usd=0.0,
        cached=True,
        fetched_at=datetime.fromisoformat(data["fetched_at"]) if data["fetched_at"] else None,
        detail=data.get("detail", ""),
        evidence=tuple(Evidence(url, text) for url, text in data.get("evidence", [])),
    )


_STATUS = {s.value: s for s in Status}


class CachedFrame:
    """Cached answers decoded in bulk straight into the candidate frame's columns, with no object per answer.

    The same rows, in the same order, as `attempts_to_frame([decode_attempt(k, p) ...], source, wanted)`:
    values cleaned through the catalog, a row per wanted value found (or one row with the reason), then one
    per piece of evidence. `statuses` counts each answer's own status, as the stage reports it.
    """

    def __init__(self, source: str, wanted: Collection[str] | None, now: datetime) -> None:
        self.source, self.wanted, self.now = source, wanted, now
        self.columns: dict[str, list[object]] = {name: [] for name in CANDIDATE_SCHEMA}
        self.statuses: dict[str, int] = {}
        self.count = 0

    def add(self, row_key: str, payload: bytes) -> None:
        data = json.loads(payload)
        status = _STATUS[data["status"]].value
        detail = data.get("detail", "")
        fetched = datetime.fromisoformat(data["fetched_at"]) if data["fetched_at"] else self.now
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.count += 1
        found = self._found(data["found"])
        if found:
            joined = detail or ""  # a cached value carries no reason of its own: the row's detail, if any
            for name, value, confidence, evidence in found:
                self._row(row_key, name, value, confidence, evidence, 0.0, fetched, Status.FILLED.value, joined)
        else:
            empty = Status.NOT_FOUND.value if status == Status.FILLED.value else status
            self._row(row_key, None, None, None, None, 0.0, fetched, empty, detail)
        for url, text in data.get("evidence", []):
            self._row(row_key, None, text, None, url, 0.0, fetched, EVIDENCE, detail)

    def _found(self, found: list[list[Any]]) -> list[tuple[str, str, int, str]]:
        """`clean_found` over the wanted values of one answer."""
        kept = []
        for name, raw, confidence, evidence in found:
            if self.wanted is not None and name not in self.wanted:
                continue
            spec = CATALOG.get(name)
            value = spec.clean(raw) if spec else None
            if value is not None:
                kept.append((name, value, max(0, min(100, int(confidence))), evidence[:500]))
        return kept

    def _row(self, *values: object) -> None:
        key, name, value, confidence, evidence, cost, fetched, status, detail = values
        columns = self.columns
        for column, item in (
            ("row_key", key),
            ("field", name),
            ("value", value),
            ("confidence", confidence),
            ("source", self.source),
            ("evidence", evidence),
            ("cost_usd", cost),
            ("cached", True),
            ("fetched_at", fetched),
            ("status", status),
            ("detail", detail),
        ):
            columns[column].append(item)

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.columns, schema=CANDIDATE_SCHEMA)


@dataclass
class ProviderCache:
    """Bulk get/put of provider answers. When Redis fails, it says so once and steps aside."""

    client: redis.Redis | None
    prefix: str = "glaze:"
    ttl_s: int = 7 * 86_400
    negative_ttl_s: int = 86_400
    degraded_reason: str | None = field(default=None)
    hits: int = 0
    misses: int = 0

    @property
    def available(self) -> bool:
        return self.client is not None and self.degraded_reason is None

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    def key(self, provider: str, version: str, request: str) -> str:
        return self.hashed_key(provider, version, request_hash(request))

    def hashed_key(self, provider: str, version: str, hashed_request: str) -> str:
        """The key of a request known only by its hash (the ledger keeps hashes, not requests)."""
        return f"{self.prefix}cache:{provider}:{version}:{hashed_request}"

    def forget(self, keys: Iterable[str]) -> int:
        """Delete answers (a deleted table, an erased person); returns how many were there."""
        keys = list(dict.fromkeys(keys))
        if not keys or not self.available:
            return 0
        assert self.client is not None
        removed = 0
        try:
            for start in range(0, len(keys), _CHUNK):
                removed += int(self.client.delete(*keys[start : start + _CHUNK]))
        except redis.RedisError as exc:
            self._degrade(exc)
        return removed

    def _degrade(self, exc: Exception) -> None:
        if self.degraded_reason is None:
            self.degraded_reason = f"Redis unavailable ({type(exc).__name__}); running without cache"
            log.warning(self.degraded_reason)

    def get_many(self, keys: list[str]) -> dict[str, bytes]:
        if not keys or not self.available:
            self.misses += len(keys)
            return {}
        assert self.client is not None
        found: dict[str, bytes] = {}
        try:
            # Every MGET of a batch in one pipelined round trip (a pipeline of _PIPELINED MGETs at a time).
            for at in range(0, len(keys), _CHUNK * _PIPELINED):
                pipe = self.client.pipeline(transaction=False)
                chunks = [keys[s : s + _CHUNK] for s in range(at, min(at + _CHUNK * _PIPELINED, len(keys)), _CHUNK)]
                for chunk in chunks:
                    pipe.mget(chunk)
                for chunk, values in zip(chunks, pipe.execute(), strict=True):
                    for key, value in zip(chunk, values, strict=True):
                        if value is not None:
                            found[key] = value if isinstance(value, bytes) else value.encode()
        except redis.RedisError as exc:
            self._degrade(exc)
        self.hits += len(found)
        self.misses += len(keys) - len(found)
        return found

    def put_many(self, entries: Mapping[str, tuple[bytes, Status]] | Iterable[tuple[str, bytes, Status]]) -> int:
        """Write answers with a TTL by outcome (misses expire sooner). Returns how many were written."""
        items = [(k, v, s) for k, (v, s) in entries.items()] if isinstance(entries, Mapping) else list(entries)
        items = [item for item in items if item[2] in CACHEABLE]
        if not items or not self.available:
            return 0
        assert self.client is not None
        try:
            for start in range(0, len(items), _CHUNK):
                pipe = self.client.pipeline(transaction=False)
                for key, value, status in items[start : start + _CHUNK]:
                    ttl = self.ttl_s if status == Status.FILLED else self.negative_ttl_s
                    pipe.set(key, value, ex=ttl)
                pipe.execute()
        except redis.RedisError as exc:
            self._degrade(exc)
            return 0
        return len(items)


def connect_cache(url: str | None, *, prefix: str, ttl_s: int, negative_ttl_s: int) -> ProviderCache:
    """Open the cache; an unreachable Redis gives a degraded cache, never an error."""
    if not url:
        return ProviderCache(None, prefix, ttl_s, negative_ttl_s, "no Redis configured; running without cache")
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    cache = ProviderCache(client, prefix, ttl_s, negative_ttl_s)
    try:
        client.ping()
    except redis.RedisError as exc:
        cache._degrade(exc)
    return cache
