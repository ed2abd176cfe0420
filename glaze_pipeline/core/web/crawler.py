"""Crawl company sites with scrapy: the homepage, then up to N about/contact/legal pages per company.

Scrapy runs here in its reactorless mode (asyncio, no Twisted reactor), so a crawl is an ordinary
coroutine: it can run any number of times in one process and needs no reactor installed, started
or restarted. Scrapy brings the scheduling, per-site slots, AutoThrottle, robots.txt, redirects,
meta-refresh and retries; every byte is downloaded by `GuardedDownloadHandler`, which hands each
single hop to the project's one fetch guard (`core.fetch.GuardedFetcher.fetch_hop`). Redirects and
meta-refresh come back through the handler as new requests, so each hop is resolved, checked and
pinned like the first, and a name is resolved once per crawl (`OnceResolver`).

The website provider runs this module in a child process per batch (`core.crawl_batch`); the
reasons are written there. `CrawlOptions` and `Target` live in `core.web.crawl_options`, so that
describing a crawl does not import scrapy.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import scrapy
from scrapy import signals
from scrapy.crawler import AsyncCrawlerRunner, Crawler
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import IgnoreRequest, NotSupported
from scrapy.http import Headers, Response, TextResponse
from scrapy.responsetypes import responsetypes
from scrapy.spidermiddlewares.httperror import HttpError

from glaze_pipeline.core.model.status import Status
from glaze_pipeline.core.web.crawl_options import CrawlOptions, Target
from glaze_pipeline.core.web.extract import Page
from glaze_pipeline.core.web.fetch import GuardedFetcher, OnceResolver, Resolver, system_resolver
from glaze_pipeline.core.web.site_pages import Link, choose_pages

log = logging.getLogger(__name__)

# Headers that describe the wire form; the guard hands over the body already decoded.
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})
_RATE_LIMIT_CODES = (429, 503)
ROBOTS_AGENT = "glaze-pipeline"  # the product token robots.txt rules name, from the user agent


@dataclass
class SiteCrawl:
    """One company's crawl: its pages, or the reason the homepage could not be had."""

    row_key: str
    url: str
    status: Status = Status.FILLED  # FILLED: the homepage was fetched (pages holds it first)
    detail: str = ""
    pages: list[Page] = field(default_factory=list)
    pending: int = 1  # requests still out for this site; the site is done at 0
    fetched_at: datetime | None = None


OnSite = Callable[[SiteCrawl], None]


