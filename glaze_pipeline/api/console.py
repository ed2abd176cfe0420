"""The console at `/`: upload a table and pick its fields, watch tables run, download exports, try one URL.

Plain server-rendered HTML (Jinja) and one small script that refreshes the tables' progress. The browser
holds a random session id in an HttpOnly, SameSite=Strict cookie; the key itself is typed once and never
stored by the browser.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from glaze_pipeline.api.app_paths import TEMPLATES
from glaze_pipeline.api.auth import (
    SESSION_COOKIE,
    SESSION_TTL_S,
    close_session,
    limited,
    open_session,
    service,
    session_key,
)
from glaze_pipeline.api.routes import export_response
from glaze_pipeline.api.schemas import EnrichBody, resolve_fields
from glaze_pipeline.api.service import Service
from glaze_pipeline.api.uploads import BadForm, UploadTooLarge
from glaze_pipeline.core.model.fields import CATALOG, FIELD_NAMES
from glaze_pipeline.core.storage.api_keys import ApiKey
from glaze_pipeline.errors import UserFacingError

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=TEMPLATES)
Svc = Annotated[Service, Depends(service)]
TRY_WAIT_S = 20.0


class LoginRequired(Exception):
    pass


async def console_key(request: Request) -> ApiKey | None:
    svc = service(request)
    key = await session_key(svc, request.cookies.get(SESSION_COOKIE))
    return await limited(svc, key) if key is not None else None


ConsoleKey = Annotated[ApiKey | None, Depends(console_key)]


def _same_origin(request: Request) -> None:
    """Form posts must come from the console itself (SameSite=Strict already keeps other sites' cookies out)."""
    origin = request.headers.get("origin")
    if origin is not None and origin.rstrip("/") != str(request.base_url).rstrip("/"):
        raise HTTPException(403, "forms are accepted from the console only")


def _page(request: Request, name: str, **context: object) -> HTMLResponse:
    fields = [(n, CATALOG[n].description, CATALOG[n].subject.value) for n in FIELD_NAMES]
    return templates.TemplateResponse(request, name, {"fields": fields, **context})


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, key: ConsoleKey, svc: Svc) -> Response:
    if key is None:
        return _page(request, "login.html", error=None)
    tables = await run_in_threadpool(svc.tables, key)
    uploaded = next((t for t in tables if t.table_id == request.query_params.get("uploaded")), None)
    message = (
        f"{uploaded.table_id}: {uploaded.rows_in} rows in = {uploaded.accepted} accepted + {uploaded.rejected}"
        f" rejected + {uploaded.duplicates} duplicates; its run starts within seconds"
        if uploaded
        else None
    )
    return _page(request, "tables.html", key=key, tables=tables, message=message)


@router.post("/console/login")
async def login(request: Request, svc: Svc, api_key: Annotated[str, Form(max_length=200)]) -> Response:
    _same_origin(request)
    session = await open_session(svc, api_key)
    if session is None:
        return _page(request, "login.html", error="That key is not valid.")
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session,
        max_age=SESSION_TTL_S,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/console/logout")
async def logout(request: Request, svc: Svc) -> Response:
    _same_origin(request)
    await close_session(svc, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.post("/console/tables")
async def upload(request: Request, key: ConsoleKey, svc: Svc) -> Response:
    _same_origin(request)
    if key is None:
        return RedirectResponse("/", status_code=303)
    try:
        created = await svc.upload(
            key, request.headers.get("content-type", ""), request.headers.get("content-length"), request.stream()
        )
    except (UploadTooLarge, BadForm, UserFacingError) as exc:
        tables = await run_in_threadpool(svc.tables, key)
        return _page(request, "tables.html", key=key, tables=tables, message=None, error=str(exc))
    return RedirectResponse(f"/?{urlencode({'uploaded': created.table_id})}", status_code=303)


@router.get("/console/tables.json")
async def tables_json(key: ConsoleKey, svc: Svc) -> Response:
    if key is None:
        raise HTTPException(401, "log in again")
    tables = await run_in_threadpool(svc.tables, key)
    return Response("[" + ",".join(t.model_dump_json() for t in tables) + "]", media_type="application/json")


@router.get("/console/tables/{table_id}/export")
async def export(table_id: str, key: ConsoleKey, svc: Svc, format: str = "csv") -> Response:
    if key is None:
        return RedirectResponse("/", status_code=303)
    if format not in ("csv", "parquet"):
        raise HTTPException(404, "export as csv or parquet")
    return await export_response(svc, key, table_id, format)


@router.post("/console/try", response_class=HTMLResponse)
async def try_url(
    request: Request,
    key: ConsoleKey,
    svc: Svc,
    url: Annotated[str, Form(max_length=2048)],
    fields: Annotated[list[str], Form()],
) -> Response:
    _same_origin(request)
    if key is None:
        return RedirectResponse("/", status_code=303)
    try:
        body = EnrichBody.model_validate({"url": url, "fields": fields})
        entity = body.entity()
        wanted = resolve_fields([f.value for f in body.fields], entity.entity_type)
    except ValueError as exc:
        return _page(request, "try.html", key=key, url=url, error=_first_error(exc), result=None)
    req = await run_in_threadpool(svc.submit, key, entity, wanted, None, None)
    req = await svc.wait_done(key, req, min(TRY_WAIT_S, svc.settings.api.max_wait_s))
    return _page(request, "try.html", key=key, url=url, error=None, result=svc.result(req))


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        return f"{'.'.join(str(p) for p in first.get('loc', ()))}: {first.get('msg')}"
    return str(exc)
