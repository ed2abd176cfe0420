"""What the API does, shared by the `/v1` routes and the console: one object opened at startup, closed at shutdown."""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import redis
import redis.asyncio as aioredis

from glaze_pipeline.api import reads
from glaze_pipeline.api.db import Databases
from glaze_pipeline.api.events import RequestEvents, changed
from glaze_pipeline.api.runs import RunLookup
from glaze_pipeline.api.schemas import EnrichResult, TableCreated, TableSummary
from glaze_pipeline.api.uploads import UploadedForm, receive_form
from glaze_pipeline.config import Settings
from glaze_pipeline.core.intake.export import export_frame, write_export
from glaze_pipeline.core.intake.tables import TableStatus, table_info
from glaze_pipeline.core.intake.uploads import Uploaded, upload_file
from glaze_pipeline.core.model.urls import Entity
from glaze_pipeline.core.pipeline.record import CachedRecords
from glaze_pipeline.core.pipeline.runtime import Runtime, connect_runtime
from glaze_pipeline.core.providers.limiter import Limits, RateLimiter
from glaze_pipeline.core.storage.api_keys import ApiKey, authenticate, key_by_id
from glaze_pipeline.core.storage.cache import connect_cache
from glaze_pipeline.core.storage.readonly import reader_url
from glaze_pipeline.core.storage.requests import EnrichRequest, NewRequest, create_request, get_request

MULTIPART_FRAMING_BYTES = 64 * 1024  # part headers and boundaries around the file in a POST /v1/tables body
CACHE_RETRY_S = 30.0  # a cache that lost Redis tries to reconnect this often


