"""Run one crawl batch in a child process that streams one JSON line per finished company.

Why a child process per batch, rather than scrapy inside the Dagster step's own process:
- Isolation: scrapy sets process-wide state (log handlers, signal wiring, in reactor mode a
  reactor that can never be restarted). In a child it cannot leak into the Dagster step, the
  in-process executor of tests, or the next batch.
- Memory goes back to the OS when the batch ends; a long table never accumulates crawler heap.
- A crash (a parser segfault, the OOM killer) costs one batch's unfinished rows, recorded as
  `provider_error`, never the step.
- Extraction is CPU work: done in the child, two batches in flight use both cores.
The price is one interpreter start per batch (~0.6 s of CPU for 200 companies), measured in
bench/crawl_throughput.py.

A batch of at most `IN_PROCESS_MAX_SITES` companies (a single-record API request, a tiny table) is
crawled in the calling process instead (`crawl_in_process`): there the interpreter start, which imports
scrapy and the extractors again, is most of the batch's time. It is the same crawl through the same
guarded fetch path (`core.web.fetch`), the same page choice, and the same extraction and JSON line per
company, read back the same way, so its results are identical. The trade-off: no crash isolation for
those few rows. A parser segfault or the OOM killer then takes the calling process (the step, or the
record run, whose run-failure sensor fails its requests with the reason) instead of one batch's rows;
scrapy runs reactorless, so a crawl leaves no reactor or signal handlers behind.

Protocol: the parent writes one JSON job to the child's stdin; the child writes one JSON line
per company as soon as it is done, then a last line with `"done": true` and its statistics.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from glaze_pipeline.core.model.candidates import Evidence, Found
from glaze_pipeline.core.model.status import Status
from glaze_pipeline.core.web.crawl_options import CrawlOptions, Target
from glaze_pipeline.core.web.fetch import FetchPolicy, OverrideResolver, Resolver, system_resolver

if TYPE_CHECKING:  # scrapy (via the crawler) and extraction (extruct) are imported only where a crawl runs
    from glaze_pipeline.core.web.crawler import SiteCrawl

log = logging.getLogger(__name__)

MODULE = "glaze_pipeline.core.web.crawl_batch"
IN_PROCESS_MAX_SITES = 3  # up to this many companies, a batch is crawled in the calling process
_LINE_LIMIT = 64 * 1024 * 1024  # one company's candidates never come near this


@dataclass(frozen=True)
class SiteResult:
    """What the child reports for one company: its status and the facts extracted from its pages."""

    row_key: str
    status: Status
    detail: str = ""
    found: tuple[Found, ...] = ()
    pages: tuple[str, ...] = ()
    fetched_at: datetime | None = None
    evidence: tuple[Evidence, ...] = ()  # each page's readable text, for the LLM stage


@dataclass(frozen=True)
class BatchJob:
    options: CrawlOptions
    resolve_overrides: str = ""  # OverrideResolver spec, for sandbox sites and tests
    system_dns: bool = True  # False: names without an override do not resolve (tests never touch DNS)
    deadline_s: float = 1800.0  # the whole batch; unfinished rows then end as `timeout`


@dataclass
class BatchStats:
    sites: int = 0
    pages: int = 0
    child_peak_rss_mb: float = 0.0
    exit_code: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# --- child -------------------------------------------------------------------------------------------


def _job_from_json(data: dict[str, Any]) -> tuple[list[Target], BatchJob]:
    options = dict(data["options"])
    policy = dict(options.pop("policy"))
    policy["allowed_networks"] = tuple(policy["allowed_networks"])
    job = BatchJob(
        CrawlOptions(policy=FetchPolicy(**policy), **options),
        resolve_overrides=data["resolve_overrides"],
        system_dns=data["system_dns"],
        deadline_s=data["deadline_s"],
    )
    return [Target(key, url) for key, url in data["targets"]], job


def _resolver(job: BatchJob) -> Resolver:
    fallback = system_resolver if job.system_dns else None
    return OverrideResolver.parse(job.resolve_overrides, fallback=fallback)


def site_line(site: SiteCrawl) -> str:
    """The JSON line for one finished company: its status and what extraction found on its pages."""
    from glaze_pipeline.core.web.extract import decode_html, extract
    from glaze_pipeline.core.web.page_text import visible_text

    found = extract(site.pages, site.url) if site.pages else []
    return json.dumps(
        {
            "row_key": site.row_key,
            "status": site.status.value,
            "detail": site.detail,
            "found": [[f.field, f.value, f.confidence, f.evidence, f.reason] for f in found],
            "pages": [p.url for p in site.pages],
            "fetched_at": (site.fetched_at or datetime.now(UTC)).isoformat(),
            "evidence": [
                [p.url, text] for p in site.pages if (text := visible_text(decode_html(p.body, p.content_type)))
            ],
        }
    )


def child_main() -> None:
    from glaze_pipeline.core.web.crawler import crawl_sites

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="crawler %(levelname)s %(name)s: %(message)s")
    targets, job = _job_from_json(json.loads(sys.stdin.read()))
    out = sys.stdout
    pages = 0

    def on_site(site: SiteCrawl) -> None:
        nonlocal pages
        pages += len(site.pages)
        out.write(site_line(site) + "\n")
        out.flush()

    stats = asyncio.run(crawl_sites(targets, job.options, on_site, _resolver(job)))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    summary = {"requests": stats.get("downloader/request_count", 0), "robots": stats.get("robotstxt/request_count", 0)}
    out.write(json.dumps({"done": True, "pages": pages, "peak_rss_mb": round(peak_mb, 1), "stats": summary}) + "\n")
    out.flush()


# --- parent ------------------------------------------------------------------------------------------


def _job_to_json(targets: Sequence[Target], job: BatchJob) -> bytes:
    data = asdict(job) | {"targets": [[t.row_key, t.url] for t in targets]}
    return json.dumps(data).encode()


def _result_of(line: dict[str, Any]) -> SiteResult:
    return SiteResult(
        row_key=str(line["row_key"]),
        status=Status(line["status"]),
        detail=str(line.get("detail", "")),
        found=tuple(Found(str(f), str(v), int(c), str(e), str(r)) for f, v, c, e, r in line.get("found", [])),
        pages=tuple(str(p) for p in line.get("pages", [])),
        fetched_at=datetime.fromisoformat(line["fetched_at"]) if line.get("fetched_at") else None,
        evidence=tuple(Evidence(str(url), str(text)) for url, text in line.get("evidence", [])),
    )


async def crawl(targets: Sequence[Target], job: BatchJob) -> tuple[list[SiteResult], BatchStats]:
    """Crawl `targets`: a few in this process, more in a child process. One SiteResult per target, in order."""
    if len(targets) <= IN_PROCESS_MAX_SITES:
        return await crawl_in_process(targets, job)
    return await crawl_in_child(targets, job)


async def crawl_in_process(targets: Sequence[Target], job: BatchJob) -> tuple[list[SiteResult], BatchStats]:
    """The child's crawl in this process, for a few targets: each site goes through `site_line` and back
    through `_result_of` exactly as the child's lines do, so both paths answer alike."""
    from glaze_pipeline.core.web.crawler import crawl_sites

    stats = BatchStats()
    if not targets:
        return [], stats
    results: dict[str, SiteResult] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + job.deadline_s

    def on_site(site: SiteCrawl) -> None:
        if loop.time() >= deadline:  # closing after the deadline: like a killed child, these rows time out
            return
        stats.pages += len(site.pages)
        result = _result_of(json.loads(site_line(site)))
        results.setdefault(result.row_key, result)

    unfinished = (Status.PROVIDER_ERROR, "the crawl ended before this row was done")
    try:
        async with asyncio.timeout_at(deadline):
            scrapy_stats = await crawl_sites(targets, job.options, on_site, _resolver(job))
        stats.extra = {
            "requests": scrapy_stats.get("downloader/request_count", 0),
            "robots": scrapy_stats.get("robotstxt/request_count", 0),
        }
    except TimeoutError:
        pass  # scrapy may also end quietly when cancelled: the clock below decides either way
    except Exception as exc:  # what a dying child would cost: the unfinished rows, never the step
        log.warning("in-process crawl failed: %s: %s", type(exc).__name__, exc)
        unfinished = (Status.PROVIDER_ERROR, f"the crawl failed: {type(exc).__name__}")
    if loop.time() >= deadline:
        unfinished = (Status.TIMEOUT, f"the crawl batch did not finish within {job.deadline_s:.0f}s")
    stats.sites = len(results)
    for target in targets:
        if target.row_key not in results:
            results[target.row_key] = SiteResult(target.row_key, *unfinished)
    return [results[t.row_key] for t in targets], stats


