"""Provider chaos for the loopback API simulators: seeded errors, latency, malformed answers and a 429 storm.

`ChaosSimulator` is an `ApiSimulator` (same vendor wire formats, same request log) with a `Chaos`
plan in front of the vendor's answer. Every decision is a hash of the seed, the entity asked about
and how many times that entity was asked before, so a row's fate does not depend on which request
happened to arrive first; only the storm is counted in arrival order (requests `storm_start` to
`storm_start + storm_length - 1` are refused with 429 and a Retry-After, whoever sends them).

Two test hooks sit here too, because the fault tests need a deterministic moment to strike:
`hold_after` keeps every request past the first N waiting (they are in flight, billed by a
real vendor) until `release` is set, and `on_request` runs a callable before the N-th request
is answered (to kill a server at exactly that point).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from glaze_pipeline.sandbox.apis import ApiSimulator, Knobs, Reader
from glaze_pipeline.sandbox.loopback import HIT


@dataclass(frozen=True)
class Chaos:
    """What misbehaves, and how often; the same seed gives the same misbehaviour."""

    seed: int = 12
    error_rate: float = 0.2  # share of attempts answered 503
    malformed_rate: float = 0.04  # share of attempts answered 200 with a broken JSON body
    max_latency_s: float = 0.02  # each answer waits uniform [0, max] seconds
    storm_start: int = 40  # the requests in arrival order that the 429 storm refuses…
    storm_length: int = 25
    storm_retry_after_s: float = 0.2  # …each with this Retry-After

    def draw(self, entity: str, attempt: int, purpose: str) -> float:
        """A number in [0, 1) fixed by the seed, the entity, its attempt number and what it decides."""
        digest = hashlib.sha256(f"{self.seed}|{purpose}|{attempt}|{entity}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def in_storm(self, index: int) -> bool:
        return self.storm_start <= index < self.storm_start + self.storm_length

    def fate(self, entity: str, attempt: int) -> str:
        """`error`, `malformed` or `ok` for one attempt at an entity."""
        u = self.draw(entity, attempt, "fate")
        if u < self.error_rate:
            return "error"
        return "malformed" if u < self.error_rate + self.malformed_rate else "ok"


@dataclass
class ChaosTally:
    """What the chaos did, for tests to compare with what the pipeline reports."""

    errors: int = 0
    malformed: Counter[str] = field(default_factory=Counter)  # entity -> broken answers sent
    storm: int = 0


class ChaosSimulator(ApiSimulator):
    """An API simulator with seeded chaos (`chaos`), a hold on requests past the N-th, and a hook at the N-th."""

    def __init__(
        self,
        vendor: str,
        chaos: Chaos | None = None,
        *,
        hold_after: int | None = None,
        on_request: tuple[int, Callable[[], None]] | None = None,
        knobs: Knobs | None = None,
    ) -> None:
        super().__init__(vendor, knobs=knobs)
        self.chaos = chaos
        self.hold_after = hold_after
        self.on_request = on_request
        self.release = threading.Event()
        self.held = 0  # requests waiting on `release` right now
        self.tally = ChaosTally()
        self._arrived = 0
        self._attempts: Counter[str] = Counter()

    def stop(self) -> None:
        self.release.set()
        super().stop()

    async def _answer(self, read: Reader, request: web.Request) -> web.Response:
        index, self._arrived = self._arrived, self._arrived + 1
        if self.on_request is not None and index == self.on_request[0]:
            await asyncio.get_running_loop().run_in_executor(None, self.on_request[1])
        if self.hold_after is not None and index >= self.hold_after:
            await self._hold()
        if self.chaos is None:
            return await super()._answer(read, request)
        return await self._chaotic(read, request, index, self.chaos)

    async def _hold(self) -> None:
        self.held += 1
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait)
        finally:
            self.held -= 1

    async def _chaotic(self, read: Reader, request: web.Request, index: int, chaos: Chaos) -> web.Response:
        ask = await read(request, self._exists)
        request[HIT].entity = ask.entity
        if ask.api_key != self.api_key:
            return web.json_response({"message": "simulated 401"}, status=401)
        if chaos.in_storm(index):
            self.tally.storm += 1
            retry_after = {"Retry-After": f"{chaos.storm_retry_after_s:g}"}
            return web.json_response({"message": "simulated 429 storm"}, status=429, headers=retry_after)
        attempt = self._attempts[ask.entity]
        self._attempts[ask.entity] += 1
        await asyncio.sleep(chaos.draw(ask.entity, attempt, "latency") * chaos.max_latency_s)
        fate = chaos.fate(ask.entity, attempt)
        if fate == "error":
            self.tally.errors += 1
            return web.json_response({"message": "simulated 503"}, status=503)
        if fate == "malformed" and ask.status == 200:
            self.tally.malformed[ask.entity] += 1
            return web.Response(text='{"data": {"company_name": "Tru', content_type="application/json")
        return web.json_response(ask.body, status=ask.status)
