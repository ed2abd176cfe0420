"""Paid HTTP APIs: the one client factory, retries, the circuit breaker and the Provider that vendors plug into.

A vendor module only says how a target becomes a request and how an answer maps
to catalog fields (`Vendor`); everything that spends money safely lives here once:
the shared limiter slot per attempt, exponential backoff with full jitter on
429/5xx/timeouts under a total cap, Retry-After honoured up to a cap (beyond it the
provider is paused as rate_limited at once), no retry on 4xx, and a breaker that
stops calling a failing provider for a cool-down.

Retries happen only here. The Dagster step retry above re-runs a stage, but the
cache and the ledger serve every row already answered, so it never pays twice;
row failures are statuses, never exceptions, so they do not trigger step retries.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, Self

import aiohttp

from glaze_pipeline.config import ApiSettings, RetrySettings
from glaze_pipeline.core.model.candidates import Attempt, Evidence, Found
from glaze_pipeline.core.model.fields import EntityType
from glaze_pipeline.core.model.provider import BreakerState, Provider, ProviderHealth, Target
from glaze_pipeline.core.model.status import Status
from glaze_pipeline.core.providers.limiter import Limits, RateLimiter, connect_limiter_client

USER_AGENT = "glaze-pipeline/0.1"
# Worth asking again: throttling, the server's own failures and timeouts. Everything else (3xx, which
# we never follow so the key cannot leave the configured host, and 4xx) would fail the same way again.
_RETRY = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class ApiRequest:
    """A request to the configured base URL: a path, never a full URL, so a key cannot go anywhere else."""

    method: str
    path: str
    params: Mapping[str, str] | None = None
    body: Mapping[str, Any] | None = None

    @property
    def key(self) -> str:
        """The exact request, for the cache key and the ledger's request hash."""
        return json.dumps([self.method, self.path, dict(self.params or {}), self.body], sort_keys=True)


@dataclass(frozen=True)
class ApiReply:
    status: Status  # FILLED: a JSON answer to map; anything else is the row's failure
    http_status: int | None
    data: Any = None
    billed: bool = False
    detail: str = ""
    attempts: int = 0


class Vendor(Protocol):
    """The vendor-specific part of a paid provider: one small module each."""

    name: str
    version: str
    fields: frozenset[str]
    entity_types: frozenset[EntityType]

    def headers(self, api_key: str) -> dict[str, str]: ...

    def request(self, target: Target) -> ApiRequest | None:
        """The call for this target; None when there is nothing to ask (the row is not_found, free)."""
        ...

    def billed(self, http_status: int) -> bool:
        """Whether the vendor charges for an answer with this status."""
        ...

    def parse(self, target: Target, data: Any) -> tuple[list[Found], tuple[Evidence, ...]]:
        """Values found in a 200 answer, and text worth keeping as evidence for later stages (the LLM)."""
        ...


class CircuitBreaker:
    """Open after `threshold` consecutive failed attempts; after `cooldown_s` calls go again (half-open),
    and the first failure then re-opens it at once while a success closes it."""

    def __init__(self, threshold: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.failures = 0
        self.opened_until: float | None = None
        self.reason = ""
        self.status = Status.PROVIDER_ERROR
        self.trips = 0

    def allow(self) -> bool:
        if self.opened_until is None:
            return True
        if self.clock() < self.opened_until:
            return False
        self.opened_until = None  # half-open
        self.failures = self.threshold - 1
        return True

    def success(self) -> None:
        self.failures = 0

    def failure(self, reason: str, status: Status = Status.PROVIDER_ERROR) -> None:
        self.failures += 1
        if self.failures >= self.threshold:
            self.trip(reason, self.cooldown_s, status)

    def trip(self, reason: str, seconds: float, status: Status = Status.PROVIDER_ERROR) -> None:
        if self.opened_until is None:
            self.trips += 1
        self.opened_until = self.clock() + seconds
        self.reason = reason
        self.status = status

    @property
    def state(self) -> BreakerState:
        return BreakerState.CLOSED if self.opened_until is None else BreakerState.OPEN

    def describe(self) -> str:
        return "closed" if self.opened_until is None else f"open: {self.reason}"


def retry_after_s(value: str | None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def api_session(api: ApiSettings) -> aiohttp.ClientSession:
    """The one HTTP client factory for paid APIs: the configured base URL only, no redirects, no cookies."""
    connector = aiohttp.TCPConnector(limit=api.concurrency, ttl_dns_cache=300)
    return aiohttp.ClientSession(
        base_url=api.base_url + "/",
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=api.timeout_s),
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"User-Agent": USER_AGENT},
        raise_for_status=False,
    )


