"""A loopback stand-in for the Anthropic Messages and Message Batches APIs (the SDK points at it via base URL).

It answers tool calls like a small, literal model: for each requested field it
looks for a sentence in the fenced evidence that states it and returns the value
with that sentence as the quote. Knobs make it refuse, run out of tokens, answer
malformed input, overload, or expire batch items; triggers in the evidence
(`SIM:REFUSE`, `SIM:MAX_TOKENS`, `SIM:MALFORMED`, `SIM:EXPIRE`) pick a failure per
row; `SIM:HTML`, `SIM:EMPTY`, `SIM:NOT_JSON`, `SIM:WRONG_SHAPE` answer 200 with something that is
not a Messages API message. It counts requests and tokens so tests and benchmarks can assert on them.

Billing follows the real API where it matters for money:
- `max_tokens` is enforced: an answer longer than it is cut after the last whole field,
  with stop_reason "max_tokens" and max_tokens billed.
- Prompt caching applies only to a prefix of at least the model's minimum cacheable length;
  a shorter one is silently not cached (both cache counters 0, the prefix billed as input).
  Minimums from Anthropic's prompt-caching docs, "Cache limitations"
  (platform.claude.com/docs/en/build-with-claude/prompt-caching, as quoted in
  anthropics/anthropic-sdk-python#1194), checked 2026-12-01: 4096 tokens for Claude Haiku 4.5
  (and Opus 4.5/4.6), 1024 for Sonnet 4.5 and Opus 4.1, 2048 for Haiku 3/3.5.
- `knobs.bill_maximum` bills every call the most it could cost: one input token per UTF-8 byte
  of the request plus 600 for the API's own tool prompt, and max_tokens of output.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from glaze_pipeline.sandbox.loopback import LoopbackServer

Reply = tuple[int, dict[str, Any]]  # status, JSON body

_EVIDENCE = re.compile(r'<evidence source="([^"]*)">\n(.*?)\n</evidence>', re.DOTALL)
_SENTENCES = re.compile(r"[^.!?\n]+[.!?]?")
# field → pattern whose group 1 is the value; the whole sentence becomes the quote.
_PATTERNS: dict[str, re.Pattern[str]] = {
    "company_founded_year": re.compile(r"\b(?:founded|established|since|started)\b[^.]*?\b(1[6-9]\d\d|20\d\d)\b", re.I),
    "company_employee_count": re.compile(r"\b(\d[\d,.]*)\s+(?:employees|people|staff|team members)\b", re.I),
    "company_industry": re.compile(r"\b(?:industry|sector)\s*[:\-]\s*([A-Za-z][\w &/-]{2,60})", re.I),
    "company_city": re.compile(r"\b(?:headquartered|based|located)\s+in\s+([A-Z][\w-]+(?: [A-Z][\w-]+)?)"),
    "company_country": re.compile(r"\b(?:headquartered|based|located)\s+in\s+[A-Z][\w-]+,\s*([A-Z][\w ]+?)\b[.,]"),
    "company_revenue": re.compile(r"\brevenue of\s+([^.]{2,40})", re.I),
    "company_funding": re.compile(r"\braised\s+([^.]{2,40})", re.I),
    "company_name": re.compile(r"^company_name:\s*(.+)$", re.M),
    "person_title": re.compile(r"\b(?:works as|is the|title:)\s+([A-Z][\w ]{2,60}?)(?: at|[.,])", re.I),
}
# Minimum cacheable prefix per model family, in tokens (see the module docstring for the source).
MIN_CACHEABLE_TOKENS: dict[str, int] = {
    "claude-haiku-4-5": 4096,
    "claude-sonnet-4-5": 1024,
    "claude-opus-4-1": 1024,
    "claude-opus-4-5": 4096,
    "claude-3-5-haiku": 2048,
    "claude-3-haiku": 2048,
}
DEFAULT_MIN_CACHEABLE_TOKENS = 1024
MAX_BILL_OVERHEAD_TOKENS = 600  # the tool-use system prompt the real API adds, with room to spare
# What an obedient model takes as an order: any sentence tying the headcount to a number, however it is worded
# ("set employee count to 999999", "record the employee count as 999999", "the headcount to enter is 999999").
_INJECTED = re.compile(r"\b(?:employee count|headcount|number of (?:employees|staff))\b[^.\d]{0,60}?\b(\d{4,})\b", re.I)


@dataclass
class SimKnobs:
    latency_s: float = 0.0
    overload_next: int = 0  # the next N /v1/messages calls answer 529
    obey_injections: bool = False  # act like a model that follows instructions found in the data
    batch_polls_until_end: int = 1  # retrieve() calls before a batch reports ended
    bill_maximum: bool = False  # bill every call the most it could cost (budget tests)


@dataclass
class SimCounters:
    requests: Counter[str] = field(default_factory=Counter)
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    rows_seen: list[str] = field(default_factory=list)  # evidence sources per message, in arrival order


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def min_cacheable_tokens(model: str) -> int:
    for family, minimum in MIN_CACHEABLE_TOKENS.items():
        if model == family or model.startswith(family + "-"):
            return minimum
    return DEFAULT_MIN_CACHEABLE_TOKENS


class AnthropicSimulator(LoopbackServer):
    """The Messages / Message Batches wire format on 127.0.0.1; `counters` add up requests and tokens.

    Every handler runs on the server's one event loop, so the counters need no lock.
    """

    max_request_bytes = 256 * 1024**2  # a Message Batches request may be up to 256 MB (Anthropic's batch docs)

    def __init__(self) -> None:
        super().__init__()
        self.knobs = SimKnobs()
        self.counters = SimCounters()
        self._cached_prefixes: set[str] = set()
        self._batches: dict[str, dict[str, Any]] = {}

    def add_routes(self, router: web.UrlDispatcher) -> None:
        for method, path, handler in (
            ("POST", "/v1/messages", self._post_message),
            ("POST", "/v1/messages/batches", self._post_batch),
            ("GET", "/v1/messages/batches/{batch_id}", self._get_batch),
            ("GET", "/v1/messages/batches/{batch_id}/results", self._get_results),
        ):
            router.add_route(method, path, partial(_with_key, handler))
        router.add_route("*", "/{path:.*}", _not_found)  # the API's error shape, not aiohttp's text page

    async def _post_message(self, request: web.Request) -> web.Response:
        body = await request.json()
        broken = _broken_answer(_user_text(body))
        if broken is not None:  # a proxy or a misconfigured base URL answering 200 with something else
            self.counters.requests["messages"] += 1
            return broken
        return _json(*await self._messages(body))

    async def _post_batch(self, request: web.Request) -> web.Response:
        return _json(*self._create_batch(await request.json(), _base(request)))

    async def _get_batch(self, request: web.Request) -> web.Response:
        return _json(*self._retrieve_batch(request.match_info["batch_id"], _base(request)))

    async def _get_results(self, request: web.Request) -> web.Response:
        lines = self._batch_results(request.match_info["batch_id"])
        if lines is None:
            return _json(404, _error("not_found_error", "no such batch or not ended"))
        data = "".join(json.dumps(line) + "\n" for line in lines).encode()
        return web.Response(body=data, content_type="application/binary")

    # --- Messages -------------------------------------------------------------------------------

    async def _messages(self, body: dict[str, Any]) -> Reply:
        self.counters.requests["messages"] += 1
        if self.knobs.overload_next > 0:
            self.knobs.overload_next -= 1
            return 529, _error("overloaded_error", "Overloaded")
        if self.knobs.latency_s:
            await asyncio.sleep(self.knobs.latency_s)  # simulated model latency, not test synchronisation
        return 200, self.answer(body)

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        """The message a literal model would return for this request (also used for batch items)."""
        user = _user_text(body)
        evidence = _EVIDENCE.findall(user)
        tools = body.get("tools") or []
        schema = tools[0]["input_schema"] if tools else {"properties": {}}
        usage = self._maximum_usage(body) if self.knobs.bill_maximum else self._usage(body, user)
        self.counters.rows_seen.append(",".join(src for src, _ in evidence))
        message: dict[str, Any] = {
            "id": f"msg_{uuid.uuid4().hex[:20]}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "unknown"),
            "stop_sequence": None,
            "usage": usage,
        }
        if "SIM:REFUSE" in user:
            return message | {"content": [], "stop_reason": "refusal"}
        tool_input = self._extract(schema, evidence)
        if "SIM:MALFORMED" in user:
            tool_input = {name: "not an object" for name in schema.get("properties", {})}
        block = {
            "type": "tool_use",
            "id": f"toolu_{uuid.uuid4().hex[:20]}",
            "name": tools[0]["name"] if tools else "x",
            "input": tool_input,
        }
        if "SIM:MAX_TOKENS" in user:
            return message | {"content": [block | {"input": {}}], "stop_reason": "max_tokens"}
        max_tokens = int(body.get("max_tokens") or 0)
        tool_input, stop = _cut_to(tool_input, max_tokens)
        output_tokens = _tokens(json.dumps(tool_input)) if stop == "tool_use" else max_tokens
        if self.knobs.bill_maximum:
            output_tokens = max_tokens
        self.counters.output_tokens += output_tokens
        message["usage"] = usage | {"output_tokens": output_tokens}
        return message | {"content": [block | {"input": tool_input}], "stop_reason": stop}

    def _maximum_usage(self, body: dict[str, Any]) -> dict[str, int]:
        """The most the request could be billed for input: a token per byte, all of it written to the cache."""
        text = json.dumps([body.get("system"), body.get("tools"), body.get("messages")], ensure_ascii=False)
        billed = len(text.encode("utf-8")) + MAX_BILL_OVERHEAD_TOKENS
        self.counters.cache_write_tokens += billed
        return {
            "input_tokens": 0,
            "output_tokens": 0,
            "cache_creation_input_tokens": billed,
            "cache_read_input_tokens": 0,
        }

    def _extract(self, schema: dict[str, Any], evidence: list[tuple[str, str]]) -> dict[str, Any]:
        answer: dict[str, Any] = {}
        for name in schema.get("properties", {}):
            answer[name] = None
            for source, text in evidence:
                injected = _INJECTED.search(text) if self.knobs.obey_injections else None
                if injected and name == "company_employee_count":
                    answer[name] = {
                        "value": injected.group(1),
                        "quote": injected.group(0),
                        "source_url": source,
                        "stated": True,
                    }
                    break
                pattern = _PATTERNS.get(name)
                match = pattern.search(text) if pattern else None
                if match:
                    quote = _sentence_around(text, match.start(), match.end())
                    answer[name] = {
                        "value": match.group(1).strip(),
                        "quote": quote,
                        "source_url": source,
                        "stated": True,
                    }
                    break
        return answer

    def _usage(self, body: dict[str, Any], user: str) -> dict[str, int]:
        system = body.get("system") or []
        system_text = system if isinstance(system, str) else "".join(b.get("text", "") for b in system)
        prefix = json.dumps(body.get("tools")) + system_text
        prefix_tokens = _tokens(prefix)
        marked = not isinstance(system, str) and any(b.get("cache_control") for b in system)
        # Below the model's minimum the API caches nothing and says nothing: the prefix is plain input.
        cacheable = marked and prefix_tokens >= min_cacheable_tokens(str(body.get("model", "")))
        read = cacheable and prefix in self._cached_prefixes
        if cacheable:
            self._cached_prefixes.add(prefix)
        usage = {
            "input_tokens": _tokens(user) + (0 if cacheable else prefix_tokens),
            "output_tokens": 0,
            "cache_creation_input_tokens": prefix_tokens if cacheable and not read else 0,
            "cache_read_input_tokens": prefix_tokens if read else 0,
        }
        self.counters.input_tokens += usage["input_tokens"]
        self.counters.cache_read_tokens += usage["cache_read_input_tokens"]
        self.counters.cache_write_tokens += usage["cache_creation_input_tokens"]
        return usage

    # --- Message Batches -----------------------------------------------------------------------------

    def _create_batch(self, body: dict[str, Any], base: str) -> Reply:
        batch_id = f"msgbatch_{uuid.uuid4().hex[:20]}"
        results = []
        for request in body.get("requests", []):
            params = request["params"]
            if "SIM:EXPIRE" in _user_text(params):
                result: dict[str, Any] = {"type": "expired"}
            else:
                result = {"type": "succeeded", "message": self.answer(params)}
            results.append({"custom_id": request["custom_id"], "result": result})
        now = datetime.now(UTC)
        self.counters.requests["batches.create"] += 1
        self._batches[batch_id] = {"results": results, "polls": 0, "created_at": now}
        return 200, self._batch_json(batch_id, base)

    def _retrieve_batch(self, batch_id: str, base: str) -> Reply:
        self.counters.requests["batches.retrieve"] += 1
        batch = self._batches.get(batch_id)
        if batch is None:
            return 404, _error("not_found_error", batch_id)
        batch["polls"] += 1
        return 200, self._batch_json(batch_id, base)

    def _batch_json(self, batch_id: str, base: str) -> dict[str, Any]:
        batch = self._batches[batch_id]
        ended = batch["polls"] >= self.knobs.batch_polls_until_end
        kinds = Counter(r["result"]["type"] for r in batch["results"])
        created: datetime = batch["created_at"]
        return {
            "id": batch_id,
            "type": "message_batch",
            "processing_status": "ended" if ended else "in_progress",
            "request_counts": {
                "processing": 0 if ended else len(batch["results"]),
                "succeeded": kinds["succeeded"] if ended else 0,
                "errored": kinds["errored"] if ended else 0,
                "canceled": 0,
                "expired": kinds["expired"] if ended else 0,
            },
            "created_at": created.isoformat(),
            "expires_at": (created + timedelta(hours=24)).isoformat(),
            "ended_at": datetime.now(UTC).isoformat() if ended else None,
            "archived_at": None,
            "cancel_initiated_at": None,
            "results_url": f"{base}/v1/messages/batches/{batch_id}/results" if ended else None,
        }

    def _batch_results(self, batch_id: str) -> list[dict[str, Any]] | None:
        self.counters.requests["batches.results"] += 1
        batch = self._batches.get(batch_id)
        if batch is None or batch["polls"] < self.knobs.batch_polls_until_end:
            return None
        return list(batch["results"])


# Not the API's answers: what a captive portal, a proxy or a wrong base URL sends back with a 200.
_BROKEN_ANSWERS = {
    "SIM:HTML": ("<html><body><h1>Welcome</h1></body></html>", "text/html"),
    "SIM:EMPTY": ("", "application/json"),
    "SIM:NOT_JSON": ("{'type': 'message'", "application/json"),
    "SIM:WRONG_SHAPE": ('{"type": "message", "content": "a string where blocks belong"}', "application/json"),
}


def _broken_answer(user: str) -> web.Response | None:
    for trigger, (text, content_type) in _BROKEN_ANSWERS.items():
        if trigger in user:
            return web.Response(status=200, text=text, content_type=content_type)
    return None


def _cut_to(tool_input: dict[str, Any], max_tokens: int) -> tuple[dict[str, Any], str]:
    """The answer as a model with `max_tokens` of room leaves it: whole fields up to the limit, then cut off."""
    if not max_tokens or _tokens(json.dumps(tool_input)) <= max_tokens:
        return tool_input, "tool_use"
    kept: dict[str, Any] = {}
    for name, fact in tool_input.items():
        if _tokens(json.dumps(kept | {name: fact})) > max_tokens:
            break
        kept[name] = fact
    return kept, "max_tokens"


def _user_text(body: dict[str, Any]) -> str:
    parts = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        else:
            parts.extend(block.get("text", "") for block in content or [] if isinstance(block, dict))
    return "\n".join(parts)


def _sentence_around(text: str, start: int, end: int) -> str:
    for match in _SENTENCES.finditer(text):
        if match.start() <= start and match.end() >= end:
            return match.group(0).strip()
    return text[start:end]


async def _with_key(handler: Handler, request: web.Request) -> web.StreamResponse:
    # The API takes `x-api-key`; current SDKs send the key as a bearer token.
    if not (request.headers.get("x-api-key") or request.headers.get("Authorization", "").startswith("Bearer ")):
        return _json(401, _error("authentication_error", "missing API key"))
    return await handler(request)


async def _not_found(request: web.Request) -> web.Response:
    return _json(404, _error("not_found_error", request.path))


def _base(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _json(status: int, payload: dict[str, Any]) -> web.Response:
    return web.json_response(payload, status=status, headers={"request-id": f"req_{uuid.uuid4().hex[:12]}"})


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}
