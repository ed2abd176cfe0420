"""The FastAPI application: `create_app()` builds it, `glaze api` serves it with uvicorn."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from glaze_pipeline.api import console, routes
from glaze_pipeline.api.app_paths import STATIC
from glaze_pipeline.api.service import Service
from glaze_pipeline.config import Settings, settings
from glaze_pipeline.errors import UserFacingError

KEY_PATTERN = re.compile(r"glz_[0-9a-f]{12}_[A-Za-z0-9_-]*")
REDACTED = "glz_[redacted]"
DESCRIPTION = """Enrich one company or person URL at a time, or upload whole tables.

1. Get a key: `glaze keys create NAME` (shown once). Send it in the `X-API-Key` header.
2. `POST /v1/enrich` with `{"url": …, "fields": […]}`: **200** with the result when the cache knows every
   field, else **202** `{request_id, status: "queued"}`.
3. Poll `GET /v1/enrich/{request_id}`, add `?wait=10` to the POST, or open `WS /v1/enrich/{request_id}/events`.
"""


class RedactKeys(logging.Filter):
    """Keys are never read from a URL, but a client may still put one there: the access log never shows it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(KEY_PATTERN.sub(REDACTED, a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = KEY_PATTERN.sub(REDACTED, record.msg)
        return True


def redact_keys_in_logs() -> None:
    for name in ("uvicorn.access", "uvicorn.error", "glaze_pipeline"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactKeys) for f in logger.filters):
            logger.addFilter(RedactKeys())


def create_app(config: Settings | None = None) -> FastAPI:
    s = config or settings()
    redact_keys_in_logs()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = Service(s)
        await svc.start()
        app.state.service = svc
        try:
            yield
        finally:
            await svc.close()

    app = FastAPI(
        title="glaze-pipeline API",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        openapi_tags=[
            {"name": "single records", "description": "One URL in, its fields out."},
            {"name": "tables", "description": "Whole tables: upload, status, export."},
            {"name": "service", "description": "Health and metrics."},
        ],
    )
    app.include_router(routes.router)
    app.include_router(console.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(UserFacingError)
    async def user_facing(request: Request, exc: UserFacingError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default echoes the input, and a NaN or an infinity is not JSON: it would answer 500.
        errors = [e | {"input": _json_safe(e.get("input"))} if "input" in e else e for e in exc.errors()]
        return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)

    return app


def _json_safe(value: object) -> object:
    return repr(value) if isinstance(value, float) and not math.isfinite(value) else value
