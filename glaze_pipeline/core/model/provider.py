"""The provider contract: what the waterfall asks of every provider, each optional capability with its default.

Providers implement it; the pipeline only calls it. Keeping it in the vocabulary
layer means a provider never imports the orchestrator to implement its interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Self

from glaze_pipeline.core.model.candidates import Attempt, Evidence
from glaze_pipeline.core.model.fields import EntityType

DEFAULT_CHUNK_ROWS = 200  # rows per enrich() call: answers are cached every chunk, the most a killed run can lose
DEFAULT_INFLIGHT_CHUNKS = 2  # chunks in flight at once, so one slow row does not idle the provider


@dataclass(frozen=True)
class Target:
    """One entity a provider is asked about, and which of its fields are still gaps."""

    row_key: str
    entity_type: EntityType
    normalized_url: str
    missing: tuple[str, ...]
    known: dict[str, str] = field(default_factory=dict)
    # Text earlier stages gathered about this entity (page excerpts, snippets), for the LLM stage.
    evidence: tuple[Evidence, ...] = ()


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"


class LimiterMode(StrEnum):
    SHARED = "redis"  # one limit for every process, kept in Redis
    LOCAL = "local"  # Redis unreachable: this process keeps its share of the limit alone


@dataclass(frozen=True)
class ProviderHealth:
    """How a paid provider's safety machinery fared in a stage, for metadata and warnings."""

    requests: int = 0  # HTTP requests, retries included
    breaker: BreakerState | None = None  # None: the provider has no circuit breaker
    breaker_reason: str = ""
    breaker_trips: int = 0
    limiter: LimiterMode | None = None  # None: the provider has no shared rate limiter
    limiter_note: str = ""

    def describe_breaker(self) -> str:
        if self.breaker is None:
            return "-"
        state = self.breaker.value if self.breaker == BreakerState.CLOSED else f"open: {self.breaker_reason}"
        return f"{state} ({self.breaker_trips} trips)"

    def describe_limiter(self) -> str:
        if self.limiter is None:
            return "-"
        return self.limiter.value if not self.limiter_note else f"{self.limiter.value} ({self.limiter_note})"


class Provider(ABC):
    """A source of field values. `enrich` is the one method to write; the rest has defaults.

    A failing row is a status in its Attempt, never an exception. `enrich` is called with
    several chunks at once; the provider enforces its own concurrency across them.
    """

    name: str
    version: str  # bump when answers change shape or meaning: it is part of the cache key
    fields: frozenset[str]
    entity_types: frozenset[EntityType]
    price_usd: float = 0.0  # per call; 0 for free providers
    chunk_size: int = DEFAULT_CHUNK_ROWS
    max_inflight: int = DEFAULT_INFLIGHT_CHUNKS
    unavailable: str | None = None  # why the provider cannot run at all (no key): its rows are skipped_no_key

    def max_cost_usd(self, target: Target) -> float:
        """The most one call for this target can cost: what the budget reserves before the call is sent."""
        return self.price_usd

    def request_key(self, target: Target) -> str:
        """The exact request this target turns into, for the cache key; by default the entity's URL."""
        return target.normalized_url

    @abstractmethod
    async def enrich(self, targets: Sequence[Target]) -> list[Attempt]:
        """One attempt per target, in any order."""

    def health(self) -> ProviderHealth:
        """Breaker, limiter and request counts after a stage; free providers have none."""
        return ProviderHealth()

    async def __aenter__(self) -> Self:
        """Open clients once per stage (connection pools, limiters)."""
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None
