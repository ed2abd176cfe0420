"""Cost per filled field and rows/s of the LLM stage, single calls vs the Message Batches API, on the simulator.

The simulator answers instantly unless --latency is given, so rows/s measures our
own overhead (evidence, SDK, grounding) at the configured concurrency; cost uses
the real price table for the model and the simulator's token counts. The simulator
caches a prefix only past the model's minimum cacheable length, as the real API does,
so the cost is measured two ways: the prompt as sent (short, never cached) and with a
static prefix padded past the minimum by field definitions, rules and worked examples,
marked with cache_control. Last, a run under a small budget with the simulator billing
every call its maximum shows that spending stays within it.

    .venv/bin/python bench/llm_cost.py --rows 400 --repeat 3 --latency 0.05
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from glaze_pipeline.core.model.candidates import Attempt, Evidence
from glaze_pipeline.core.model.fields import CATALOG, EntityType
from glaze_pipeline.core.model.provider import Target
from glaze_pipeline.core.model.status import Status
from glaze_pipeline.core.pipeline.spending import Budget, Spending
from glaze_pipeline.core.pipeline.stage import run_stage
from glaze_pipeline.core.providers.llm.evidence import EvidencePack
from glaze_pipeline.core.providers.llm.pricing import DEFAULT_MODEL
from glaze_pipeline.core.providers.llm.provider import LlmProvider, LlmSettings
from glaze_pipeline.core.storage.cache import connect_cache
from glaze_pipeline.core.storage.ledger import Ledger
from glaze_pipeline.core.storage.llm_batches import BatchStore
from glaze_pipeline.sandbox.anthropic_sim import AnthropicSimulator, min_cacheable_tokens

FIELDS = ("company_founded_year", "company_employee_count", "company_city", "company_country", "company_industry")


RULES = (
    "Extraction rules. Copy every quote verbatim from one evidence block, at most 200 characters. "
    "A year is four digits; an employee count is a whole number or a range as written. A city is the "
    "headquarters city, not a branch. A country is the headquarters country. An industry is the trade the "
    "company is in, in a few words. Never combine two sources into one value. Prefer the company's own "
    "pages over directories. Leave a field null rather than guess.\n"
)


def long_prefix(model: str) -> str:
    """Field definitions and rules, then worked examples until the prefix passes the model's cacheable minimum."""
    definitions = "".join(
        f"- {name}: {field.description} (at most {field.max_length} characters)\n" for name, field in CATALOG.items()
    )
    text = "Field definitions:\n" + definitions + RULES
    example = 0
    while len(text) // 4 < min_cacheable_tokens(model) + 200:  # the simulator counts 4 characters a token
        example += 1
        text += (
            f"Worked example {example}: evidence 'Firm {example} was founded in {1900 + example} and is based in "
            f"Leeds, United Kingdom.' gives company_founded_year {{value: '{1900 + example}', quote: 'Firm "
            f"{example} was founded in {1900 + example} and is based in Leeds, United Kingdom.', stated: true}}.\n"
        )
    return text


class LongCachedPrefix(LlmProvider):
    """The other way measured: a static prefix long enough to be cached, marked with cache_control."""

    def _params(self, target: Target, pack: EvidencePack) -> dict[str, Any]:
        params = super()._params(target, pack)
        static = {"type": "text", "text": long_prefix(self.settings.model), "cache_control": {"type": "ephemeral"}}
        return params | {"system": [*params["system"], static]}


def _targets(n: int, run: int) -> list[Target]:
    """Distinct rows per run (so nothing is shared between measurements), each with a short page of evidence."""
    return [
        Target(
            f"r{run}-{i}",
            EntityType.COMPANY_WEBSITE,
            f"https://co{i}.bench.example",
            FIELDS,
            {"company_name": f"Company {i}"},
            (
                Evidence(
                    f"https://co{i}.bench.example/about",
                    f"Company {i} (run {run}) was founded in {1950 + i % 70} and is headquartered in Leeds, "
                    f"United Kingdom. Today {10 + i} employees work there. Industry: Logistics.",
                ),
            ),
        )
        for i in range(n)
    ]


def _run(provider: LlmProvider, targets: list[Target]) -> tuple[list[Attempt], float]:
    async def go() -> list[Attempt]:
        async with provider:
            return await provider.enrich(targets)

    started = time.perf_counter()
    attempts = asyncio.run(go())
    return attempts, time.perf_counter() - started


