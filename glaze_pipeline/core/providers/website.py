"""The website provider: fetch a company's homepage through the fetch guard and extract what it states.

Free and first in the waterfall, so every field it fills correctly is money the
paid providers do not spend.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Self

from glaze_pipeline.core.candidates import Attempt, Evidence
from glaze_pipeline.core.extract import Page, decode_html, extract
from glaze_pipeline.core.fetch import FetchPolicy, GuardedFetcher, Resolver
from glaze_pipeline.core.fields import EntityType
from glaze_pipeline.core.llm.evidence import visible_text
from glaze_pipeline.core.status import Status
from glaze_pipeline.core.waterfall import Target


class WebsiteProvider:
    name = "website"
    version = "2"  # 2: answers carry the page text as evidence
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
        self._fetcher: GuardedFetcher | None = None
        self._limit: asyncio.Semaphore | None = None

    async def __aenter__(self) -> Self:
        self._fetcher = await GuardedFetcher(self.policy, self.resolver, max_connections=self.concurrency).__aenter__()
        self._limit = asyncio.Semaphore(self.concurrency)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._fetcher is not None:
            await self._fetcher.__aexit__(None, None, None)
        self._fetcher = self._limit = None

    def request_key(self, target: Target) -> str:
        return target.normalized_url

    async def enrich(self, targets: Sequence[Target]) -> list[Attempt]:
        if self._fetcher is None or self._limit is None:
            raise RuntimeError("WebsiteProvider.enrich outside `async with provider`")
        return list(await asyncio.gather(*(self._one(self._fetcher, self._limit, t) for t in targets)))

    @staticmethod
    async def _one(fetcher: GuardedFetcher, limit: asyncio.Semaphore, target: Target) -> Attempt:
        async with limit:
            result = await fetcher.fetch(target.normalized_url)
        fetched_at = datetime.now(UTC)
        if not result.ok:
            status = result.failure or Status.PROVIDER_ERROR
            return Attempt(target.row_key, (), status, fetched_at=fetched_at, detail=result.detail)
        page = Page(result.url, result.body, result.headers.get("content-type"))
        found = extract([page], result.url)
        # The page's readable text travels on as evidence for the LLM stage.
        text = visible_text(decode_html(page.body, page.content_type))
        return Attempt(
            target.row_key,
            tuple(found),
            Status.FILLED if found else Status.NOT_FOUND,
            fetched_at=fetched_at,
            evidence=(Evidence(result.url, text),) if text else (),
        )
