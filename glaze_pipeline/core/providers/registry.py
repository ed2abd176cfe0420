"""Build the configured providers by name: the waterfall order file names them, this makes them."""

from __future__ import annotations

from glaze_pipeline.config import Settings
from glaze_pipeline.core.model.provider import Provider
from glaze_pipeline.core.providers.api import ApiProvider, Vendor
from glaze_pipeline.core.providers.fresh_linkedin import FreshLinkedinVendor
from glaze_pipeline.core.providers.llm.provider import LlmProvider, LlmSettings
from glaze_pipeline.core.providers.serper import SerperVendor
from glaze_pipeline.core.providers.website import WebsiteProvider
from glaze_pipeline.core.storage.llm_batches import BatchStore
from glaze_pipeline.core.web.crawl_options import CrawlOptions
from glaze_pipeline.core.web.fetch import FetchPolicy, OverrideResolver

# Paid providers: name → vendor module. Switching vendor is a new module and a new entry here.
VENDORS: dict[str, type[Vendor]] = {"linkedin": FreshLinkedinVendor, "search": SerperVendor}
KNOWN_PROVIDERS = ("website", *VENDORS, "llm")


def fetch_policy(settings: Settings) -> FetchPolicy:
    return FetchPolicy(
        allow_private=settings.allow_private_networks,
        allowed_networks=settings.allowed_networks,
        max_bytes=settings.fetch_max_bytes,
        timeout_s=settings.fetch_timeout_s,
    )


def crawl_options(settings: Settings) -> CrawlOptions:
    return CrawlOptions(
        policy=fetch_policy(settings),
        max_pages=settings.crawl_max_pages,
        concurrency=settings.fetch_concurrency,
        start_delay_s=settings.crawl_start_delay_s,
    )


def build_provider(
    name: str, settings: Settings, *, redis_url: str | None = None, database_url: str | None = None
) -> Provider:
    """`redis_url` feeds the paid providers' shared rate limiter (without it each process limits alone);
    `database_url` lets providers that keep state in Postgres (LLM batches) find it."""
    if name == "website":
        resolver = OverrideResolver.parse(settings.resolve_overrides) if settings.resolve_overrides else None
        return WebsiteProvider(crawl_options(settings), resolver)
    if name in VENDORS:
        return ApiProvider(
            VENDORS[name](),
            settings.apis[name],
            settings.retry,
            redis_url=redis_url,
            redis_prefix=settings.redis_prefix,
            fallback_workers=settings.limiter_fallback_workers,
            lease_s=settings.lease_s,
        )
    if name == "llm":
        llm = LlmSettings(
            api_key=settings.anthropic_api_key,
            base_url=settings.anthropic_base_url,
            model=settings.llm_model,
            batch_threshold=settings.llm_batch_threshold,
            poll_interval_s=settings.llm_poll_interval_s,
            concurrency=settings.llm_concurrency,
            max_tokens_per_field=settings.llm_max_tokens_per_field,
        )
        return LlmProvider(llm, BatchStore(database_url) if database_url else None)
    raise ValueError(f"unknown provider {name!r} in waterfall.toml; known: {', '.join(KNOWN_PROVIDERS)}")
