"""One rate and concurrency limiter per paid provider, shared by every process through Redis.

Algorithm: GCRA as slot reservation. A provider allowed `rate` requests per second
has an emission interval T = 1/rate (the per-minute limit, when set, is enforced as
the stricter even rate 60/rate_per_min). Redis keeps the next free slot time (TAT);
one Lua call reserves a block of consecutive slots `max(TAT, now - (burst-1)·T)`,
`+T`, `+2T`, … and moves TAT past them, so slots are never handed out twice, across
any number of processes. A request waits for its slot, then goes.

Burst: after an idle spell at most `burst` requests may go back to back; the
guarantee is that any window of w seconds holds at most `rate·w + burst` request
starts (the +1 of the fence post is counted in `burst`, whose minimum is 1).

Concurrency: the same Lua call keeps per-process permit counts with a lease that
each call renews, so a SIGKILLed process's permits come back after `lease_s`
(GLAZE_LEASE_S, 15 s by default). While a process holds permits it also renews
its lease every third of it, so a live call longer than the lease keeps its permit.
Releases are batched into the next call instead of costing a round trip each.

Redis down: the limiter says so once and falls back to the same algorithm in
process memory with 1/`fallback_workers` of the rate and concurrency, so several
processes that lost Redis together still stay under the provider's limit.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import uuid
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

import redis
import redis.asyncio as aioredis

from glaze_pipeline.core.model.provider import LimiterMode

log = logging.getLogger(__name__)
BLOCK_S = 0.005  # slots reserved per Redis round trip, in seconds of the rate

_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local pid, want, release = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local interval, tolerance, maxc, lease = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local expiry = redis.call('HGETALL', KEYS[3])
for i = 1, #expiry, 2 do
  if tonumber(expiry[i + 1]) < now then
    redis.call('HDEL', KEYS[2], expiry[i])
    redis.call('HDEL', KEYS[3], expiry[i])
  end
end
local mine = math.max(0, tonumber(redis.call('HGET', KEYS[2], pid) or '0') - release)
redis.call('HSET', KEYS[2], pid, mine)
local held = 0
for _, c in ipairs(redis.call('HVALS', KEYS[2])) do held = held + tonumber(c) end
local grant = math.max(0, math.min(want, maxc - held))
mine = mine + grant
if mine > 0 then
  redis.call('HSET', KEYS[2], pid, mine)
  redis.call('HSET', KEYS[3], pid, now + lease)
else
  redis.call('HDEL', KEYS[2], pid)
  redis.call('HDEL', KEYS[3], pid)
end
redis.call('PEXPIRE', KEYS[2], math.floor(lease / 1000) + 1000)
redis.call('PEXPIRE', KEYS[3], math.floor(lease / 1000) + 1000)
if grant == 0 then return {0, 0} end
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local start = math.max(tat, now - tolerance)
local next_tat = start + grant * interval
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', math.floor((next_tat - now) / 1000) + 60000)
return {grant, string.format('%.0f', start - now)}
"""

_DEFER = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local until_ = now + tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ > tat then
  redis.call('SET', KEYS[1], string.format('%.0f', until_), 'PX', math.floor(tonumber(ARGV[1]) / 1000) + 60000)
end
return 1
"""

# Admission without waiting (the API's per-key request limit): the same GCRA slot as _RESERVE, but a
# request that would have to wait is refused and moves nothing, so hammering does not push the slot on.
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local start = math.max(tat, now - tolerance)
if start > now then return string.format('%.0f', start - now) end
local next_tat = start + interval
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', math.floor((next_tat - now) / 1000) + 60000)
return 0
"""


