"""The `/v1` API (single records, tables) and the service endpoints (`/healthz`, `/metrics`)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response, WebSocket
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from starlette.background import BackgroundTask
from starlette.websockets import WebSocketDisconnect

from glaze_pipeline.api import metrics
from glaze_pipeline.api.auth import caller, service, socket_caller
from glaze_pipeline.api.schemas import (
    EnrichBody,
    EnrichResult,
    Health,
    Problem,
    RequestEvent,
    TableCreated,
    TableSummary,
)
from glaze_pipeline.api.service import Service
from glaze_pipeline.api.uploads import BadForm, UploadTooLarge
from glaze_pipeline.core.storage.api_keys import ApiKey
from glaze_pipeline.core.storage.requests import IdempotencyConflict
from glaze_pipeline.errors import UserFacingError

router = APIRouter()
Caller = Annotated[ApiKey, Depends(caller)]
Svc = Annotated[Service, Depends(service)]
MAX_WAIT_QUERY_S = 300.0  # the schema's bound; GLAZE_API_MAX_WAIT_S caps it lower

AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing, empty, wrong or revoked API key (one answer for all)."},
    429: {"model": Problem, "description": "The key's rate limit; `Retry-After` says when to come back."},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "No such id for this key."}}


@router.post(
    "/v1/enrich",
    status_code=202,
    response_model=EnrichResult,
    tags=["single records"],
    summary="Enrich one URL",
    responses={
        200: {
            "model": EnrichResult,
            "description": "Done: every wanted field was fresh in the cache, or `wait` sufficed.",
        },
        202: {
            "model": EnrichResult,
            "description": "Queued: poll `GET /v1/enrich/{request_id}` or open its WebSocket.",
        },
        409: {"model": Problem, "description": "The Idempotency-Key was used before with a different body."},
        **AUTH_ERRORS,
    },
)
async def enrich(
    body: EnrichBody,
    response: Response,
    key: Caller,
    svc: Svc,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=MAX_WAIT_QUERY_S,
            description="Hold the connection up to this many seconds (capped by GLAZE_API_MAX_WAIT_S) for the result.",
        ),
    ] = 0,
    idempotency_key: Annotated[
        str | None, Header(max_length=200, description="The same key returns the same request.")
    ] = None,
) -> EnrichResult:
    """A cache hit answers 200 at once with no run; otherwise the request is queued (202) for the requests sensor."""
    try:
        entity = body.entity()
    except ValueError as exc:
        raise invalid("type", exc, body.type) from exc
    try:
        wanted = body.wanted(entity)
    except ValueError as exc:
        raise invalid("fields", exc, [f.value for f in body.fields]) from exc
    try:
        request = await run_in_threadpool(svc.submit, key, entity, wanted, body.max_cost_usd, idempotency_key)
    except IdempotencyConflict as exc:
        raise HTTPException(409, str(exc)) from exc
    if not request.done and wait > 0:
        request = await svc.wait_done(key, request, min(wait, svc.settings.api.max_wait_s))
    response.status_code = 200 if request.done else 202
    if not request.done:
        response.headers["Location"] = f"/v1/enrich/{request.request_id}"
    return svc.result(request)


def invalid(field: str, exc: ValueError, value: object) -> RequestValidationError:
    """A body that is well-formed but wrong (the URL is another kind, a field does not fit it): 422 naming it."""
    return RequestValidationError([{"type": "value_error", "loc": ("body", field), "msg": str(exc), "input": value}])


@router.get(
    "/v1/enrich/{request_id}",
    response_model=EnrichResult,
    tags=["single records"],
    summary="A request's status and result",
    responses={**NOT_FOUND, **AUTH_ERRORS},
)
async def enrich_status(request_id: uuid.UUID, key: Caller, svc: Svc) -> EnrichResult:
    request = await run_in_threadpool(svc.request, key, request_id)
    if request is None:
        raise HTTPException(404, f"no request {request_id} for this key")
    return svc.result(request)


@router.websocket("/v1/enrich/{request_id}/events")
async def enrich_events(websocket: WebSocket, request_id: str) -> None:
    """Pushes a `RequestEvent` at each status change until the request is done, then closes (1000).

    Authenticate with the X-API-Key header of the handshake. A bad key closes with 1008, an unknown id with 4404.
    """
    svc: Service = websocket.app.state.service
    key = await socket_caller(websocket)
    if key is None:
        await websocket.close(code=1008, reason="a valid API key is required")
        return
    request = await run_in_threadpool(svc.request, key, request_id)
    await websocket.accept()
    if request is None:
        await websocket.close(code=4404, reason="no such request for this key")
        return
    try:
        async for state in svc.watch(key, request):
            result = svc.result(state)
            event = RequestEvent(
                request_id=result.request_id, status=result.status, result=result if state.done else None
            )
            await websocket.send_text(event.model_dump_json())
        await websocket.close(code=1000)
    except (WebSocketDisconnect, asyncio.CancelledError):
        return


@router.post(
    "/v1/tables",
    status_code=201,
    response_model=TableCreated,
    tags=["tables"],
    summary="Upload a table",
    responses={
        413: {"model": Problem, "description": "Larger than GLAZE_MAX_UPLOAD_MB; refused while it streams."},
        422: {
            "model": Problem,
            "description": "Refused as `glaze upload` refuses it; the detail names the column or row.",
        },
        **AUTH_ERRORS,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {"type": "string", "format": "binary", "description": "CSV, TSV or Parquet"},
                            "name": {"type": "string", "description": "Table name; default: the file name"},
                            "url_column": {"type": "string", "description": "Column with the URLs; default: detected"},
                            "fields": {"type": "string", "description": "Comma-separated fields; default: all"},
                        },
                    },
                    "encoding": {"file": {"contentType": "text/csv"}},
                }
            },
        }
    },
)
async def upload_table(request: Request, key: Caller, svc: Svc) -> TableCreated:
    """Streamed to disk with a size cap, validated as `glaze upload` validates, then registered for the sensor."""
    try:
        return await svc.upload(
            key, request.headers.get("content-type", ""), request.headers.get("content-length"), request.stream()
        )
    except UploadTooLarge as exc:
        raise HTTPException(413, str(exc), headers={"Connection": "close"}) from exc
    except (BadForm, UserFacingError) as exc:
        raise HTTPException(422, str(exc)) from exc


@router.get(
    "/v1/tables", response_model=list[TableSummary], tags=["tables"], summary="Your tables", responses=AUTH_ERRORS
)
async def list_tables(key: Caller, svc: Svc) -> list[TableSummary]:
    return await run_in_threadpool(svc.tables, key)


@router.get(
    "/v1/tables/{table_id}",
    response_model=TableSummary,
    tags=["tables"],
    summary="One table: status, coverage, cost, run",
    responses={**NOT_FOUND, **AUTH_ERRORS},
)
async def get_table(table_id: str, key: Caller, svc: Svc) -> TableSummary:
    found = await run_in_threadpool(svc.tables, key, table_id)
    if not found:
        raise HTTPException(404, f"no table {table_id!r} for this key")
    return found[0]


@router.get(
    "/v1/tables/{table_id}/export",
    tags=["tables"],
    summary="Your rows back, enriched columns added",
    response_class=FileResponse,
    responses={
        200: {"content": {"text/csv": {}, "application/vnd.apache.parquet": {}}, "description": "The export file."},
        **NOT_FOUND,
        **AUTH_ERRORS,
    },
)
async def export_table(table_id: str, key: Caller, svc: Svc, format: Literal["csv", "parquet"] = "csv") -> FileResponse:
    """CSV cells that a spreadsheet would run as formulas are escaped, as `glaze export` escapes them."""
    return await export_response(svc, key, table_id, format)


async def export_response(svc: Service, key: ApiKey, table_id: str, fmt: str) -> FileResponse:
    path = await run_in_threadpool(svc.export, key, table_id, fmt)
    if path is None:
        raise HTTPException(404, f"no table {table_id!r} for this key")
    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/vnd.apache.parquet"
    return FileResponse(
        path,
        media_type=media,
        filename=f"{table_id}_enriched.{fmt}",
        background=BackgroundTask(path.unlink, missing_ok=True),
    )


@router.get(
    "/healthz",
    response_model=Health,
    tags=["service"],
    summary="Postgres and Redis reachable",
    responses={503: {"model": Health}},
)
async def healthz(svc: Svc) -> JSONResponse:
    state = await svc.health()
    return JSONResponse(state, status_code=200 if state["status"] == "ok" else 503)


@router.get(
    "/metrics",
    tags=["service"],
    summary="Prometheus text: queue depth, duration, throughput, success rate, costs",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus exposition format."}},
)
async def prometheus(svc: Svc) -> Response:
    body = await run_in_threadpool(metrics.render, svc.figures)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
