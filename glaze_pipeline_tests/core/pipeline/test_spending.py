"""The LLM stage under a small budget, with the simulator billing every call the most it could cost."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING
from uuid import uuid4

import pytest

from glaze_pipeline.core.model.candidates import Evidence
from glaze_pipeline.core.model.fields import EntityType
from glaze_pipeline.core.model.provider import Target
from glaze_pipeline.core.model.status import Status
from glaze_pipeline.core.pipeline.spending import Budget, Spending
from glaze_pipeline.core.pipeline.stage import run_stage
from glaze_pipeline.core.providers.llm.provider import LlmProvider, LlmSettings
from glaze_pipeline.core.storage.cache import ProviderCache, connect_cache
from glaze_pipeline.core.storage.ledger import Ledger
from glaze_pipeline.core.storage.llm_batches import BatchStore
from glaze_pipeline.sandbox.anthropic_sim import AnthropicSimulator

if TYPE_CHECKING:
    from glaze_pipeline_tests.conftest import TestServers

MODEL = "claude-haiku-4-5"
FIELDS = ("company_founded_year", "company_employee_count", "company_city", "company_country")
PAGE = (
    "Kestrel Logistics moves temperature-controlled freight across Europe. "
    "The company was founded in 2004 and is headquartered in Rotterdam, Netherlands. "
    "Today 340 employees work in six depots. "
)


@pytest.fixture
def sim() -> Iterator[AnthropicSimulator]:
    with AnthropicSimulator() as simulator:
        simulator.knobs.bill_maximum = True
        yield simulator


@pytest.fixture
def cache(servers: TestServers) -> Iterator[ProviderCache]:
    cache = connect_cache(
        servers.redis_url, prefix=f"{servers.redis_prefix}{uuid4().hex}:", ttl_s=600, negative_ttl_s=60
    )
    yield cache
    cache.close()


def targets(n: int) -> list[Target]:
    """Rows no other test asked about (the ledger would answer them free), with evidence of different
    lengths up to the 12,000-character evidence budget, so their bounds differ."""
    tag = uuid4().hex[:8]
    return [
        Target(
            f"row{i}",
            EntityType.COMPANY_WEBSITE,
            f"https://row{i}-{tag}.example",
            FIELDS,
            {},
            (Evidence(f"https://row{i}-{tag}.example/", PAGE * (1 + i * 7)),),
        )
        for i in range(n)
    ]


def llm(sim: AnthropicSimulator, servers: TestServers, batch_threshold: int) -> LlmProvider:
    settings = LlmSettings(
        api_key="k", base_url=sim.base_url, model=MODEL, batch_threshold=batch_threshold, poll_interval_s=0.01
    )
    return LlmProvider(settings, BatchStore(servers.database_url))


@pytest.mark.parametrize("batch_threshold", [10**6, 1], ids=["single calls", "message batches"])
def test_a_small_budget_is_never_passed_even_when_every_call_bills_its_maximum(sim, servers, cache, batch_threshold):
    rows = targets(24)
    provider = llm(sim, servers, batch_threshold)
    bounds = sorted(provider.max_cost_usd(t) for t in rows)
    budget = sum(bounds[:5]) + bounds[0] / 2  # room for about five calls, not six
    run_id = f"budget-{uuid4().hex[:8]}"
    ledger = Ledger(servers.database_url, run_id=run_id, table_id="t-budget")
    try:
        spending = Spending(ledger, Budget(budget, 1.0))
        _frame, stats = asyncio.run(run_stage(provider, rows, cache, spending=spending))
        spent, _by_row = ledger.spent()
    finally:
        ledger.close()
    assert 0 < spent <= budget
    assert spending.budget.spent_usd == pytest.approx(spent)
    assert stats.paid_calls >= 1 and stats.statuses["budget_exhausted"] == len(rows) - stats.paid_calls
    if batch_threshold > 1:
        assert stats.paid_calls <= 5
    else:  # items bill half but reserve the single price (an expired item is asked again singly), so a second
        assert stats.paid_calls > 5  # wave goes once the first settled
    items = sim.counters.requests["messages"] + sum(len(b["results"]) for b in sim._batches.values())
    assert items == stats.paid_calls  # rows the budget could not reserve were never sent


def test_rows_refused_while_calls_are_in_flight_wait_for_them_to_settle_instead_of_giving_up(servers, cache):
    """Real calls cost far less than their bound: once they settle, the rows that waited fit and go."""
    with AnthropicSimulator() as sim:  # billing real usage, not the maximum
        rows = targets(12)
        provider = llm(sim, servers, 10**6)
        bound = max(provider.max_cost_usd(t) for t in rows)
        ledger = Ledger(servers.database_url, run_id=f"waves-{uuid4().hex[:8]}", table_id="t-waves")
        try:
            spending = Spending(ledger, Budget(bound * 3, 1.0))
            _frame, stats = asyncio.run(run_stage(provider, rows, cache, spending=spending))
            spent, _ = ledger.spent()
        finally:
            ledger.close()
    assert spent <= bound * 3
    assert stats.statuses["budget_exhausted"] == 0 and stats.statuses[Status.FILLED.value] == len(rows)
    assert sim.counters.requests["messages"] == len(rows)
