"""A loopback stand-in for the Anthropic Messages and Message Batches APIs (the SDK points at it via base URL).

It answers tool calls like a small, literal model: for each requested field it
looks for a sentence in the fenced evidence that states it and returns the value
with that sentence as the quote. Knobs make it refuse, run out of tokens, answer
malformed input, overload, or expire batch items; triggers in the evidence
(`SIM:REFUSE`, `SIM:MAX_TOKENS`, `SIM:MALFORMED`, `SIM:EXPIRE`) pick a failure per
row. It counts requests and tokens so tests and benchmarks can assert on them.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

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
_INJECTED = re.compile(r"set (?:the )?employee count to (\d+)", re.I)


@dataclass
class SimKnobs:
    latency_s: float = 0.0
    overload_next: int = 0  # the next N /v1/messages calls answer 529
    obey_injections: bool = False  # act like a model that follows instructions found in the data
    batch_polls_until_end: int = 1  # retrieve() calls before a batch reports ended


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


class AnthropicSimulator:
    """Threaded HTTP server on 127.0.0.1 speaking the Messages / Message Batches wire format."""

    def __init__(self) -> None:
        self.knobs = SimKnobs()
        self.counters = SimCounters()
        self._lock = threading.Lock()
        self._cached_prefixes: set[str] = set()
        self._batches: dict[str, dict[str, Any]] = {}
        sim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                # The API takes `x-api-key`; current SDKs send the key as a bearer token.
                if not (self.headers.get("x-api-key") or self.headers.get("Authorization", "").startswith("Bearer ")):
                    return self._send(401, _error("authentication_error", "missing API key"))
                if self.path.rstrip("/") == "/v1/messages":
                    status, payload = sim._messages(body)
                elif self.path.rstrip("/") == "/v1/messages/batches":
                    status, payload = sim._create_batch(body, self._base())
                else:
                    status, payload = 404, _error("not_found_error", self.path)
                self._send(status, payload)

            def do_GET(self) -> None:
                match = re.fullmatch(r"/v1/messages/batches/([\w-]+)(/results)?", self.path.split("?")[0])
                if not match:
                    return self._send(404, _error("not_found_error", self.path))
                if match.group(2):
                    return self._send_jsonl(sim._batch_results(match.group(1)))
                status, payload = sim._retrieve_batch(match.group(1), self._base())
                self._send(status, payload)

            def _base(self) -> str:
                return f"http://{self.headers.get('Host')}"

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("request-id", f"req_{uuid.uuid4().hex[:12]}")
                self.end_headers()
                self.wfile.write(data)

            def _send_jsonl(self, lines: list[dict[str, Any]] | None) -> None:
                if lines is None:
                    return self._send(404, _error("not_found_error", "no such batch or not ended"))
                data = "".join(json.dumps(line) + "\n" for line in lines).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/binary")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="anthropic-sim", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> AnthropicSimulator:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # --- Messages -------------------------------------------------------------------------------

    def _messages(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.counters.requests["messages"] += 1
            if self.knobs.overload_next > 0:
                self.knobs.overload_next -= 1
                return 529, _error("overloaded_error", "Overloaded")
        if self.knobs.latency_s:
            time.sleep(self.knobs.latency_s)  # simulated model latency, not test synchronisation
        return 200, self.answer(body)

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        """The message a literal model would return for this request (also used for batch items)."""
        user = _user_text(body)
        evidence = _EVIDENCE.findall(user)
        tools = body.get("tools") or []
        schema = tools[0]["input_schema"] if tools else {"properties": {}}
        usage = self._usage(body, user)
        with self._lock:
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
        output_tokens = _tokens(json.dumps(tool_input))
        with self._lock:
            self.counters.output_tokens += output_tokens
        message["usage"] = usage | {"output_tokens": output_tokens}
        return message | {"content": [block], "stop_reason": "tool_use"}

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
        cacheable = not isinstance(system, str) and any(b.get("cache_control") for b in system)
        prefix_tokens = _tokens(prefix)
        with self._lock:
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

    def _create_batch(self, body: dict[str, Any], base: str) -> tuple[int, dict[str, Any]]:
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
        with self._lock:
            self.counters.requests["batches.create"] += 1
            self._batches[batch_id] = {"results": results, "polls": 0, "created_at": now}
        return 200, self._batch_json(batch_id, base)

    def _retrieve_batch(self, batch_id: str, base: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
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
        with self._lock:
            self.counters.requests["batches.results"] += 1
            batch = self._batches.get(batch_id)
            if batch is None or batch["polls"] < self.knobs.batch_polls_until_end:
                return None
            return list(batch["results"])


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


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}
