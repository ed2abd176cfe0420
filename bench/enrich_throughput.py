"""Enrich N synthetic company rows from a loopback site through the whole Dagster table job.

Prints cold rows/s (every row fetched), cache re-run rows/s, paid calls and peak
memory, beside a plain httpx asyncio client fetching the same pages in the same
run (the "simple way" baseline for the fetch part). Nothing is written to the repo.

    .venv/bin/python bench/enrich_throughput.py --rows 2000 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


async def _plain_httpx(port: int, hosts: list[str], concurrency: int) -> float:
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency), timeout=60) as client:

        async def one(host: str) -> None:
            async with limit:
                response = await client.get(f"http://127.0.0.1:{port}/", headers={"Host": host})
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(one(h) for h in hosts))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2000, help="synthetic companies per run")
    parser.add_argument("--repeat", type=int, default=3, help="measured repetitions after one warm-up")
    parser.add_argument("--home", type=Path, default=None, help="GLAZE_HOME to use (default: a temp dir)")
    parser.add_argument(
        "--polite", action="store_true", help="keep the crawler's 1 s AutoThrottle start delay (real sites want it)"
    )
    args = parser.parse_args()

    home = args.home or Path(tempfile.mkdtemp(prefix="glaze-bench-"))
    os.environ["GLAZE_HOME"] = str(home)
    os.environ["GLAZE_ALLOW_PRIVATE_NETWORKS"] = "1"
    if not args.polite:  # loopback sites need no politeness pause; measure the pipeline, not the courtesy
        os.environ["GLAZE_CRAWL_START_DELAY_S"] = "0"

    from glaze_pipeline.config import settings
    from glaze_pipeline.core.intake.tables import TableStatus
    from glaze_pipeline.core.intake.uploads import upload_file
    from glaze_pipeline.core.pipeline.runtime import open_database
    from glaze_pipeline.core.storage import db, services
    from glaze_pipeline.runner import dagster_instance, run_table
    from glaze_pipeline.sandbox.sites import SiteServer, synthetic_pages

    s = settings()
    url = open_database(s)
    services.ensure_redis(s)
    hosts = [f"co{i:06d}.bench.example" for i in range(args.rows)]
    cold: list[float] = []
    warm: list[float] = []
    baseline: list[float] = []
    with SiteServer(synthetic_pages) as site:
        os.environ["GLAZE_RESOLVE"] = f"*.bench.example={site.address[0]}:{site.address[1]}"
        instance = dagster_instance(settings())
        for attempt in range(args.repeat + 1):  # the first is the warm-up
            os.environ["GLAZE_REDIS_PREFIX"] = f"glaze_bench_{uuid.uuid4().hex[:8]}:"
            table = home / f"bench_{attempt}.csv"
            # http:// so the figure is the pipeline's, not the https-then-http fallback of plain-http sandbox sites.
            table.write_text("website\n" + "\n".join(f"http://{h}" for h in hosts) + "\n")
            with db.connect(url) as conn:
                table_id = upload_file(
                    conn,
                    table,
                    fields=["company_name", "company_email", "company_phone"],
                    status=TableStatus.RUNNING,
                ).table_id
            started = time.perf_counter()
            first = run_table(table_id, instance)
            cold_s = time.perf_counter() - started
            started = time.perf_counter()
            second = run_table(table_id, instance)
            warm_s = time.perf_counter() - started
            if not (first.success and second.success):
                raise SystemExit(f"run failed: {first.failure or second.failure}")
            plain_s = asyncio.run(_plain_httpx(site.address[1], hosts, s.fetch_concurrency))
            if attempt:
                cold.append(args.rows / cold_s)
                warm.append(args.rows / warm_s)
                baseline.append(args.rows / plain_s)
        services.stop_redis(s)
        services.stop_database(s)

    def fmt(values: list[float]) -> str:
        return f"{statistics.median(values):9.1f}  (min {min(values):.1f}, max {max(values):.1f})"

    print(f"rows per run: {args.rows}, repeats: {args.repeat} (after one warm-up), concurrency {s.fetch_concurrency}")
    print(f"cold job rows/s (fetch + extract + merge + land): {fmt(cold)}")
    print(f"cache re-run rows/s:                            {fmt(warm)}")
    print(f"plain httpx fetch only, same pages, rows/s:      {fmt(baseline)}")
    figures = {
        "bench": "enrich_throughput",
        "rows": args.rows,
        "cold_rows_per_s": round(statistics.median(cold), 1),
        "cache_rows_per_s": round(statistics.median(warm), 1),
        "plain_httpx_rows_per_s": round(statistics.median(baseline), 1),
        "cold_vs_plain_fetch_ratio": round(statistics.median(cold) / statistics.median(baseline), 3),
        "paid_calls": 0,  # only the free website provider exists so far
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
