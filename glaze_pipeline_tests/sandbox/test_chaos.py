"""The chaos in front of the API simulators: seeded, so the same seed misbehaves the same way."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from glaze_pipeline.sandbox import faults
from glaze_pipeline.sandbox.chaos import Chaos, ChaosSimulator

HOST = {"x-rapidapi-host": "web-scraping-api2.p.rapidapi.com", "x-rapidapi-key": "sim-key"}


def _ask(sim: ChaosSimulator, company: str) -> tuple[int, bytes]:
    url = f"{sim.base_url}/get-company-by-linkedinurl?linkedin_url=https://www.linkedin.com/company/{company}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=HOST), timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as refused:
        return refused.code, b""


def _answers(chaos: Chaos, asks: list[str]) -> list[tuple[int, bool]]:
    """(status, body parses) for each request, asked one after the other."""
    with ChaosSimulator("linkedin", chaos) as sim:
        replies = [_ask(sim, company) for company in asks]
    return [(status, body.endswith(b"}")) for status, body in replies]


def test_a_seed_decides_every_answer_and_the_storm_refuses_a_run_of_requests() -> None:
    chaos = Chaos(seed=3, error_rate=0.2, malformed_rate=0.1, max_latency_s=0.0, storm_start=5, storm_length=4)
    asks = [f"co-{i % 12}" for i in range(40)]  # each company asked several times: attempts count per company
    first = _answers(chaos, asks)
    assert first == _answers(chaos, asks)  # the same seed, the same misbehaviour
    assert first != _answers(Chaos(seed=4, malformed_rate=0.1, max_latency_s=0.0, storm_start=5, storm_length=4), asks)
    assert [status for status, _ in first[5:9]] == [429] * 4  # the storm: requests 5–8, whoever sends them
    kinds = Counter("503" if s == 503 else "broken" if s == 200 and not ok else str(s) for s, ok in first)
    assert kinds["503"] > 0 and kinds["broken"] > 0 and kinds["200"] > 0


def test_a_fate_depends_on_the_entity_and_its_attempt_not_on_arrival_order() -> None:
    chaos = Chaos(seed=9, error_rate=0.5)
    fates = {(e, a): chaos.fate(e, a) for e in ("a", "b", "c") for a in range(6)}
    assert fates == {(e, a): chaos.fate(e, a) for e in ("c", "b", "a") for a in reversed(range(6))}
    assert set(fates.values()) >= {"error", "ok"}


def test_a_held_request_waits_until_released_and_a_hook_runs_at_its_request() -> None:
    struck: list[int] = []
    with ChaosSimulator("linkedin", hold_after=2, on_request=(1, lambda: struck.append(1))) as sim:
        assert [_ask(sim, "a")[0], _ask(sim, "b")[0]] == [200, 200] and struck == [1]
        with ThreadPoolExecutor(1) as pool:
            third = pool.submit(_ask, sim, "c")
            faults.wait_for(lambda: sim.held == 1, "the third request to be held", 10)
            assert not third.done()  # in flight: the vendor has it, the caller has no answer
            sim.release.set()
            assert third.result(10)[0] == 200 and sim.held == 0
