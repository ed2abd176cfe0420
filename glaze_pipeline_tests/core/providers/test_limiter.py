"""The shared limiter: rate and concurrency hold across processes (real Redis), and without Redis per process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from glaze_pipeline.config import settings
from glaze_pipeline.core.model.fields import EntityType
from glaze_pipeline.core.model.provider import LimiterMode, ProviderHealth, Target
from glaze_pipeline.core.providers.limiter import Limits, RateLimiter, connect_limiter_client
from glaze_pipeline.core.providers.registry import build_provider
from glaze_pipeline.sandbox.apis import ApiSimulator
from glaze_pipeline_tests.helpers import closed_port_url

if TYPE_CHECKING:
    from glaze_pipeline_tests.conftest import TestServers

RATE, BURST = 25, 2

# One worker process: its own provider (own limiter instance, own Redis connection) sending N rows.
WORKER = """
import asyncio, sys
from glaze_pipeline.config import settings
from glaze_pipeline.core.model.fields import EntityType
from glaze_pipeline.core.providers.registry import build_provider
from glaze_pipeline.core.model.provider import Target

async def main(tag, n, redis_url):
    provider = build_provider("linkedin", settings(), redis_url=redis_url)
    targets = [
        Target(f"{tag}{i}", EntityType.COMPANY_WEBSITE, f"https://{tag}{i}.example", ("company_name",))
        for i in range(n)
    ]
    async with provider:
        attempts = await provider.enrich(targets)
    assert all(a.status == "filled" for a in attempts), [a.detail for a in attempts]

asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
"""


@pytest.fixture
def sim() -> Iterator[ApiSimulator]:
    with ApiSimulator("linkedin") as simulator:
        yield simulator


def test_the_limit_holds_across_two_processes(servers: TestServers, sim: ApiSimulator) -> None:
    env = (
        os.environ
        | sim.env()
        | {
            "GLAZE_LINKEDIN_RATE_PER_S": str(RATE),
            "GLAZE_LINKEDIN_BURST": str(BURST),
            "GLAZE_LINKEDIN_CONCURRENCY": "8",
            "GLAZE_REDIS_PREFIX": f"{servers.redis_prefix}{uuid.uuid4().hex[:8]}:",
        }
    )
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, tag, "30", servers.redis_url], env=env) for tag in ("p", "q")
    ]
    assert [w.wait(300) for w in workers] == [0, 0]
    assert sim.count(200) == 60
    # Over any sliding second the simulator saw at most the limit plus the documented burst…
    assert sim.max_in_window(1.0) <= RATE + BURST
    # …and both processes together kept close to it (the limit is shared, not split in advance).
    assert sim.max_in_window(1.0) >= RATE - 3
    span = max(h.at for h in sim.log) - min(h.at for h in sim.log)
    assert span >= (60 - BURST) / RATE - 0.05


def targets(n: int, tag: str) -> list[Target]:
    return [
        Target(f"{tag}{i}", EntityType.COMPANY_WEBSITE, f"https://{tag}{i}.example", ("company_name",))
        for i in range(n)
    ]


def test_concurrency_is_shared_between_limiter_instances(servers: TestServers, sim: ApiSimulator) -> None:
    sim.knobs.latency_s = 0.05
    s = settings(
        sim.env()
        | {
            "GLAZE_LINKEDIN_RATE_PER_S": "1000",
            "GLAZE_LINKEDIN_CONCURRENCY": "3",
            "GLAZE_REDIS_PREFIX": f"{servers.redis_prefix}{uuid.uuid4().hex[:8]}:",
        }
    )

    async def both() -> None:
        first, second = (build_provider("linkedin", s, redis_url=servers.redis_url) for _ in range(2))
        async with first, second:
            await asyncio.gather(first.enrich(targets(12, "a")), second.enrich(targets(12, "b")))

    asyncio.run(both())
    assert sim.count(200) == 24
    assert sim.max_active == 3


def test_without_redis_each_process_keeps_its_share(servers: TestServers, sim: ApiSimulator) -> None:
    s = settings(sim.env() | {"GLAZE_LINKEDIN_RATE_PER_S": "40", "GLAZE_LIMITER_FALLBACK_WORKERS": "4"})
    provider = build_provider("linkedin", s, redis_url=closed_port_url())

    async def go() -> ProviderHealth:
        async with provider:
            await provider.enrich(targets(12, "x"))
            return provider.health()

    health = asyncio.run(go())
    assert health.limiter == LimiterMode.LOCAL and health.limiter_note.startswith("1/4: Redis unavailable")
    # 40/s ÷ 4 workers = 10/s with burst 1: 12 requests take at least 1.1 s, never 12 in one second.
    times = sorted(h.at for h in sim.log)
    assert times[-1] - times[0] >= 1.0
    assert sim.max_in_window(1.0) <= 10 + 1


def test_the_per_minute_limit_is_enforced_as_the_stricter_even_rate() -> None:
    assert Limits(rate_per_s=10, concurrency=1).interval_s == pytest.approx(0.1)
    assert Limits(rate_per_s=10, concurrency=1, rate_per_min=60).interval_s == pytest.approx(1.0)
    assert Limits(rate_per_s=10, concurrency=8, rate_per_min=60).share(4) == Limits(2.5, 2, 1, 15)


# A process that takes every permit of a limiter, says so, and then hangs until it is killed.
HOLDER = """
import asyncio, sys
from contextlib import AsyncExitStack
from glaze_pipeline.config import settings
from glaze_pipeline.core.providers.limiter import Limits, RateLimiter, connect_limiter_client