async def crawl_in_child(targets: Sequence[Target], job: BatchJob) -> tuple[list[SiteResult], BatchStats]:
    """Crawl `targets` in a child process: one SiteResult per target, whatever happens to the child."""
    stats = BatchStats()
    if not targets:
        return [], stats
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        MODULE,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
        limit=_LINE_LIMIT,
    )
    results: dict[str, SiteResult] = {}
    unfinished = (Status.PROVIDER_ERROR, "the crawler process ended before this row was done")
    try:
        async with asyncio.timeout(job.deadline_s):
            await _converse(child, _job_to_json(targets, job), {t.row_key for t in targets}, results, stats)
            stats.exit_code = await child.wait()
    except TimeoutError:
        unfinished = (Status.TIMEOUT, f"the crawl batch did not finish within {job.deadline_s:.0f}s")
    finally:
        if child.returncode is None:  # timed out, or the caller was cancelled
            child.kill()
            await child.wait()
        stats.exit_code = child.returncode
    for target in targets:
        if target.row_key not in results:
            status, detail = unfinished
            results[target.row_key] = SiteResult(target.row_key, status, f"{detail} (exit code {stats.exit_code})")
    return [results[t.row_key] for t in targets], stats


async def _converse(
    child: asyncio.subprocess.Process,
    job: bytes,
    expected: set[str],
    results: dict[str, SiteResult],
    stats: BatchStats,
) -> None:
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(job)
    await child.stdin.drain()
    child.stdin.close()
    async for raw in child.stdout:
        try:
            line = json.loads(raw)
        except ValueError:
            log.warning("crawler child printed a line that is not JSON: %r", raw[:200])
            continue
        if line.get("done"):
            stats.pages = int(line.get("pages", 0))
            stats.child_peak_rss_mb = float(line.get("peak_rss_mb", 0.0))
            stats.extra = dict(line.get("stats", {}))
        elif line.get("row_key") in expected:
            result = _result_of(line)
            results[result.row_key] = result
            stats.sites += 1


if __name__ == "__main__":
    child_main()
