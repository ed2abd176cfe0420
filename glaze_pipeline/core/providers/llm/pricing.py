"""What a model call costs: tokens in and out, cached and uncached, times a price table per model.

Prices are USD per million tokens (Anthropic's public list). Cache writes cost
1.25× input, cache reads 0.1× input; the Message Batches API halves everything.
`max_call_cost_usd` is the most one call can cost, which the budget reserves before sending it.
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
# Tokens the API adds to a request besides our text: the tool-use system prompt (313–346 tokens for the
# Claude 4 models with tool_choice any/tool, per Anthropic's tool-use docs) and the message framing.
REQUEST_OVERHEAD_TOKENS = 600


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


def max_input_tokens(request_text: str) -> int:
    """An upper bound on the input tokens of a request whose text (system, tools, messages) this is.

    Claude's tokenizer is not public, but a byte-level BPE never makes more tokens than the text has
    UTF-8 bytes, so bytes plus the API's own overhead bound it (English text runs ~4 bytes per token,
    so the bound is ~4× the real count; it is released as soon as the call settles).
    """
    return len(request_text.encode("utf-8")) + REQUEST_OVERHEAD_TOKENS


def max_call_cost_usd(model: str, request_text: str, max_tokens: int) -> float:
    """The most one (non-batch) call can cost: every input token at the cache-write price, max_tokens out."""
    price = price_of(model)
    input_usd = max_input_tokens(request_text) * price.input_per_mtok * max(1.0, CACHE_WRITE_FACTOR)
    return (input_usd + max_tokens * price.output_per_mtok) / 1_000_000
