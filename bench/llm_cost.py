"""Cost per filled field and rows/s of the LLM stage, single calls vs the Message Batches API, on the simulator.

The simulator answers instantly unless --latency is given, so rows/s measures our
own overhead (evidence, SDK, grounding) at the configured concurrency; cost uses
the real price table for the model and the simulator's token counts.

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

from glaze_pipeline.core.model.candidates import Attempt, Evidence
from glaze_pipeline.core.model.fields import EntityType
from glaze_pipeline.core.model.provider import Target
from glaze_pipeline.core.model.status import Status
from glaze_pipeline.core.providers.llm.pricing import DEFAULT_MODEL
from glaze_pipeline.core.providers.llm.provider import LlmProvider, LlmSettings
from glaze_pipeline.core.storage.llm_batches import BatchStore
from glaze_pipeline.sandbox.anthropic_sim import AnthropicSimulator

FIELDS = ("company_founded_year", "company_employee_count", "company_city", "company_country", "company_industry")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.05, help="simulated model latency per call, seconds")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="glaze-bench-llm-"))
    os.environ["GLAZE_HOME"] = str(home)
    from glaze_pipeline.config import settings
    from glaze_pipeline.core.pipeline.runtime import open_database
    from glaze_pipeline.core.storage import services

    s = settings()
    url = open_database(s)
    results: dict[str, dict[str, list[float]]] = {"single": {}, "batch": {}}
    try:
        with AnthropicSimulator() as sim:
            sim.knobs.latency_s = args.latency
            for run in range(args.repeat + 1):  # the first is the warm-up
                for path, threshold in (("single", 10**9), ("batch", 1)):
                    llm = LlmSettings(
                        api_key="bench",
                        base_url=sim.base_url,
                        model=DEFAULT_MODEL,
                        batch_threshold=threshold,
                        poll_interval_s=0.05,
                        concurrency=args.concurrency,
                    )
                    attempts, seconds = _run(
                        LlmProvider(llm, BatchStore(url)), _targets(args.rows, run * 2 + len(path))
                    )
                    filled = sum(len(a.found) for a in attempts if a.status == Status.FILLED)
                    cost = sum(a.cost_usd for a in attempts)
                    if run:
                        figures = results[path]
                        figures.setdefault("rows_per_s", []).append(args.rows / seconds)
                        figures.setdefault("usd_per_filled_field", []).append(cost / max(filled, 1))
                        figures.setdefault("fill_rate", []).append(filled / (args.rows * len(FIELDS)))
    finally:
        services.stop_database(s)

    def med(path: str, name: str) -> float:
        return statistics.median(results[path][name])

    print(
        f"rows {args.rows}, fields {len(FIELDS)}, model {DEFAULT_MODEL}, latency {args.latency}s, "
        f"concurrency {args.concurrency}, median of {args.repeat}"
    )
    for path in ("single", "batch"):
        print(
            f"{path:6}  rows/s {med(path, 'rows_per_s'):8.1f}   $/filled field {med(path, 'usd_per_filled_field'):.6f}"
            f"   fill rate {med(path, 'fill_rate'):.0%}"
        )
    limit = args.concurrency / args.latency if args.latency else float("inf")
    print(
        json.dumps(
            {
                "bench": "llm_cost",
                "rows": args.rows,
                "single_rows_per_s": round(med("single", "rows_per_s"), 1),
                "single_limit_rows_per_s": round(limit, 1),
                "batch_rows_per_s": round(med("batch", "rows_per_s"), 1),
                "single_usd_per_filled_field": round(med("single", "usd_per_filled_field"), 7),
                "batch_usd_per_filled_field": round(med("batch", "usd_per_filled_field"), 7),
                "batch_vs_single_cost": round(
                    med("batch", "usd_per_filled_field") / med("single", "usd_per_filled_field"), 3
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
