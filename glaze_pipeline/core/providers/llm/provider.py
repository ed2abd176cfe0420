"""The LLM fallback provider: Claude reads the evidence earlier stages gathered and fills only the remaining gaps.

Last and dearest in the waterfall. One tool, generated from the catalog for the
row's missing fields; a short static system prompt; evidence fenced as untrusted
data. Each call's upper bound (`max_cost_usd`) is what the budget reserves before
it is sent. Above `batch_threshold` rows it uses the Message Batches API (half
price) and remembers each batch in Postgres, so a restarted run resumes the batch
it already paid for. The SDK retries 429/5xx itself (max_retries); this module
never retries on top of it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self

from glaze_pipeline.core.model.candidates import Attempt
from glaze_pipeline.core.model.fields import CATALOG, EntityType
from glaze_pipeline.core.model.provider import Provider, Target
from glaze_pipeline.core.model.status import Status
from glaze_pipeline.core.providers.llm.evidence import EvidencePack, build_evidence
from glaze_pipeline.core.providers.llm.pricing import Usage, cost_usd, max_call_cost_usd
from glaze_pipeline.core.providers.llm.tool import SYSTEM_PROMPT, TOOL_NAME, MalformedAnswer, judge_answer, tool_schema
from glaze_pipeline.core.storage.llm_batches import BatchStore, batch_key

if TYPE_CHECKING:  # the SDK costs ~2 s to import: only a provider with an API key opens a client (`__aenter__`)
    import anthropic

log = logging.getLogger(__name__)
MAX_TOKENS_BASE = 64  # the tool call's own framing, before any field
MAX_TOKENS_CAP = 8_192  # within every supported model's output limit
NO_EVIDENCE = '<evidence source="none">\n(no evidence)\n</evidence>'


@dataclass(frozen=True)
class LlmSettings:
    api_key: str | None = field(repr=False)  # never in logs or reprs
    base_url: str | None
    model: str
    max_tokens_per_field: int = 200  # a fact object: value, a quote of up to 200 characters, source URL, flag
    batch_threshold: int = 50
    poll_interval_s: float = 30.0
    concurrency: int = 8
    sdk_max_retries: int = 2
    timeout_s: float = 60.0


class LlmProvider(Provider):
    name = "llm"
    version = "1"
    fields = frozenset(CATALOG)
    entity_types = frozenset(EntityType)
    price_usd = 0.002  # marks the provider as paid; budgets and the dry run price each call per token instead
    chunk_size = 5_000  # one batch should hold as many rows as possible

    def __init__(self, settings: LlmSettings, batches: BatchStore | None) -> None:
        self.settings = settings
        self.batches = batches
        # Said once in the run log and metadata; each affected row gets skipped_no_key.
        self.unavailable = None if settings.api_key else "ANTHROPIC_API_KEY is not set: llm skipped"
        self._client: anthropic.AsyncAnthropic | None = None
        self._limit: asyncio.Semaphore | None = None
        self._packs: dict[str, EvidencePack] = {}

    async def __aenter__(self) -> Self:
        if self.settings.api_key:
            import anthropic

            self._client = anthropic.AsyncAnthropic(
                api_key=self.settings.api_key,
                base_url=self.settings.base_url,
                max_retries=self.settings.sdk_max_retries,
                timeout=self.settings.timeout_s,
            )
        self._limit = asyncio.Semaphore(self.settings.concurrency)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.close()
        self._client = None
        self._packs.clear()

    def _pack(self, target: Target) -> EvidencePack:
        """Built once per row: the cache key needs it before the call, the call needs it again."""
        pack = self._packs.get(target.row_key)
        if pack is None:
            pack = self._packs[target.row_key] = build_evidence(target.evidence, target.known)
        return pack

    def request_key(self, target: Target) -> str:
        """Entity, model, wanted fields and the exact evidence: the prompt names all four, so change any and it
        is a different question (two companies with the same or no evidence must never share an answer)."""
        pack = self._pack(target)
        evidence_hash = hashlib.sha256(pack.text.encode()).hexdigest()
        return json.dumps([target.normalized_url, self.settings.model, sorted(target.missing), evidence_hash])

    def max_tokens(self, fields: Sequence[str]) -> int:
        """Output room sized to the fields asked, so a row with many facts is not cut off half-way."""
        return min(MAX_TOKENS_CAP, MAX_TOKENS_BASE + self.settings.max_tokens_per_field * len(fields))

    def max_cost_usd(self, target: Target) -> float:
        """The most this row's call can cost: its request's input bound at the cache-write price, max_tokens out."""
        params = self._params(target, self._pack(target))
        text = json.dumps([params["system"], params["tools"], params["messages"]], ensure_ascii=False)
        return max_call_cost_usd(self.settings.model, text, params["max_tokens"])

    async def enrich(self, targets: Sequence[Target]) -> list[Attempt]:
        if self._client is None:
            return [Attempt(t.row_key, (), Status.SKIPPED_NO_KEY, detail=f"llm: {self.unavailable}") for t in targets]
        if len(targets) >= self.settings.batch_threshold and self.batches is not None:
            return await self._batch(targets)
        return list(await asyncio.gather(*(self._single(t) for t in targets)))

    # --- one request ------------------------------------------------------------------------------

    def _params(self, target: Target, pack: EvidencePack) -> dict[str, Any]:
        evidence = pack.text or NO_EVIDENCE
        flagged = (
            f"\nNote: {len(pack.removed)} instruction-like passage(s) were removed from this evidence."
            if pack.removed
            else ""
        )
        return {
            "model": self.settings.model,
            "max_tokens": self.max_tokens(target.missing),
            # No cache_control: the prefix (~490 tokens) is below every model's minimum cacheable length, so the
            # API would cache nothing; a longer prefix measured no cheaper per filled field (bench/llm_cost.py).
            "system": [{"type": "text", "text": SYSTEM_PROMPT}],
            "tools": [tool_schema(target.missing)],
            "tool_choice": {"type": "tool", "name": TOOL_NAME},
            "messages": [
                {
                    "role": "user",
                    "content": f"Entity: {target.normalized_url}\nFields wanted: {', '.join(target.missing)}"
                    f"{flagged}\n\n{evidence}",
                }
            ],
        }

    async def _single(self, target: Target) -> Attempt:
        assert self._client is not None and self._limit is not None
        import anthropic  # already loaded by __aenter__

        pack = self._pack(target)
        async with self._limit:
            try:
                message = await self._client.messages.create(**self._params(target, pack))
            except anthropic.APIStatusError as exc:
                return _failed(target, f"HTTP {exc.status_code} {_error_type(exc)}")
            except (anthropic.APIConnectionError, anthropic.APITimeoutError) as exc:
                return _failed(target, f"{type(exc).__name__}")
            except (anthropic.APIError, ValueError) as exc:  # a 200 whose body is not JSON, or not a message
                return _failed(target, f"unreadable answer ({type(exc).__name__}): check ANTHROPIC_BASE_URL")
        if not isinstance(message, anthropic.types.Message):
            return _failed(target, f"the answer is not a message ({type(message).__name__}): check ANTHROPIC_BASE_URL")
        return self._judge(target, pack, message.model_dump(warnings=False), batch=False)

    def _judge(self, target: Target, pack: EvidencePack, message: dict[str, Any], *, batch: bool) -> Attempt:
        """Turn one model message into an attempt: grounded values, or a failure status with what it cost."""
        usage = Usage(**{k: int(v or 0) for k, v in _dict(message.get("usage")).items() if k in Usage.__annotations__})
        cost = cost_usd(self.settings.model, usage, batch=batch)
        now = datetime.now(UTC)
        stop = message.get("stop_reason")
        tokens = (
            f"tokens in={usage.input_tokens} out={usage.output_tokens} cache_write={usage.cache_creation_input_tokens}"
            f" cache_read={usage.cache_read_input_tokens}{' batch' if batch else ''}"
        )
        if stop == "refusal":
            return _failed(target, f"{stop} ({tokens})", cost)
        content = message.get("content")
        if not isinstance(content, list):
            return _failed(target, f"the answer is not a message: check ANTHROPIC_BASE_URL ({tokens})", cost)
        tool_input = next((_dict(b).get("input") for b in content if _dict(b).get("type") == "tool_use"), None)
        if stop == "max_tokens":  # cut off: keep the facts that were complete, never pay again for the rest
            tool_input = _complete_facts(tool_input, target.missing)
            tokens += " stopped at max_tokens"
        if not tool_input and stop == "max_tokens":
            return _failed(target, f"max_tokens before any complete fact ({tokens})", cost)
        if tool_input is None:
            return _failed(target, f"no tool call ({tokens})", cost)
        try:
            judged = judge_answer(tool_input, target.missing, pack)
        except MalformedAnswer as exc:
            return _failed(target, f"malformed tool input: {exc} ({tokens})", cost)
        if stop == "max_tokens" and not judged.found:  # not a "not found": the rest was never written
            return _failed(target, f"max_tokens and no complete fact held ({tokens})", cost)
        notes = [tokens, *judged.dropped]
        if pack.removed:
            notes.append(f"{len(pack.removed)} instruction-like passage(s) removed from evidence")
        status = Status.FILLED if judged.found else Status.NOT_FOUND
        return Attempt(target.row_key, judged.found, status, cost, fetched_at=now, detail="; ".join(notes)[:500])

    # --- Message Batches ------------------------------------------------------------------------------

    async def _batch(self, targets: Sequence[Target]) -> list[Attempt]:
        """Submit (or find the batch a previous run submitted), wait for it, collect; expired items go single."""
        assert self._client is not None and self.batches is not None
        import anthropic  # already loaded by __aenter__

        packs = {t.row_key: self._pack(t) for t in targets}
        ids = {_custom_id(t.row_key): t for t in targets}
        key = batch_key(self.settings.model, (self.request_key(t) for t in targets))
        known = await asyncio.to_thread(self.batches.find, key)
        if known is not None:
            batch_id = known.batch_id
            log.info("llm: resuming batch %s (%d rows) instead of submitting again", batch_id, len(targets))
        else:
            requests = [{"custom_id": cid, "params": self._params(t, packs[t.row_key])} for cid, t in ids.items()]
            try:
                batch = await self._client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
            except anthropic.APIError as exc:
                return [_failed(t, f"batch submit failed: {type(exc).__name__}") for t in targets]
            batch_id = batch.id
            await asyncio.to_thread(self.batches.submitted, key, batch_id, self.settings.model, len(targets))
        while True:
            batch = await self._client.messages.batches.retrieve(batch_id)
            if batch.processing_status == "ended":
                break
            await asyncio.sleep(self.settings.poll_interval_s)  # the API asks clients to poll
        attempts: dict[str, Attempt] = {}
        retry_single: list[Target] = []
        async for item in await self._client.messages.batches.results(batch_id):
            target = ids.get(item.custom_id)
            if target is None:
                continue
            if item.result.type == "succeeded":
                message = item.result.message.model_dump()
                attempts[target.row_key] = self._judge(target, packs[target.row_key], message, batch=True)
            else:  # expired, errored or canceled: ask again one by one
                retry_single.append(target)
        missing = [t for t in targets if t.row_key not in attempts and t not in retry_single]
        retry_single.extend(missing)
        for attempt in await asyncio.gather(*(self._single(t) for t in retry_single)):
            attempts[attempt.row_key] = attempt
        await asyncio.to_thread(self.batches.collected, key)
        return [attempts[t.row_key] for t in targets]


def _dict(value: object) -> dict[str, Any]:
    """A part of the answer as a dict, or empty: the SDK does not validate what the endpoint sent."""
    return value if isinstance(value, dict) else {}


def _complete_facts(tool_input: object, fields: Sequence[str]) -> dict[str, Any]:
    """Of a tool input cut off at max_tokens, the wanted fields whose fact object is whole; the rest stay gaps.

    A field that is null or half-written says nothing about the evidence, so it is left out rather than
    read as "not found"; the row's remaining gaps are asked again by a later run with its own request.
    """
    if not isinstance(tool_input, dict):
        return {}
    keys = ("value", "quote", "source_url")
    return {
        name: fact
        for name, fact in tool_input.items()
        if name in fields and isinstance(fact, dict) and all(isinstance(fact.get(k), str) for k in keys)
    }


def _custom_id(row_key: str) -> str:
    return f"row-{row_key}"[:64]


def _error_type(exc: anthropic.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error")
    return str(error.get("type", "error")) if isinstance(error, dict) else "error"


def _failed(target: Target, reason: str, cost: float = 0.0) -> Attempt:
    """No partial values: a failed row keeps what it cost and why, nothing else."""
    return Attempt(target.row_key, (), Status.LLM_FAILED, cost, fetched_at=datetime.now(UTC), detail=f"llm: {reason}")