def _budget_bound(sim: AnthropicSimulator, url: str, rows: int, budget: float) -> dict[str, tuple[float, int]]:
    """Spent against the budget, and rows answered, with the simulator billing every call the most it could cost."""
    sim.knobs.bill_maximum = True
    spent: dict[str, tuple[float, int]] = {}
    try:
        for path, threshold in (("single", 10**9), ("batch", 1)):
            llm = LlmSettings(api_key="bench", base_url=sim.base_url, model=DEFAULT_MODEL, batch_threshold=threshold)
            ledger = Ledger(url, run_id=f"bench-budget-{path}-{time.time_ns()}", table_id="bench")
            spending = Spending(ledger, Budget(budget, 1.0))
            cache = connect_cache(None, prefix="bench:", ttl_s=60, negative_ttl_s=60)
            _frame, stats = asyncio.run(
                run_stage(
                    LlmProvider(llm, BatchStore(url)), _targets(rows, 1000 + threshold % 7), cache, spending=spending
                )
            )
            spent[path] = (ledger.spent()[0], stats.paid_calls)
            ledger.close()
    finally:
        sim.knobs.bill_maximum = False
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.05, help="simulated model latency per call, seconds")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--budget", type=float, default=0.05, help="small budget for the spending-bound run, USD")
    parser.add_argument("--budget-rows", type=int, default=60, help="rows asked under that budget")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="glaze-bench-llm-"))
    os.environ["GLAZE_HOME"] = str(home)
    from glaze_pipeline.config import settings
    from glaze_pipeline.core.pipeline.runtime import open_database
    from glaze_pipeline.core.storage import services

    s = settings()
    url = open_database(s)
    kinds = ("single", "batch", "single+cached", "batch+cached")
    results: dict[str, dict[str, list[float]]] = {kind: {} for kind in kinds}
    try:
        with AnthropicSimulator() as sim:
            sim.knobs.latency_s = args.latency
            for run in range(args.repeat + 1):  # the first is the warm-up
                for n, kind in enumerate(kinds):
                    llm = LlmSettings(
                        api_key="bench",
                        base_url=sim.base_url,
                        model=DEFAULT_MODEL,
                        batch_threshold=1 if kind.startswith("batch") else 10**9,
                        poll_interval_s=0.05,
                        concurrency=args.concurrency,
                    )
                    cls = LongCachedPrefix if kind.endswith("cached") else LlmProvider
                    attempts, seconds = _run(cls(llm, BatchStore(url)), _targets(args.rows, run * 8 + n))
                    filled = sum(len(a.found) for a in attempts if a.status == Status.FILLED)
                    cost = sum(a.cost_usd for a in attempts)
                    if run:
                        figures = results[kind]
                        figures.setdefault("rows_per_s", []).append(args.rows / seconds)
                        figures.setdefault("usd_per_filled_field", []).append(cost / max(filled, 1))
                        figures.setdefault("fill_rate", []).append(filled / (args.rows * len(FIELDS)))
            bound = _budget_bound(sim, url, args.budget_rows, args.budget)
    finally:
        services.stop_database(s)

    def med(path: str, name: str) -> float:
        return statistics.median(results[path][name])

    print(
        f"rows {args.rows}, fields {len(FIELDS)}, model {DEFAULT_MODEL}, latency {args.latency}s, "
        f"concurrency {args.concurrency}, median of {args.repeat}"
    )
    for kind in kinds:
        print(
            f"{kind:13}  rows/s {med(kind, 'rows_per_s'):8.1f}   $/filled field {med(kind, 'usd_per_filled_field'):.6f}"
            f"   fill rate {med(kind, 'fill_rate'):.0%}"
        )
    for path, (spent, answered) in bound.items():
        verdict = "<=" if spent <= args.budget else "> !!"
        print(
            f"budget {path:6}  spent ${spent:.6f} {verdict} budget ${args.budget:g} on {answered} of"
            f" {args.budget_rows} rows (every call billed its maximum)"
        )
    limit = args.concurrency / args.latency if args.latency else float("inf")
    per_field = {f"{k.replace('+', '_')}_usd_per_filled_field": round(med(k, "usd_per_filled_field"), 7) for k in kinds}
    print(
        json.dumps(
            {
                "bench": "llm_cost",
                "rows": args.rows,
                "single_rows_per_s": round(med("single", "rows_per_s"), 1),
                "single_limit_rows_per_s": round(limit, 1),
                "batch_rows_per_s": round(med("batch", "rows_per_s"), 1),
                **per_field,
                "cached_vs_plain_single": round(
                    med("single+cached", "usd_per_filled_field") / med("single", "usd_per_filled_field"), 3
                ),
                "budget_usd": args.budget,
                "budget_spent_single_usd": round(bound["single"][0], 6),
                "budget_spent_batch_usd": round(bound["batch"][0], 6),
            }
        )
    )


if __name__ == "__main__":
    main()