class ApiCaller:
    """Sends one logical call through limiter, retries and breaker; never raises for the provider's faults."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        headers: Mapping[str, str],
        limiter: RateLimiter,
        breaker: CircuitBreaker,
        retry: RetrySettings,
        billed: Callable[[int], bool],
        key_variable: str = "the API key",
    ) -> None:
        self.key_variable = key_variable
        self.session = session
        self.headers = dict(headers)
        self.limiter = limiter
        self.breaker = breaker
        self.retry = retry
        self.billed = billed
        self.requests = 0

    async def call(self, request: ApiRequest) -> ApiReply:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry.total_cap_s
        last = ApiReply(Status.PROVIDER_ERROR, None, detail="not attempted")
        for attempt in range(1, self.retry.max_attempts + 1):
            async with self.limiter.slot():
                # Checked at the last moment: a call that waited for its slot may find the circuit opened since.
                if not self.breaker.allow():
                    circuit = f"circuit {self.breaker.describe()}"
                    return ApiReply(self.breaker.status, None, detail=circuit, attempts=attempt - 1)
                self.requests += 1
                reply, retry_after = await self._send(request, attempt)
            if reply.status in (Status.FILLED, Status.NOT_FOUND):
                self.breaker.success()
                return reply
            last = reply
            if reply.http_status is not None and reply.http_status not in _RETRY and reply.http_status < 500:
                if reply.http_status in (401, 403):  # the key is refused: every other row would be too
                    reply = replace(reply, detail=f"{reply.detail}: the key in {self.key_variable} was refused")
                    self.breaker.trip(reply.detail, self.retry.breaker_cooldown_s)
                return reply
            if reply.http_status == 429:
                if retry_after is None:
                    # No Retry-After (a spent monthly quota says none): repeated ones open the circuit, so the
                    # remaining rows end rate_limited, to be asked again next run, instead of each trying 4 times.
                    self.breaker.failure(f"{reply.detail} without Retry-After", Status.RATE_LIMITED)
                wait = retry_after if retry_after is not None else self._backoff(attempt)
                if wait > self.retry.retry_after_cap_s:
                    detail = f"Retry-After {wait:.0f} s is over the {self.retry.retry_after_cap_s:.0f} s cap"
                    self.breaker.trip(detail, wait, Status.RATE_LIMITED)
                    return ApiReply(Status.RATE_LIMITED, 429, detail=detail, attempts=attempt)
                await self.limiter.defer(wait)  # every caller of this provider waits, not only this one
            else:
                self.breaker.failure(reply.detail)
                if reply.status == Status.PROVIDER_ERROR and reply.http_status == 200:
                    return reply  # malformed answer: asking again costs again
                wait = self._backoff(attempt)
            if attempt == self.retry.max_attempts or loop.time() + wait > deadline:
                break
            await asyncio.sleep(wait if reply.http_status != 429 else 0)
        return ApiReply(
            last.status, last.http_status, billed=last.billed, detail=f"gave up: {last.detail}", attempts=attempt
        )

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: uniform in [0, min(max, base·2^(attempt-1))]."""
        return random.uniform(0, min(self.retry.backoff_max_s, self.retry.backoff_base_s * 2 ** (attempt - 1)))

    async def _send(self, request: ApiRequest, attempt: int) -> tuple[ApiReply, float | None]:
        try:
            async with self.session.request(
                request.method,
                request.path.lstrip("/"),
                params=request.params,
                json=request.body,
                headers=self.headers,
                allow_redirects=False,
            ) as response:
                body = await response.read()
                status = response.status
                retry_after = retry_after_s(response.headers.get("Retry-After"))
        except TimeoutError:
            return ApiReply(Status.TIMEOUT, None, detail="timed out", attempts=attempt), None
        except aiohttp.ClientError as exc:
            return ApiReply(
                Status.PROVIDER_ERROR, None, detail=f"connection: {type(exc).__name__}", attempts=attempt
            ), None
        billed = self.billed(status)
        if status == 200:
            try:
                return ApiReply(Status.FILLED, 200, json.loads(body), billed, attempts=attempt), None
            except ValueError:
                return ApiReply(
                    Status.PROVIDER_ERROR, 200, billed=billed, detail="malformed JSON", attempts=attempt
                ), None
        if status == 404:
            return ApiReply(Status.NOT_FOUND, 404, billed=billed, detail="not found", attempts=attempt), None
        if status in (401, 403):
            said = _message(body)
            detail = f"HTTP {status}" + (f" {said!r}" if said else "")
            return ApiReply(Status.PROVIDER_ERROR, status, billed=billed, detail=detail, attempts=attempt), None
        failure = Status.RATE_LIMITED if status == 429 else Status.PROVIDER_ERROR
        return ApiReply(failure, status, billed=billed, detail=f"HTTP {status}", attempts=attempt), retry_after