@dataclass(frozen=True)
class Limits:
    rate_per_s: float
    concurrency: int
    burst: int = 1
    rate_per_min: float = 0.0

    @property
    def interval_s(self) -> float:
        """Seconds between slots: the stricter of the per-second and the per-minute rate."""
        per_minute = 60.0 / self.rate_per_min if self.rate_per_min > 0 else 0.0
        return max(1.0 / self.rate_per_s, per_minute)

    def share(self, workers: int) -> Limits:
        """This process's part when it cannot coordinate with the others."""
        return Limits(self.rate_per_s / workers, max(1, self.concurrency // workers), 1, self.rate_per_min / workers)


class RateLimiter:
    """`async with limiter.slot():` around each request; one instance per provider per process (per stage)."""

    def __init__(
        self,
        name: str,
        limits: Limits,
        client: aioredis.Redis | None,
        *,
        prefix: str = "glaze:",
        fallback_workers: int = 4,
        lease_s: float = 15.0,
    ) -> None:
        self.name = name
        self.limits = limits
        self.client = client
        self.fallback_workers = fallback_workers
        self.degraded_reason: str | None = None if client is not None else "no Redis: limiting this process alone"
        self._keys = [f"{prefix}limit:{name}:{k}" for k in ("tat", "held", "lease")]
        self._pid = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._lease_us = int(lease_s * 1e6)
        # A block is ~5 ms of slots: few round trips at high rates, fair interleaving between processes,
        # and few permits held by requests still waiting for their slot.
        self._block = max(1, min(64, math.ceil(limits.rate_per_s * BLOCK_S)))
        self._waiters: deque[asyncio.Future[float]] = deque()
        self._pending_release = 0
        self._released = asyncio.Event()
        self._refill: asyncio.Task[None] | None = None
        self._flush: asyncio.Task[None] | None = None
        self._renew: asyncio.Task[None] | None = None
        self._running = 0  # requests of this process inside `slot()`, holding a permit
        self._pause_until = 0.0
        # In-process state for the fallback (and for the tests of the algorithm itself).
        self._local_tat = 0.0
        self._local_held = 0
        self._reserve_script = client.register_script(_RESERVE) if client is not None else None
        self._defer_script = client.register_script(_DEFER) if client is not None else None
        self._admit_script = client.register_script(_ADMIT) if client is not None else None

    @property
    def mode(self) -> LimiterMode:
        return LimiterMode.SHARED if self.degraded_reason is None else LimiterMode.LOCAL

    @property
    def mode_note(self) -> str:
        """Why the limiter runs alone, and with which share of the limits; empty while shared."""
        return "" if self.degraded_reason is None else f"1/{self.fallback_workers}: {self.degraded_reason}"

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for a rate slot and a concurrency permit; hold the permit while the request runs."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[float] = loop.create_future()
        self._waiters.append(future)
        if self._refill is None or self._refill.done():
            self._refill = asyncio.create_task(self._refill_loop())
        try:
            at = await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release()  # granted just as we were cancelled: hand the permit back
            raise
        self._running += 1
        if self.degraded_reason is None and self.client is not None and (self._renew is None or self._renew.done()):
            self._renew = asyncio.create_task(self._renew_lease())
        try:
            # One timer per request: re-checking in a loop would spin on the loop's timer resolution.
            if (delay := max(at, self._pause_until) - loop.time()) > 0:
                await asyncio.sleep(delay)
            while (pause := self._pause_until - loop.time()) > 0.001:  # a Retry-After came in meanwhile
                await asyncio.sleep(pause)
            yield
        finally:
            self._running -= 1
            self._release()

    async def admit(self) -> float:
        """Take a slot now if one is free: 0.0, or the seconds until the next one (nothing taken then)."""
        if self._admit_script is not None and self.degraded_reason is None:
            limits = self.limits
            try:
                wait_us = await self._admit_script(
                    keys=self._keys[:1],
                    args=[int(limits.interval_s * 1e6), int((limits.burst - 1) * limits.interval_s * 1e6)],
                )
                return int(wait_us) / 1e6
            except redis.RedisError as exc:
                self._degrade(exc)
        limits = self.limits if self.client is None else self.limits.share(self.fallback_workers)
        now = asyncio.get_running_loop().time()
        start = max(self._local_tat, now - (limits.burst - 1) * limits.interval_s)
        if start > now:
            return start - now
        self._local_tat = start + limits.interval_s
        return 0.0

    async def defer(self, seconds: float) -> None:
        """The provider said Retry-After: nobody, in any process, starts a request before then."""
        loop = asyncio.get_running_loop()
        self._pause_until = max(self._pause_until, loop.time() + seconds)
        if self._defer_script is not None and self.degraded_reason is None:
            try:
                await self._defer_script(keys=self._keys[:1], args=[int(seconds * 1e6)])
            except redis.RedisError as exc:
                self._degrade(exc)
        self._local_tat = max(self._local_tat, loop.time() + seconds)

    async def aclose(self) -> None:
        """Give back permits not yet returned to Redis."""
        for task in (self._refill, self._flush, self._renew):
            if task is not None and not task.done():
                task.cancel()
        if self._pending_release and self.degraded_reason is None and self._reserve_script is not None:
            with suppress(redis.RedisError):  # otherwise the lease expires on its own
                await self._reserve(0)

    # --- internals -----------------------------------------------------------------------------

    async def _renew_lease(self) -> None:
        """Renew this process's permits every third of the lease while it holds any (a call may outlast the lease)."""
        while self._running > 0 and self.degraded_reason is None:
            await asyncio.sleep(self._lease_us / 3e6)
            if self._running > 0:
                await self._reserve(0)  # wants nothing: renews the lease (and hands back pending releases)

    def _release(self) -> None:
        self._pending_release += 1
        self._released.set()
        if not self._waiters and (self._flush is None or self._flush.done()):
            self._flush = asyncio.create_task(self._flush_releases())

    async def _flush_releases(self) -> None:
        await asyncio.sleep(0)  # coalesce releases that land in the same tick
        if self._pending_release and not self._waiters:
            await self._reserve(0)

    def _degrade(self, exc: Exception) -> None:
        if self.degraded_reason is None:
            self.degraded_reason = f"Redis unavailable ({type(exc).__name__})"
            log.warning("%s limiter: %s; limiting this process to 1/%d", self.name, exc, self.fallback_workers)
            self._pending_release = 0  # the Redis lease expires by itself

    async def _reserve(self, want: int) -> tuple[int, float]:
        """Reserve up to `want` slots (and permits); returns (granted, seconds until the first slot)."""
        release, self._pending_release = self._pending_release, 0
        if self.degraded_reason is None and self._reserve_script is not None:
            limits = self.limits
            try:
                granted, delay_us = await self._reserve_script(
                    keys=self._keys,
                    args=[
                        self._pid,
                        want,
                        release,
                        int(limits.interval_s * 1e6),
                        int((limits.burst - 1) * limits.interval_s * 1e6),
                        limits.concurrency,
                        self._lease_us,
                    ],
                )
                return int(granted), int(delay_us) / 1e6
            except redis.RedisError as exc:
                self._degrade(exc)
        return self._reserve_local(want, release)

    def _reserve_local(self, want: int, release: int) -> tuple[int, float]:
        limits = self.limits if self.client is None else self.limits.share(self.fallback_workers)
        now = asyncio.get_running_loop().time()
        self._local_held = max(0, self._local_held - release)
        granted = max(0, min(want, limits.concurrency - self._local_held))
        if not granted:
            return 0, 0.0
        self._local_held += granted
        start = max(self._local_tat, now - (limits.burst - 1) * limits.interval_s)
        self._local_tat = start + granted * limits.interval_s
        return granted, start - now

    async def _refill_loop(self) -> None:
        try:
            await self._hand_out_slots()
        except Exception as exc:  # never leave a waiter hanging: its request fails, the batch goes on
            while self._waiters:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.set_exception(exc)
            raise

    async def _hand_out_slots(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiters:
            self._released.clear()
            granted, delay = await self._reserve(min(len(self._waiters), self._block))
            if not granted:  # every permit is busy: wait for one of ours, or poll for the others'
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._released.wait(), timeout=0.01)
                continue
            first = loop.time() + delay
            interval = self.limits.interval_s if self.degraded_reason is None else self._local_interval()
            for i in range(granted):
                while self._waiters and self._waiters[0].done():  # cancelled while waiting
                    self._waiters.popleft()
                if not self._waiters:
                    self._pending_release += granted - i  # reserved for nobody: give the permits back
                    break
                self._waiters.popleft().set_result(first + i * interval)
            # Reserve the next block only when this one is nearly used, so other processes interleave.
            ahead = first + granted * interval - loop.time()
            if ahead > BLOCK_S:  # one block stays reserved ahead, so a busy loop does not lose slots
                await asyncio.sleep(ahead - BLOCK_S)

    def _local_interval(self) -> float:
        return (self.limits if self.client is None else self.limits.share(self.fallback_workers)).interval_s


def connect_limiter_client(url: str | None) -> aioredis.Redis | None:
    """An asyncio Redis client for the limiter; None when no Redis is configured."""
    if not url:
        return None
    return aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
