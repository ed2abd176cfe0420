"""A table's or an entity's end: remove it from Postgres, the cache and the stage files, and say what went.

`glaze delete` and `glaze purge` call these; the Dagster side (the partition and its runs) is the
CLI's part, since the core does not know Dagster.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import psycopg

from glaze_pipeline.core.intake.tables import table_info
from glaze_pipeline.core.model.fields import EntityType
from glaze_pipeline.core.model.provider import Target
from glaze_pipeline.core.model.urls import InvalidUrl, parse_entity
from glaze_pipeline.core.pipeline.runtime import Runtime
from glaze_pipeline.core.storage import erasure
from glaze_pipeline.errors import UserFacingError


class NotAnEntity(UserFacingError, ValueError):
    """`glaze purge --entity` was given something that is not a URL glaze could have stored."""


@dataclass
class Removed:
    """What a delete or a purge removed, place by place, and what it could not reach."""

    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [f"{where}: {n}" for where, n in self.counts.items()] + [f"not done: {p}" for p in self.problems]


def delete_table(runtime: Runtime, table_id: str) -> Removed:
    """Remove a table's rows from every glaze table, its stage files, and the cached answers only it used."""
    with runtime.connection() as conn, conn.transaction():
        table_info(conn, table_id)  # a clear error for an unknown table
        only_here = erasure.entities_only_in(conn, table_id)
        keys = _cache_keys(runtime, conn, only_here)
        removed = Removed(erasure.delete_table(conn, table_id, [e.row_key for e in only_here]))
    _forget_cached(runtime, keys, removed)
    files = sorted(runtime.settings.stages.glob(f"*/{table_id}.parquet"))
    for path in files:
        path.unlink()
    removed.counts["stage files"] = len(files)
    return removed


def purge_entity(runtime: Runtime, url: str) -> Removed:
    """Remove one company or person from every table, the cache, the ledger's stored answers and the stage files."""
    try:
        entity = parse_entity(url)
    except InvalidUrl as exc:
        raise NotAnEntity(f"{url!r} is not a URL glaze could have stored ({exc}); give it as it was uploaded") from exc
    known = erasure.KnownEntity(entity.row_key, entity.normalized_url, entity.entity_type.value)
    urls = list(dict.fromkeys([url, entity.input_url, entity.normalized_url]))
    with runtime.connection() as conn, conn.transaction():
        keys = _cache_keys(runtime, conn, [known])
        removed = Removed(erasure.purge_entity(conn, entity.row_key, urls))
    _forget_cached(runtime, keys, removed)
    removed.counts["stage file rows"] = drop_stage_rows(runtime.settings.stages, {entity.row_key})
    return removed


def _cache_keys(runtime: Runtime, conn: psycopg.Connection, entities: Sequence[erasure.KnownEntity]) -> list[str]:
    """Cache keys of these entities: free providers' from the URL, paid providers' from the ledger's hashes."""
    cache = runtime.cache
    keys = []
    for provider in runtime.providers():
        if provider.price_usd > 0:
            continue
        for e in entities:
            target = Target(e.row_key, EntityType(e.entity_type), e.normalized_url, ())
            keys.append(cache.key(provider.name, provider.version, provider.request_key(target)))
    requests = erasure.paid_requests(conn, [e.row_key for e in entities])
    keys += [cache.hashed_key(name, version, hashed) for name, version, hashed in requests]
    return keys


def _forget_cached(runtime: Runtime, keys: Iterable[str], removed: Removed) -> None:
    cache = runtime.cache
    removed.counts["cache entries"] = cache.forget(keys)
    if cache.degraded_reason:
        removed.problems.append(f"cache entries: {cache.degraded_reason}; they expire on their own (TTL)")


def drop_stage_rows(stages: Path, row_keys: set[str]) -> int:
    """Rewrite every stage file without these rows (atomically, as the IO manager writes); returns rows dropped."""
    dropped = 0
    keys = list(row_keys)
    for path in sorted(stages.glob("*/*.parquet")):
        scan = pl.scan_parquet(path)
        if "row_key" not in scan.collect_schema().names():
            continue
        if not scan.filter(pl.col("row_key").is_in(keys)).select(pl.len()).collect().item():
            continue  # most files never held the entity: only read a column to find out
        frame = pl.read_parquet(path)
        kept = frame.filter(~pl.col("row_key").is_in(keys))
        partial = path.with_suffix(".parquet.partial")
        kept.write_parquet(partial)
        partial.replace(path)
        dropped += frame.height - kept.height
    return dropped
