"""The website provider: crawl each company's homepage and about/contact/legal pages, extract what they state.

Free and first in the waterfall, so every field it fills correctly is money the
paid providers do not spend. Each chunk of rows is one crawl batch in a child
process (`core.crawl_batch`), or in this process for a chunk of a few rows (a single-record request);
every row ends with a status, never an exception.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from glaze_pipeline.core.model.candidates import Attempt
from glaze_pipeline.core.model.fields import SOCIAL_FIELDS, EntityType
from glaze_pipeline.core.model.provider import Provider, Target
from glaze_pipeline.core.model.status import Status
from glaze_pipeline.core.storage.cache import scoped_request
from glaze_pipeline.core.web.crawl_batch import BatchJob, crawl
from glaze_pipeline.core.web.crawl_options import CrawlOptions
from glaze_pipeline.core.web.crawl_options import Target as CrawlTarget
from glaze_pipeline.core.web.fetch import OverrideResolver


class WebsiteProvider(Provider):
    name = "website"
    # 2: scrapy crawl of up to 4 pages beyond the homepage, deeper extraction; 3: page text as evidence;
    # 4: a choice step with reasons, losing candidates kept, calibrated confidence. Part of the cache key.
    version = "4"
    fields = frozenset(
        {
            "company_name",
            "company_description",
            "company_website",
            "company_hq_location",
            "company_city",
            "company_country",
            "company_employee_count",
            "company_founded_year",
            *SOCIAL_FIELDS,
            "company_logo_url",
            "company_email",
            "company_phone",
        }
    )
    entity_types = frozenset({EntityType.COMPANY_WEBSITE})
    price_usd = 0.0

    def __init__(self, options: CrawlOptions, resolver: OverrideResolver | None = None) -> None:
        self.options = options
        # Only an override table (not any callable) can be handed to the crawler's child process.
        self.job = BatchJob(
            options,
            resolve_overrides=str(resolver) if resolver is not None else "",
            system_dns=resolver is None or resolver.fallback is not None,
        )
        self.pages_fetched = 0
        self.fetch_scope = fetch_scope(options, resolver)

    def request_key(self, target: Target) -> str:
        """The URL, and the fetch configuration when it is not the plain one: a page fetched through a pin
        (GLAZE_RESOLVE) or from a private network is another site's answer, never served to a run without them."""
        return scoped_request(target.normalized_url, self.fetch_scope)

    async def enrich(self, targets: Sequence[Target]) -> list[Attempt]:
        crawl_targets = [CrawlTarget(t.row_key, t.normalized_url) for t in targets]
        results, stats = await crawl(crawl_targets, self.job)
        self.pages_fetched += stats.pages
        attempts = []
        for result in results:
            if result.status != Status.FILLED:
                attempts.append(
                    Attempt(result.row_key, (), result.status, fetched_at=result.fetched_at, detail=result.detail)
                )
                continue
            status = Status.FILLED if result.found else Status.NOT_FOUND
            detail = f"{len(result.pages)} page(s): " + " ".join(result.pages)
            # The pages' readable text travels on as evidence for the LLM stage.
            attempts.append(
                Attempt(
                    result.row_key,
                    result.found,
                    status,
                    fetched_at=result.fetched_at,
                    detail=detail[:500],
                    evidence=result.evidence,
                )
            )
        return attempts


def fetch_scope(options: CrawlOptions, resolver: OverrideResolver | None) -> str:
    """What in the fetch configuration changes which server answers: pins, DNS fallback, private networks."""
    policy = options.policy
    scope: dict[str, object] = {}
    if resolver is not None:
        scope["resolve"] = sorted(str(resolver).split(","))
        scope["system_dns"] = resolver.fallback is not None
    if policy.allow_private:
        scope["allow_private"] = True
    if policy.allowed_networks:
        scope["allowed_networks"] = sorted(str(n) for n in policy.allowed_networks)
    return json.dumps(scope, sort_keys=True) if scope else ""