class Service:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runtime: Runtime = connect_runtime(settings)  # the migrated database, Redis and the provider cache
        self.db = Databases(
            self.runtime.database_url, reader_url(self.runtime.database_url, settings.readonly_database_url)
        )
        self.events = RequestEvents(self.runtime.database_url)
        self.runs = RunLookup(settings)
        url = self.runtime.redis_url
        self.redis = aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5) if url else None
        self._limiters: dict[str, RateLimiter] = {}
        self.cached_records = CachedRecords()  # a hit asked again: one MGET instead of the whole cache walk
        self._cache_checked = time.monotonic()
        self.uploads = settings.home / "uploads"
        # One upload cap for every way in (GLAZE_MAX_UPLOAD_MB); the body may add a little multipart framing.
        self.max_body_bytes = settings.upload_limits.max_bytes + MULTIPART_FRAMING_BYTES

    async def start(self) -> None:
        self.events.start()

    async def close(self) -> None:
        await self.events.stop()
        if self.redis is not None:
            await self.redis.aclose()
        self.db.close()
        self.runtime.close()

    # --- keys ----------------------------------------------------------------------------------

    def authenticate(self, token: str | None) -> ApiKey | None:
        with self.db.writing() as conn:
            return authenticate(conn, token)

    def key_by_id(self, key_id: str) -> ApiKey | None:
        with self.db.writing() as conn:
            return key_by_id(conn, key_id)

    async def admit(self, key: ApiKey) -> float:
        """0 when the key may make this request now; otherwise the seconds until it may (its rate limit)."""
        limiter = self._limiters.get(key.key_id)
        if limiter is None:
            limits = Limits(
                rate_per_s=key.rate_per_min / 60, concurrency=1, burst=key.burst, rate_per_min=key.rate_per_min
            )
            limiter = RateLimiter(f"api_key:{key.key_id}", limits, self.redis, prefix=self.settings.redis_prefix)
            self._limiters[key.key_id] = limiter
        return await limiter.admit()

    # --- single records ------------------------------------------------------------------------

    def submit(
        self, key: ApiKey, entity: Entity, wanted: list[str], max_cost_usd: float | None, idempotency_key: str | None
    ) -> EnrichRequest:
        """Answer from the cache when every stage is there (completed at once), else queue it for the sensor."""
        providers = [self.runtime.provider(name) for name in self.settings.waterfall_order]
        answered = self.cached_records.answer(self._cache(), providers, entity, wanted, self.settings.min_confidence)
        new = NewRequest(
            key.key_id,
            entity.input_url,
            entity.normalized_url,
            entity.entity_type.value,
            entity.row_key,
            wanted,
            max_cost_usd,
            idempotency_key,
        )
        with self.db.writing() as conn:
            request, _ = create_request(conn, new, answered=answered)
        return request

    def _cache(self) -> Any:
        cache = self.runtime.cache
        if cache.degraded_reason and time.monotonic() - self._cache_checked > CACHE_RETRY_S:
            self._cache_checked = time.monotonic()
            s = self.settings
            fresh = connect_cache(
                self.runtime.redis_url,
                prefix=s.redis_prefix,
                ttl_s=s.cache_ttl_s,
                negative_ttl_s=s.negative_cache_ttl_s,
            )
            if fresh.available:
                cache.close()
                self.runtime.cache = cache = fresh
        return cache

    def request(self, key: ApiKey, request_id: uuid.UUID | str) -> EnrichRequest | None:
        with self.db.reading() as conn:
            return get_request(conn, request_id, key.key_id)

    async def wait_done(self, key: ApiKey, request: EnrichRequest, timeout: float) -> EnrichRequest:
        """The request once it is done, or as it is when `timeout` runs out."""
        deadline = time.monotonic() + timeout
        rid = str(request.request_id)
        with self.events.watch(rid) as event:
            while not request.done and (left := deadline - time.monotonic()) > 0:
                await changed(event, left)
                found = await asyncio.to_thread(self.request, key, rid)
                request = found or request
        return request

    async def watch(self, key: ApiKey, request: EnrichRequest) -> AsyncIterator[EnrichRequest]:
        """Every status the request takes from now on, ending with the finished request."""
        rid = str(request.request_id)
        with self.events.watch(rid) as event:
            yield request
            last = request.status
            while not request.done:
                await changed(event, 60.0)
                found = await asyncio.to_thread(self.request, key, rid)
                request = found or request
                if request.status != last:
                    last = request.status
                    yield request

    def result(self, request: EnrichRequest) -> EnrichResult:
        result = request.result or {}
        return EnrichResult(
            request_id=str(request.request_id),
            status=request.status,  # type: ignore[arg-type]
            url=request.input_url,
            normalized_url=request.normalized_url,
            entity_type=request.entity_type,
            fields=request.wanted_fields,
            cache_hit=request.cache_hit,
            data=result.get("data") if request.status == "completed" else None,
            gaps=result.get("gaps") if request.status == "completed" else None,
            costs=result.get("costs") if request.status == "completed" else None,
            error=request.error,
            created_at=request.created_at,
            finished_at=request.finished_at,
            run_id=request.run_id,
            run_url=self.runs.url(request.run_id),
        )

    # --- tables --------------------------------------------------------------------------------

    async def upload(
        self, key: ApiKey, content_type: str, length: str | None, body: AsyncIterator[bytes]
    ) -> TableCreated:
        """Stream the file to GLAZE_HOME/uploads, validate it as `glaze upload` does, register it for the sensor."""
        folder = self.uploads / uuid.uuid4().hex
        folder.mkdir(parents=True, exist_ok=True)
        try:
            form = await receive_form(content_type, length, body, folder, max_bytes=self.max_body_bytes)
            uploaded = await asyncio.to_thread(self._register, key, form)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # nothing half-written stays behind
            raise
        c = uploaded.counts
        return TableCreated(
            table_id=uploaded.table_id,
            url_column=uploaded.url_column,
            fields=uploaded.wanted,
            rows_in=c.rows_in,
            accepted=c.accepted,
            rejected=c.rejected,
            duplicates=c.duplicates,
            status=TableStatus.PENDING,
        )

    def _register(self, key: ApiKey, form: UploadedForm) -> Uploaded:
        assert form.file_path is not None
        f = form.fields
        with self.db.writing() as conn, conn.transaction():
            uploaded = register_table_file(
                conn,
                form.file_path,
                name=f.get("name") or None,
                url_column=f.get("url_column") or None,
                fields=f.get("fields") or None,
            )
            conn.execute("UPDATE glaze.tables SET api_key_id = %s WHERE table_id = %s", (key.key_id, uploaded.table_id))
        return uploaded

    def tables(self, key: ApiKey, table_id: str | None = None) -> list[TableSummary]:
        with self.db.reading() as conn:
            rows = reads.tables_of(conn, key.key_id, table_id)
        return [
            TableSummary(**row, run_url=self.runs.url(row["last_run_id"]), progress=self._progress(row)) for row in rows
        ]

    def _progress(self, row: dict[str, Any]) -> dict[str, Any] | None:
        if row["status"] not in (TableStatus.QUEUED, TableStatus.RUNNING, TableStatus.FAILED):
            return None
        return self.runs.progress(row["last_run_id"])

    def export(self, key: ApiKey, table_id: str, fmt: str) -> Path | None:
        """The table's export written to a temporary file (formula cells escaped in CSV), or None if not the key's."""
        with self.db.reading() as conn:
            if not reads.tables_of(conn, key.key_id, table_id):
                return None
            frame = export_frame(conn, table_info(conn, table_id))
        folder = self.uploads / ".exports"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{uuid.uuid4().hex}.{fmt}"
        write_export(frame, path, fmt)
        return path

    # --- health and metrics --------------------------------------------------------------------

    async def health(self) -> dict[str, str]:
        postgres = redis_state = "ok"
        try:
            await asyncio.to_thread(self._ping_postgres)
        except psycopg.Error as exc:
            postgres = f"unreachable ({type(exc).__name__})"
        try:
            if self.redis is None:
                redis_state = "not configured"
            else:
                await self.redis.ping()
        except (redis.RedisError, OSError) as exc:
            redis_state = f"unreachable ({type(exc).__name__})"
        return {
            "status": "ok" if postgres == redis_state == "ok" else "degraded",
            "postgres": postgres,
            "redis": redis_state,
        }

    def _ping_postgres(self) -> None:
        with self.db.reading() as conn:
            reads.ping(conn)

    def figures(self) -> tuple[reads.Figures, dict[float, int], float]:
        with self.db.reading() as conn:
            return reads.figures(conn)


def register_table_file(
    conn: psycopg.Connection, path: Path, *, name: str | None, url_column: str | None, fields: str | None
) -> Uploaded:
    """The one call that turns an HTTP upload into a registered table, exactly as `glaze upload` and the inbox do."""
    return upload_file(conn, path, name=name, url_column=url_column, fields=fields, status=TableStatus.PENDING)
