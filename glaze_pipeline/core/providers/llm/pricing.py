"""What a model call costs: tokens in and out, cached and uncached, times a price table per model.

Prices are USD per million tokens (Anthropic's public list). Cache writes cost
1.25× input, cache reads 0.1× input; the Message Batches API halves everything.
"""

from __future__ import annotations

from dataclasses import dataclass

from glaze_pipeline.errors import UserFacingError

CACHE_WRITE_FACTOR = 1.25
CACHE_READ_FACTOR = 0.10
BATCH_FACTOR = 0.50


@dataclass(frozen=True)
class ModelPrice:
    input_per_mtok: float
    output_per_mtok: float


PRICES: dict[str, ModelPrice] = {
    "claude-haiku-4-5": ModelPrice(1.00, 5.00),
    "claude-sonnet-4-5": ModelPrice(3.00, 15.00),
    "claude-opus-4-1": ModelPrice(15.00, 75.00),
}
DEFAULT_MODEL = "claude-haiku-4-5"


class UnknownModelPrice(UserFacingError, ValueError):
    pass


def price_of(model: str) -> ModelPrice:
    for name, price in PRICES.items():
        if model == name or model.startswith(name + "-"):  # dated snapshots share their family's price
            return price
    raise UnknownModelPrice(f"no price for model {model!r}; known: {', '.join(PRICES)} (add it to core/llm/pricing.py)")


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_creation_input_tokens + other.cache_creation_input_tokens,
            self.cache_read_input_tokens + other.cache_read_input_tokens,
        )


def cost_usd(model: str, usage: Usage, *, batch: bool = False) -> float:
    price = price_of(model)
    dollars = (
        usage.input_tokens * price.input_per_mtok
        + usage.cache_creation_input_tokens * price.input_per_mtok * CACHE_WRITE_FACTOR
        + usage.cache_read_input_tokens * price.input_per_mtok * CACHE_READ_FACTOR
        + usage.output_tokens * price.output_per_mtok
    ) / 1_000_000
    return dollars * (BATCH_FACTOR if batch else 1.0)
