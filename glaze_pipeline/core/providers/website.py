"""The website provider: fetch a company's homepage through the fetch guard and extract what it states.

Free and first in the waterfall, so every field it fills correctly is money the
paid providers do not spend.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from glaze_pipeline.core.candidates import Attempt
from glaze_pipeline.core.extract import Page, extract
from glaze_pipeline.core.fetch import FetchPolicy, GuardedFetcher, Resolver
from glaze_pipeline.core.fields import EntityType
from glaze_pipeline.core.status import Status
from glaze_pipeline.core.waterfall import Target


class WebsiteProvider:
    name = "website"
    version = "1"
    fields = frozenset(
        {
            "company_name",
            "company_description",
            "company_website",
            "company_city",
            "company_country",
            "company_employee_count",
            "company_founded_year",
            "company_linkedin",
            "company_twitter",
            "company_email",
            "company_phone",
        }
    )
    entity_types = frozenset({EntityType.COMPANY_WEBSITE})
    price_usd = 0.0

    def __init__(self, policy: FetchPolicy, resolver: Resolver | None = None, concurrency: int = 32) -> None:
        self.policy = policy
        self.resolver = resolver
        self.concurrency = concurrency

    def request_key(self, target: Target) -> str:
        return target.normalized_url

    async def enrich(self, targets: Sequence[Target]) -> list[Attempt]:
        limit = asyncio.Semaphore(self.concurrency)
        async with GuardedFetcher(self.policy, self.resolver, max_connections=self.concurrency) as fetcher:

            async def one(target: Target) -> Attempt:
                async with limit:
                    result = await fetcher.fetch(target.normalized_url)
                fetched_at = datetime.now(UTC)
                if not result.ok:
                    status = result.failure or Status.PROVIDER_ERROR
                    return Attempt(target.row_key, (), status, fetched_at=fetched_at, detail=result.detail)
                found = extract([Page(result.url, result.body, result.headers.get("content-type"))], result.url)
                status = Status.FILLED if found else Status.NOT_FOUND
                return Attempt(target.row_key, tuple(found), status, fetched_at=fetched_at)

            return list(await asyncio.gather(*(one(t) for t in targets)))