def _message(body: bytes) -> str:
    """The vendor's own words in an error answer (`{"message": "Unauthorized.", "statusCode": 403}`), short."""
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    message = data.get("message") if isinstance(data, dict) else None
    return str(message)[:120] if message else ""


class ApiProvider(Provider):
    """A paid provider: a `Vendor` plus configuration. Implements the waterfall's Provider protocol."""

    def __init__(
        self,
        vendor: Vendor,
        api: ApiSettings,
        retry: RetrySettings,
        *,
        redis_url: str | None = None,
        redis_prefix: str = "glaze:",
        fallback_workers: int = 4,
        lease_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.vendor = vendor
        self.api = api
        self.retry = retry
        self.name = vendor.name
        self.version = vendor.version
        self.fields = vendor.fields
        self.entity_types = vendor.entity_types
        self.price_usd = api.price_usd
        # run_stage sends rows one by one and caches answers as they arrive.
        self.chunk_size = 1
        self.max_inflight = 2 * api.concurrency
        self.unavailable = None if api.api_key else f"{api.key_variable} is not set: {self.name} skipped"
        self.redis_url = redis_url
        self.redis_prefix = redis_prefix
        self.fallback_workers = fallback_workers
        self.lease_s = lease_s
        self.breaker = CircuitBreaker(retry.breaker_failures, retry.breaker_cooldown_s, clock)
        self.caller: ApiCaller | None = None
        self._session: aiohttp.ClientSession | None = None
        self._limiter: RateLimiter | None = None

    def health(self) -> ProviderHealth:
        limiter = self._limiter
        return ProviderHealth(
            requests=self.caller.requests if self.caller is not None else 0,
            breaker=self.breaker.state,
            breaker_reason=self.breaker.reason,
            breaker_trips=self.breaker.trips,
            limiter=limiter.mode if limiter is not None else None,
            limiter_note=limiter.mode_note if limiter is not None else "",
        )

    async def __aenter__(self) -> Self:
        limits = Limits(self.api.rate_per_s, self.api.concurrency, self.api.burst, self.api.rate_per_min)
        self._limiter = RateLimiter(
            self.name,
            limits,
            connect_limiter_client(self.redis_url),
            prefix=self.redis_prefix,
            fallback_workers=self.fallback_workers,
            lease_s=self.lease_s,
        )
        self._session = api_session(self.api)
        headers = self.vendor.headers(self.api.api_key or "")
        self.caller = ApiCaller(
            self._session, headers, self._limiter, self.breaker, self.retry, self.vendor.billed, self.api.key_variable
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
        if self._limiter is not None:
            await self._limiter.aclose()
            if self._limiter.client is not None:
                await self._limiter.client.aclose()
        self._session = None

    def request_key(self, target: Target) -> str:
        request = self.vendor.request(target)
        return request.key if request else f"none:{target.normalized_url}"

    async def enrich(self, targets: Sequence[Target]) -> list[Attempt]:
        return list(await asyncio.gather(*(self._one(t) for t in targets)))

    async def _one(self, target: Target) -> Attempt:
        if self.caller is None:
            raise RuntimeError(f"{self.name}: enrich outside `async with provider`")
        request = self.vendor.request(target)
        if request is None:
            return Attempt(target.row_key, (), Status.NOT_FOUND, detail="nothing to ask this provider")
        reply = await self.caller.call(request)
        cost = self.price_usd if reply.billed else 0.0
        fetched_at = datetime.now(UTC)
        if reply.status != Status.FILLED:
            return Attempt(target.row_key, (), reply.status, cost, fetched_at=fetched_at, detail=reply.detail)
        try:
            found, evidence = self.vendor.parse(target, reply.data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            detail = f"unexpected answer shape: {type(exc).__name__}"
            return Attempt(target.row_key, (), Status.PROVIDER_ERROR, cost, fetched_at=fetched_at, detail=detail)
        status = Status.FILLED if found else Status.NOT_FOUND
        return Attempt(target.row_key, tuple(found), status, cost, fetched_at=fetched_at, evidence=evidence)