async def main(name, prefix, redis_url):
    limiter = RateLimiter(name, Limits(1000, 2), connect_limiter_client(redis_url), prefix=prefix,
                          lease_s=settings().lease_s)
    async with AsyncExitStack() as stack:
        for _ in range(2):
            await stack.enter_async_context(limiter.slot())
        print("held", flush=True)
        await asyncio.Event().wait()

asyncio.run(main(*sys.argv[1:]))
"""


def _limiter(servers: TestServers, name: str, prefix: str, concurrency: int, lease_s: float) -> RateLimiter:
    return RateLimiter(
        name, Limits(1000, concurrency), connect_limiter_client(servers.redis_url), prefix=prefix, lease_s=lease_s
    )


def test_a_killed_processs_permits_come_back_within_the_lease(servers: TestServers) -> None:
    name, prefix = f"lease-{uuid.uuid4().hex[:8]}", f"{servers.redis_prefix}{uuid.uuid4().hex[:8]}:"
    lease_s = settings({"GLAZE_LEASE_S": "2"}).lease_s
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, name, prefix, servers.redis_url],
        env=os.environ | {"GLAZE_LEASE_S": "2"},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    holder.kill()  # SIGKILL: no release, no goodbye
    holder.wait(10)

    async def take_one() -> float:
        limiter = _limiter(servers, name, prefix, 2, lease_s)
        started = time.monotonic()
        async with asyncio.timeout(30):  # the old hard-coded lease was 120 s
            async with limiter.slot():
                waited = time.monotonic() - started
        await limiter.aclose()
        return waited

    waited = asyncio.run(take_one())
    assert 0.5 < waited < lease_s + 5  # it had to wait for the dead process's lease, and no longer


def test_a_live_call_longer_than_the_lease_keeps_its_permit(servers: TestServers) -> None:
    name, prefix = f"renew-{uuid.uuid4().hex[:8]}", f"{servers.redis_prefix}{uuid.uuid4().hex[:8]}:"

    async def race() -> tuple[bool, bool]:
        slow, other = (_limiter(servers, name, prefix, 1, 0.6) for _ in range(2))
        done = asyncio.Event()
        inside = asyncio.Event()

        async def long_call() -> None:
            async with slow.slot():
                inside.set()
                await done.wait()

        holder = asyncio.create_task(long_call())
        await inside.wait()
        try:  # three leases long: without renewal the permit would have gone to `other` after one
            async with asyncio.timeout(1.8):
                async with other.slot():
                    robbed = True
        except TimeoutError:
            robbed = False
        done.set()
        await holder
        async with asyncio.timeout(10), other.slot():  # once the long call ends, the permit is free again
            freed = True
        for limiter in (slow, other):
            await limiter.aclose()
        return robbed, freed

    assert asyncio.run(race()) == (False, True)