class FetchFailed(IgnoreRequest):
    """The guard refused or could not complete a request; carries the row status to record.

    An IgnoreRequest, so scrapy's robots.txt middleware treats a refused robots.txt quietly.
    """

    def __init__(self, status: Status, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class _Shared:
    """Carries a live object through scrapy settings, which deep-copy their values."""

    def __init__(self, value: object) -> None:
        self.value = value

    def __deepcopy__(self, memo: dict[int, object]) -> _Shared:
        return self


class GuardedDownloadHandler:
    """Scrapy's http/https download handler: one guarded hop per request through `GuardedFetcher`."""

    lazy = False

    def __init__(self, crawler: Crawler) -> None:
        options, resolver = crawler.settings["GLAZE_CRAWL"].value
        self._fetcher = GuardedFetcher(options.policy, OnceResolver(resolver), max_connections=options.concurrency)
        self._open = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> GuardedDownloadHandler:
        return cls(crawler)

    async def download_request(self, request: scrapy.Request) -> Response:
        if not self._open:
            await self._fetcher.__aenter__()
            self._open = True
        result = await self._fetcher.fetch_hop(request.url)
        answered = result.http_status is not None and not 200 <= result.http_status < 300
        if result.failure is not None and not answered:
            raise FetchFailed(result.failure, result.detail)
        headers = Headers({k: v for k, v in result.headers.items() if k not in _WIRE_HEADERS})
        response_class = responsetypes.from_args(headers=headers, url=result.url, body=result.body)
        assert result.http_status is not None
        return response_class(
            url=result.url, status=result.http_status, headers=headers, body=result.body, request=request
        )

    async def close(self) -> None:
        if self._open:
            await self._fetcher.__aexit__(None, None, None)
            self._open = False


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class RetryAfterMiddleware:
    """429/503: hold the whole site for what Retry-After asks (up to a cap), then retry the request.

    The wait is put on the site's download slot, so no other request to that site goes out before it
    either; a longer wait than the cap leaves the response to end as `rate_limited`.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        options: CrawlOptions = crawler.settings["GLAZE_CRAWL"].value[0]
        self.cap_s = options.retry_after_cap_s
        self.default_wait_s = max(1.0, options.start_delay_s)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RetryAfterMiddleware:
        return cls(crawler)

    def process_response(self, request: scrapy.Request, response: Response) -> scrapy.Request | Response:
        if response.status not in _RATE_LIMIT_CODES:
            return response
        header = response.headers.get("Retry-After")
        wait = retry_after_seconds(header.decode("latin-1") if header else None)
        wait = self.default_wait_s if wait is None else wait
        if wait > self.cap_s:
            return response
        assert self.crawler.spider is not None and self.crawler.engine is not None
        retry = get_retry_request(request, spider=self.crawler.spider, reason=f"HTTP {response.status}")
        if retry is None:
            return response
        slot = self.crawler.engine.downloader.slots.get(request.meta.get("download_slot", ""))
        if slot is not None:
            slot.delay = max(slot.delay, wait)
            slot.lastseen = time.monotonic()  # counted from this answer, as the header means
        return retry


def failure_status(exc: BaseException) -> tuple[Status, str]:
    """The row status a failed request stands for."""
    if isinstance(exc, FetchFailed):
        return exc.status, exc.detail
    if isinstance(exc, HttpError):
        code = exc.response.status
        if code in (404, 410):
            return Status.NOT_FOUND, f"HTTP {code}"
        if code in _RATE_LIMIT_CODES:
            return Status.RATE_LIMITED, f"HTTP {code}, Retry-After {exc.response.headers.get('Retry-After')!r}"
        return Status.PROVIDER_ERROR, f"HTTP {code}"
    if isinstance(exc, NotSupported):
        return Status.BLOCKED, f"scheme not allowed: {exc}"
    if isinstance(exc, IgnoreRequest):
        message = str(exc)
        if "robots.txt" in message:
            return Status.BLOCKED, "robots.txt disallows this page"
        if "redirections" in message:
            return Status.PROVIDER_ERROR, "too many redirects"
        return Status.PROVIDER_ERROR, message or "request ignored"
    return Status.PROVIDER_ERROR, f"{type(exc).__name__}: {exc}"


class CompanySitesSpider(scrapy.Spider):
    """Homepage first; from it, up to `max_pages` same-site about/contact/legal pages; a callback per site."""

    name = "glaze_company_sites"

    def __init__(self, targets: Sequence[Target], max_pages: int, on_site: OnSite, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._sites = {t.row_key: SiteCrawl(t.row_key, t.url) for t in targets}
        self._max_pages = max_pages
        self._on_site = on_site

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> CompanySitesSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider._request_dropped, signal=signals.request_dropped)
        crawler.signals.connect(spider._spider_closed, signal=signals.spider_closed)
        return spider

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for site in list(self._sites.values()):
            yield scrapy.Request(
                site.url,
                callback=self._homepage,
                errback=self._homepage_failed,
                dont_filter=True,  # redirect loops must end at the redirect cap, not vanish in the dupefilter
                meta={"row_key": site.row_key, "homepage": True},
            )

    def _homepage(self, response: Response) -> list[scrapy.Request]:
        site = self._sites.get(response.meta["row_key"])
        if site is None:
            return []
        site.pages.append(_page(response))
        requests = []
        if isinstance(response, TextResponse):
            links = [
                Link(
                    response.urljoin(a.attrib["href"]),
                    " ".join(" ".join(a.xpath(".//text() | .//img/@alt").getall()).split()),
                )
                for a in response.xpath("//a[@href]")
            ]
            for url in choose_pages(links, response.url, self._max_pages):
                site.pending += 1
                requests.append(
                    scrapy.Request(
                        url,
                        callback=self._subpage,
                        errback=self._subpage_failed,
                        dont_filter=True,
                        meta={"row_key": site.row_key},
                    )
                )
        self._settle(site)
        return requests

    def _homepage_failed(self, failure: Any) -> None:
        site = self._sites.get(failure.request.meta["row_key"])
        if site is not None:
            site.status, site.detail = failure_status(failure.value)
            self._settle(site)

    def _subpage(self, response: Response) -> None:
        site = self._sites.get(response.meta["row_key"])
        if site is not None:
            site.pages.append(_page(response))
            self._settle(site)

    def _subpage_failed(self, failure: Any) -> None:
        # A missing about page does not change what the homepage gave.
        site = self._sites.get(failure.request.meta["row_key"])
        if site is not None:
            self._settle(site)

    def _request_dropped(self, request: scrapy.Request, spider: scrapy.Spider) -> None:
        site = self._sites.get(request.meta.get("row_key", ""))
        if site is not None:
            if request.meta.get("homepage") and not site.pages:
                site.status, site.detail = Status.PROVIDER_ERROR, "request dropped by the scheduler"
            self._settle(site)

    def _settle(self, site: SiteCrawl) -> None:
        site.pending -= 1
        if site.pending <= 0:
            self._finish(site)

    def _finish(self, site: SiteCrawl) -> None:
        self._sites.pop(site.row_key, None)
        site.fetched_at = datetime.now(UTC)
        self._on_site(site)

    def _spider_closed(self, spider: scrapy.Spider, reason: str) -> None:
        for site in list(self._sites.values()):  # every row gets an answer, whatever stopped the crawl
            if not site.pages:
                site.status, site.detail = Status.PROVIDER_ERROR, f"crawl ended ({reason}) before the homepage came"
            self._finish(site)


def _page(response: Response) -> Page:
    content_type = response.headers.get("Content-Type")
    return Page(response.url, response.body, content_type.decode("latin-1") if content_type else None)


def scrapy_settings(options: CrawlOptions, resolver: Resolver) -> dict[str, Any]:
    """Scrapy settings for a polite, guarded crawl."""
    handler = f"{__name__}.GuardedDownloadHandler"
    return {
        "TWISTED_REACTOR_ENABLED": False,
        "GLAZE_CRAWL": _Shared((options, resolver)),
        # Only the guarded handler downloads; file/ftp/s3/data URLs fail as unsupported schemes.
        "DOWNLOAD_HANDLERS": {"http": handler, "https": handler, "file": None, "ftp": None, "s3": None, "data": None},
        "DOWNLOADER_MIDDLEWARES": {
            # The guard decodes gzip/deflate/br itself with a hard output cap.
            "scrapy.downloadermiddlewares.httpcompression.HttpCompressionMiddleware": None,
            "scrapy.downloadermiddlewares.cookies.CookiesMiddleware": None,
            "scrapy.downloadermiddlewares.httpproxy.HttpProxyMiddleware": None,
            f"{__name__}.RetryAfterMiddleware": 560,
        },
        "USER_AGENT": options.policy.user_agent,
        "ROBOTSTXT_OBEY": options.obey_robots,
        "ROBOTSTXT_USER_AGENT": ROBOTS_AGENT,
        "COOKIES_ENABLED": False,
        "CONCURRENT_REQUESTS": options.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": options.per_site,
        "AUTOTHROTTLE_ENABLED": True,
        "AUTOTHROTTLE_START_DELAY": options.start_delay_s,
        "AUTOTHROTTLE_MAX_DELAY": options.max_delay_s,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": 1.0,
        "DOWNLOAD_DELAY": 0,
        # Random jitter would cut a Retry-After wait short; AutoThrottle already spreads requests.
        "DOWNLOAD_DELAY_JITTER": 0,
        "DOWNLOAD_TIMEOUT": options.policy.timeout_s,
        "DOWNLOAD_MAXSIZE": options.policy.max_bytes,
        "DOWNLOAD_WARNSIZE": 0,
        "REDIRECT_MAX_TIMES": options.policy.max_redirects,
        # 429 and 503 belong to RetryAfterMiddleware.
        "RETRY_HTTP_CODES": [500, 502, 504, 522, 524, 408],
        "RETRY_TIMES": 2,
        "RETRY_GIVE_UP_LOG_LEVEL": "INFO",  # the row records the outcome as its status
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,
        "LOGSTATS_INTERVAL": 0,
        "MEMUSAGE_ENABLED": False,
        "STATS_DUMP": False,
    }


async def crawl_sites(
    targets: Sequence[Target], options: CrawlOptions, on_site: OnSite, resolver: Resolver | None = None
) -> dict[str, Any]:
    """Crawl every target; `on_site` gets each site as soon as it is done. Returns scrapy's stats.

    Never raises for a site: each ends with a status. Runs in the calling asyncio loop.
    """
    if not targets:
        return {}
    runner = AsyncCrawlerRunner(scrapy_settings(options, resolver or system_resolver))
    crawler = runner.create_crawler(CompanySitesSpider)
    await runner.crawl(crawler, targets=targets, max_pages=options.max_pages, on_site=on_site)
    return dict(crawler.stats.get_stats()) if crawler.stats else {}
