"""Bulk throughput of a paid provider stage against its loopback simulator, beside the limit of the setup.

The LinkedIn simulator runs in its own process with latency L; the stage runs as the
Dagster asset runs it (`run_stage`: cache, ledger, budget, shared Redis limiter at
R requests/s, concurrency C). The limit is min(C / L, R) rows/s; the figure is the
fraction of it reached. Then the same rows again: served by the cache, 0 paid calls.
Nothing is written to the repo.

    .venv/bin/python bench/paid_throughput.py --rows 100000 --repeat 1
    .venv/bin/python bench/paid_throughput.py --rows 10000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def _sim_requests(base_url: str) -> int:
    with urllib.request.urlopen(f"{base_url}/__sim/stats", timeout=10) as response:  # loopback simulator
        return int(json.loads(response.read())["requests"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000, help="rows per measured run")
    parser.add_argument("--repeat", type=int, default=3, help="measured runs after one warm-up")
    parser.add_argument("--latency", type=float, default=0.02, help="simulator latency L in seconds")
    parser.add_argument("--concurrency", type=int, default=64, help="provider concurrency C")
    parser.add_argument("--rate", type=float, default=2000.0, help="rate limit R, requests per second")
    parser.add_argument("--burst", type=int, default=1, help="limiter burst (see core/providers/limiter.py)")
    parser.add_argument("--home", type=Path, default=None, help="GLAZE_HOME to use (default: a temp dir)")
    args = parser.parse_args()

    home = args.home or Path(tempfile.mkdtemp(prefix="glaze-bench-"))
    os.environ["GLAZE_HOME"] = str(home)
    # Limiter keys of its own: a bench must not share (or drain) a deployment's provider limits.
    os.environ["GLAZE_REDIS_PREFIX"] = f"glaze_bench_{uuid.uuid4().hex[:8]}:"
    from glaze_pipeline.config import settings
    from glaze_pipeline.core import aio
    from glaze_pipeline.core.model.fields import EntityType
    from glaze_pipeline.core.model.provider import Target
    from glaze_pipeline.core.pipeline.runtime import BudgetLimits, open_database, open_runtime
    from glaze_pipeline.core.pipeline.stage import run_stage
    from glaze_pipeline.core.storage import db

    url = open_database(settings())  # before the simulator starts: a database error leaves nothing behind
    sim = subprocess.Popen(
        [sys.executable, "-m", "glaze_pipeline.sandbox.apis", "linkedin", "--latency", str(args.latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sim.stdout is not None
    base_url = json.loads(sim.stdout.readline())["base_url"]
    os.environ |= {
        "GLAZE_LINKEDIN_BASE_URL": base_url,
        "GLAZE_LINKEDIN_API_KEY": "sim-key",
        "GLAZE_LINKEDIN_RATE_PER_S": str(args.rate),
        "GLAZE_LINKEDIN_CONCURRENCY": str(args.concurrency),
        "GLAZE_LINKEDIN_BURST": str(args.burst),
        "GLAZE_LINKEDIN_PRICE_USD": "0.0001",
    }

    fields = ("company_name", "company_industry", "company_employee_range")
    unlimited = BudgetLimits(1e9, 1e9)

    def stage(rows: list[Target], prefix: str) -> tuple[float, int, int]:
        """One stage run: (seconds, paid calls, requests the simulator saw)."""
        os.environ["GLAZE_REDIS_PREFIX"] = prefix  # a cache (and limiter keys) of this repeat's own
        with open_runtime(settings()) as runtime, runtime.spending(uuid.uuid4().hex, "bench", unlimited) as spending:
            provider = runtime.provider("linkedin")
            before = _sim_requests(base_url)
            started = time.perf_counter()
            _, stats = aio.run(run_stage(provider, rows, runtime.cache, spending=spending, wanted=fields))
            elapsed = time.perf_counter() - started
        if stats.statuses.get("filled", 0) + stats.statuses.get("not_found", 0) != len(rows):
            raise SystemExit(f"unexpected outcomes: {dict(stats.statuses)}")
        return elapsed, stats.paid_calls, _sim_requests(base_url) - before

    cold: list[float] = []
    warm: list[float] = []
    warm_paid = 0
    try:
        for attempt in range(args.repeat + 1):  # the first is a small warm-up
            n = min(args.rows, 2000) if attempt == 0 else args.rows
            tag = uuid.uuid4().hex[:6]
            rows = [
                Target(f"{tag}{i}", EntityType.LINKEDIN_COMPANY, f"https://www.linkedin.com/company/b{tag}-{i}", fields)
                for i in range(n)
            ]
            prefix = f"glaze_bench_{tag}:"
            seconds, paid, seen = stage(rows, prefix)
            if paid != n or seen != n:
                raise SystemExit(f"cold run: {paid} paid calls and {seen} requests for {n} rows")
            again_s, again_paid, again_seen = stage(rows, prefix)
            if attempt:
                cold.append(n / seconds)
                warm.append(n / again_s)
                warm_paid += again_paid + again_seen
            print(f"run {attempt}: {n} rows cold {n / seconds:8.1f} rows/s · cache re-run {n / again_s:9.1f} rows/s")
    finally:
        sim.terminate()
        sim.wait(10)
        with db.connect(url) as conn:  # the bench's calls were never real spending
            conn.execute("DELETE FROM glaze.provider_calls WHERE table_id = 'bench'")
            conn.commit()

    limit = min(args.concurrency / args.latency, args.rate)

    def fmt(values: list[float]) -> str:
        return f"{statistics.median(values):9.1f}  (min {min(values):.1f}, max {max(values):.1f})"

    print(
        f"rows per run {args.rows}, {args.repeat} runs after a warm-up; L = {args.latency * 1000:g} ms,"
        f" C = {args.concurrency}, R = {args.rate:g}/s → limit min(C/L, R) = {limit:.0f} rows/s"
    )
    print(f"cold stage rows/s (limiter, HTTP, ledger, cache): {fmt(cold)}")
    print(f"fraction of the limit:                           {statistics.median(cold) / limit:9.3f}")
    print(f"cache re-run rows/s:                             {fmt(warm)}")
    print(f"paid calls + requests on the cache re-runs:      {warm_paid:9d}")
    figures = {
        "bench": "paid_throughput",
        "rows": args.rows,
        "repeat": args.repeat,
        "latency_s": args.latency,
        "concurrency": args.concurrency,
        "rate_per_s": args.rate,
        "rows_per_s": round(statistics.median(cold), 1),
        "limit_rows_per_s": round(limit, 1),
        "ratio": round(statistics.median(cold) / limit, 3),
        "cache_rows_per_s": round(statistics.median(warm), 1),
        "cache_paid_calls": warm_paid,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
