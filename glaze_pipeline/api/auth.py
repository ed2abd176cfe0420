"""Who is calling: an API key in the X-API-Key header (or, for the console, its session cookie), then its rate limit.

Every failure is the same 401 with the same body: a caller cannot tell a missing key from a wrong or a
revoked one. Keys are read from the header only, never from the query string, and never logged.
"""

from __future__ import annotations

import hashlib
import math
import secrets

from fastapi import HTTPException, Request, Security, WebSocket
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader

from glaze_pipeline.api.service import Service
from glaze_pipeline.core.storage.api_keys import ApiKey

HEADER = "X-API-Key"
SESSION_COOKIE = "glaze_session"
SESSION_TTL_S = 8 * 3600
UNAUTHORIZED = "a valid API key is required in the X-API-Key header (`glaze keys create` makes one)"

api_key_header = APIKeyHeader(name=HEADER, auto_error=False, description="Your key from `glaze keys create`.")


def service(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


def _refused() -> HTTPException:
    return HTTPException(401, UNAUTHORIZED, headers={"WWW-Authenticate": "ApiKey"})


async def limited(svc: Service, key: ApiKey) -> ApiKey:
    wait = await svc.admit(key)
    if wait > 0:
        raise HTTPException(
            429,
            f"rate limit of {key.rate_per_min} requests per minute reached; retry in {math.ceil(wait)} s",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    return key


async def caller(request: Request, token: str | None = Security(api_key_header)) -> ApiKey:
    """The key of an API call (the X-API-Key header), within its rate limit."""
    svc = service(request)
    key = await run_in_threadpool(svc.authenticate, token)
    if key is None:
        raise _refused()
    return await limited(svc, key)


# --- the console's session: the key is typed once, the browser then holds only a random session id ------


def _session_key(svc: Service, session: str) -> str:
    return f"{svc.settings.redis_prefix}console:session:{hashlib.sha256(session.encode()).hexdigest()}"


async def open_session(svc: Service, token: str) -> str | None:
    """A new session id for a valid key, or None; Redis keeps only the key id, under the session id's hash."""
    key = await run_in_threadpool(svc.authenticate, token)
    if key is None or svc.redis is None:
        return None
    session = secrets.token_urlsafe(32)
    await svc.redis.set(_session_key(svc, session), key.key_id, ex=SESSION_TTL_S)
    return session


async def close_session(svc: Service, session: str | None) -> None:
    if session and svc.redis is not None:
        await svc.redis.delete(_session_key(svc, session))


async def session_key(svc: Service, session: str | None) -> ApiKey | None:
    """The console user's key, if the session is live and the key not revoked since."""
    if not session or svc.redis is None:
        return None
    key_id = await svc.redis.get(_session_key(svc, session))
    if key_id is None:
        return None
    return await run_in_threadpool(svc.key_by_id, key_id.decode() if isinstance(key_id, bytes) else key_id)


async def socket_caller(websocket: WebSocket) -> ApiKey | None:
    """A WebSocket's key: the X-API-Key header of its handshake, or the console's session cookie."""
    svc: Service = websocket.app.state.service
    token = websocket.headers.get(HEADER)
    if token is not None:
        return await run_in_threadpool(svc.authenticate, token)
    return await session_key(svc, websocket.cookies.get(SESSION_COOKIE))
