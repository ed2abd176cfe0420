"""Which waterfall order fills more fields per dollar: the same companies through each order, side by side.

Synthetic companies are served by the loopback website server and the two paid-API
simulators (with a share of companies each API does not know). For every order the
waterfall runs for real (gap analysis, cache, merge) with an empty cache, and the
table reports cells filled, money spent and cells per dollar. The simulators' coverage
is an assumption (flags below), so the figures rank orders, they do not predict a bill.

    .venv/bin/python bench/order_value.py --rows 500
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import uuid
from pathlib import Path

ORDERS = (
    ("website", "search", "linkedin"),
    ("website", "linkedin", "search"),
    ("linkedin", "search", "website"),
    ("website", "linkedin"),
    ("website", "search"),
)
BASIC = [
    "company_name",
    "company_description",
    "company_website",
    "company_city",
    "company_country",
    "company_founded_year",
    "company_linkedin",
    "company_email",
]
# Industry and size come only from LinkedIn on the simulators; the phone only from the website.
FULL = [*BASIC, "company_industry", "company_employee_count", "company_employee_range", "company_phone"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=500, help="synthetic companies")
    parser.add_argument("--search-unknown", type=float, default=0.3, help="share of companies search knows nothing of")
    parser.add_argument("--linkedin-unknown", type=float, default=0.1, help="share LinkedIn has no page for")
    parser.add_argument(
        "--fields",
        choices=["full", "basic"],
        default="full",
        help="full: with industry and size (which only LinkedIn has here); basic: name, site, HQ, founded, socials",
    )
    parser.add_argument("--home", type=Path, default=None, help="GLAZE_HOME to use (default: a temp dir)")
    args = parser.parse_args()
    os.environ["GLAZE_HOME"] = str(args.home or Path(tempfile.mkdtemp(prefix="glaze-bench-")))
    os.environ["GLAZE_ALLOW_PRIVATE_NETWORKS"] = "1"
    # Limiter keys of its own: a bench must not share (or drain) a deployment's provider limits.
    os.environ["GLAZE_REDIS_PREFIX"] = f"glaze_bench_{uuid.uuid4().hex[:8]}:"
    wanted = FULL if args.fields == "full" else BASIC

    import polars as pl

    from glaze_pipeline.config import settings
    from glaze_pipeline.core import aio
    from glaze_pipeline.core.model.candidates import empty_candidates
    from glaze_pipeline.core.model.fields import EntityType
    from glaze_pipeline.core.pipeline.merge import merge
    from glaze_pipeline.core.pipeline.runtime import open_runtime
    from glaze_pipeline.core.pipeline.stage import run_stage
    from glaze_pipeline.core.pipeline.waterfall import TableWork
    from glaze_pipeline.sandbox.apis import ApiSimulator, Knobs
    from glaze_pipeline.sandbox.sites import SiteServer, synthetic_pages

    hosts = [f"co{i:05d}-{uuid.uuid4().hex[:4]}.bench.example" for i in range(args.rows)]
    rows = pl.DataFrame(
        {
            "row_key": hosts,
            "input_url": [f"http://{h}" for h in hosts],
            "normalized_url": [f"http://{h}" for h in hosts],
            "entity_type": [EntityType.COMPANY_WEBSITE.value] * len(hosts),
        }
    )
    results = []
    with (
        SiteServer(synthetic_pages) as site,
        ApiSimulator("search", knobs=Knobs(not_found_rate=args.search_unknown)) as search,
        ApiSimulator("linkedin", knobs=Knobs(not_found_rate=args.linkedin_unknown)) as linkedin,
    ):
        os.environ["GLAZE_RESOLVE"] = f"*.bench.example={site.address[0]}:{site.address[1]}"
        os.environ |= search.env() | linkedin.env()
        os.environ |= {"GLAZE_SEARCH_RATE_PER_S": "500", "GLAZE_LINKEDIN_RATE_PER_S": "500"}
        work = TableWork("bench", rows, tuple(wanted), empty_candidates())
        for order in ORDERS:
            # A cache of this order's own, and no ledger: every order pays for what it asks.
            os.environ["GLAZE_REDIS_PREFIX"] = f"glaze_order_{uuid.uuid4().hex[:8]}:"
            s = settings()
            frames: list[pl.DataFrame] = []
            cost = 0.0
            calls: dict[str, int] = {}
            with open_runtime(s) as runtime:
                for name in order:
                    provider = runtime.provider(name)
                    targets = work.targets(provider, frames, s.min_confidence)
                    frame, stats = aio.run(run_stage(provider, targets, runtime.cache, wanted=wanted))
                    frames.append(frame)
                    cost += stats.cost_usd
                    calls[name] = stats.calls
            merged = merge(rows, wanted, frames, list(order))
            filled = int(sum(merged[f].is_not_null().sum() for f in wanted))
            results.append((" → ".join(order), filled, cost, calls))

    cells = len(hosts) * len(wanted)
    print(f"{len(hosts)} companies × {len(wanted)} fields = {cells} cells; search knows {1 - args.search_unknown:.0%},")
    prices = f"search ${s.apis['search'].price_usd:g}, LinkedIn ${s.apis['linkedin'].price_usd:g}"
    print(f"LinkedIn {1 - args.linkedin_unknown:.0%}; fields: {args.fields}; prices: {prices}")
    print(f"{'order':34} {'filled':>8} {'fill %':>7} {'cost $':>8} {'cells/$':>9}  calls")
    for label, filled, cost, calls in results:
        per_dollar = filled / cost if cost else float("inf")
        print(f"{label:34} {filled:8d} {filled / cells:7.1%} {cost:8.3f} {per_dollar:9.0f}  {calls}")
    print(
        json.dumps(
            {
                "bench": "order_value",
                "rows": len(hosts),
                "fields": args.fields,
                "orders": {label: {"filled": f, "cost_usd": round(c, 4)} for label, f, c, _ in results},
            }
        )
    )


if __name__ == "__main__":
    main()
