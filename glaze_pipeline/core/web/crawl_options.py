"""What a crawl is asked to do: its targets and options, without scrapy.

Kept apart from `core.web.crawler` so that building the website provider (and importing the code
location) does not import scrapy; scrapy is imported where a crawl actually runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from glaze_pipeline.core.web.fetch import FetchPolicy


@dataclass(frozen=True)
class CrawlOptions:
    """How hard and how far to crawl; the defaults are the polite production ones."""

    policy: FetchPolicy = field(default_factory=FetchPolicy)
    max_pages: int = 4  # beyond the homepage
    concurrency: int = 64  # requests in flight over all sites together
    per_site: int = 2  # requests in flight to one site
    start_delay_s: float = 1.0  # AutoThrottle's first delay between requests to one site
    max_delay_s: float = 10.0
    retry_after_cap_s: float = 30.0  # a site asking for a longer wait is left as rate_limited
    obey_robots: bool = True


@dataclass(frozen=True)
class Target:
    row_key: str
    url: str
