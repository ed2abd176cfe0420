"""Pages/s of the scrapy crawler against a plain httpx asyncio client, over the same loopback site, same run.

A loopback server plays N companies (`coNNNNNN.crawl.example`), each a homepage linking to /about and
/contact: 3 pages per company. Three ways fetch them:
- crawler in a child process (`core.crawl_batch`, what the website provider runs): robots.txt,
  per-site slots, the fetch guard on every hop, extraction of every company;
- the same crawler in this process (reactorless scrapy), to show what the child process costs;
- plain httpx: an asyncio client GETting the 3 known URLs per company, nothing else.
The ratio is crawler pages/s over plain pages/s. Nothing is written to the repo.

    .venv/bin/python bench/crawl_throughput.py --companies 200 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import time

import httpx

from glaze_pipeline.core.web.crawl_batch import BatchJob, crawl_in_child
from glaze_pipeline.core.web.crawl_options import CrawlOptions, Target
from glaze_pipeline.core.web.crawler import SiteCrawl, crawl_sites
from glaze_pipeline.core.web.fetch import FetchPolicy, OverrideResolver
from glaze_pipeline.sandbox.sites import SiteServer

SUFFIX = ".crawl.example"
PAGES_PER_COMPANY = 3


def company_pages(host: str, path: str) -> bytes | None:
    if not host.endswith(SUFFIX):
        return None
    name = host.split(".", 1)[0]
    path = path.split("?", 1)[0]
    if path in ("", "/"):
        body = f'<title>{name} | Home</title><a href="/about">About us</a><a href="/contact">Contact</a>'
    elif path == "/about":
        body = f"<title>About {name}</title><p>{name} was founded in 1999 and employs 40 people.</p>"
    elif path == "/contact":
        body = f'<p>Phone: +44 20 7946 0{len(name) % 1000:03d}</p><a href="mailto:hello@{host}">mail</a>'
    else:
        return None  # robots.txt and anything else: 404
    return f"<!doctype html><html><head><meta charset='utf-8'></head><body>{body}</body></html>".encode()


def _peak_rss_mb() -> tuple[float, float]:
    return (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    )


async def plain_httpx(port: int, hosts: list[str], concurrency: int) -> float:
    limit = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def one(host: str, path: str) -> None:
            async with limit:
                response = await client.get(f"http://127.0.0.1:{port}{path}", headers={"Host": host})
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(one(h, p) for h in hosts for p in ("/", "/about", "/contact")))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--companies", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="measured repetitions after one warm-up")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight, all sites together")
    parser.add_argument("--start-delay", type=float, default=0.0, help="AutoThrottle start delay (production: 1.0)")
    args = parser.parse_args()

    hosts = [f"co{i:06d}{SUFFIX}" for i in range(args.companies)]
    targets = [Target(h, f"http://{h}/") for h in hosts]
    expected_pages = args.companies * PAGES_PER_COMPANY
    results: dict[str, list[float]] = {"child": [], "in_process": [], "plain": []}
    with SiteServer(company_pages) as site:
        ip, port = site.address
        spec = f"*{SUFFIX}={ip}:{port}"
        policy = FetchPolicy(allowed_networks=(f"{ip}/32",))
        options = CrawlOptions(policy=policy, concurrency=args.concurrency, start_delay_s=args.start_delay)
        job = BatchJob(options, resolve_overrides=spec, system_dns=False)
        for attempt in range(args.repeat + 1):  # the first is the warm-up
            started = time.perf_counter()
            crawled, stats = asyncio.run(crawl_in_child(targets, job))
            child_s = time.perf_counter() - started
            if stats.pages != expected_pages:
                raise SystemExit(f"child crawl fetched {stats.pages} pages, expected {expected_pages}")

            pages = 0

            def count(done: SiteCrawl) -> None:
                nonlocal pages
                pages += len(done.pages)

            resolver = OverrideResolver.parse(spec, fallback=None)
            started = time.perf_counter()
            asyncio.run(crawl_sites(targets, options, count, resolver))
            in_process_s = time.perf_counter() - started
            if pages != expected_pages:
                raise SystemExit(f"in-process crawl fetched {pages} pages, expected {expected_pages}")

            plain_s = asyncio.run(plain_httpx(port, hosts, args.concurrency))
            if attempt:
                results["child"].append(expected_pages / child_s)
                results["in_process"].append(expected_pages / in_process_s)
                results["plain"].append(expected_pages / plain_s)
            filled = sum(1 for r in crawled if r.found)
    own_mb, children_mb = _peak_rss_mb()

    def fmt(values: list[float]) -> str:
        return f"{statistics.median(values):8.1f}  (min {min(values):.1f}, max {max(values):.1f})"

    child, in_process, plain = (statistics.median(results[k]) for k in ("child", "in_process", "plain"))
    print(
        f"{args.companies} companies x {PAGES_PER_COMPANY} pages, concurrency {args.concurrency}, "
        f"start delay {args.start_delay}s, median of {args.repeat} after one warm-up"
    )
    print(f"crawler, child process (the provider's path) pages/s: {fmt(results['child'])}")
    print(f"crawler, in this process (reactorless)     pages/s: {fmt(results['in_process'])}")
    print(f"plain httpx asyncio, same pages           pages/s: {fmt(results['plain'])}")
    print(
        f"crawler/plain: {child / plain:.2f} (child), {in_process / plain:.2f} (in process); "
        f"companies with extracted values: {filled}/{args.companies}"
    )
    print(f"peak RSS: this process {own_mb:.0f} MB, largest child {children_mb:.0f} MB")
    print(
        json.dumps(
            {
                "bench": "crawl_throughput",
                "companies": args.companies,
                "pages": expected_pages,
                "crawler_child_pages_per_s": round(child, 1),
                "crawler_in_process_pages_per_s": round(in_process, 1),
                "plain_httpx_pages_per_s": round(plain, 1),
                "ratio": round(child / plain, 3),
                "ratio_in_process": round(in_process / plain, 3),
                "peak_rss_mb": round(own_mb, 1),
                "child_peak_rss_mb": round(children_mb, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
