"""Build the configured providers by name: the waterfall order file names them, this makes them."""

from __future__ import annotations

from glaze_pipeline.config import Settings
from glaze_pipeline.core.fetch import FetchPolicy, OverrideResolver
from glaze_pipeline.core.providers.api import ApiProvider, Vendor
from glaze_pipeline.core.providers.fresh_linkedin import FreshLinkedinVendor
from glaze_pipeline.core.providers.serper import SerperVendor
from glaze_pipeline.core.providers.website import WebsiteProvider
from glaze_pipeline.core.waterfall import Provider

# Paid providers: name → vendor module. Switching vendor is a new module and a new entry here.
VENDORS: dict[str, type[Vendor]] = {"linkedin": FreshLinkedinVendor, "search": SerperVendor}
KNOWN_PROVIDERS = ("website", *VENDORS)


def fetch_policy(settings: Settings) -> FetchPolicy:
    return FetchPolicy(
        allow_private=settings.allow_private_networks,
        allowed_networks=settings.allowed_networks,
        max_bytes=settings.fetch_max_bytes,
        timeout_s=settings.fetch_timeout_s,
    )


def build_provider(name: str, settings: Settings, redis_url: str | None = None) -> Provider:
    """`redis_url` is for the shared rate limiter of paid providers; without it each process limits alone."""
    if name == "website":
        resolver = OverrideResolver.parse(settings.resolve_overrides) if settings.resolve_overrides else None
        return WebsiteProvider(fetch_policy(settings), resolver, settings.fetch_concurrency)
    if name in VENDORS:
        return ApiProvider(
            VENDORS[name](),
            settings.apis[name],
            settings.retry,
            redis_url=redis_url,
            redis_prefix=settings.redis_prefix,
            fallback_workers=settings.limiter_fallback_workers,
        )
    raise ValueError(f"unknown provider {name!r} in waterfall.toml; known: {', '.join(KNOWN_PROVIDERS)}")
