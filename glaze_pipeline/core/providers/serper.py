"""Web search through the Serper wire format (POST /search, header X-API-KEY).

Finds a company's LinkedIn page and official site, reads facts from the
knowledge graph, and keeps the top snippets as evidence for the LLM stage
(in the attempt's `detail`, as JSON).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from glaze_pipeline.core.model.candidates import Evidence, Found
from glaze_pipeline.core.model.fields import EntityType
from glaze_pipeline.core.model.provider import Target
from glaze_pipeline.core.providers.api import ApiRequest

SNIPPETS_KEPT = 5
# knowledgeGraph.attributes label → (catalog field, confidence)
KNOWLEDGE_GRAPH_ATTRIBUTES: dict[str, tuple[str, int]] = {
    "Headquarters": ("company_hq_location", 75),
    "Founded": ("company_founded_year", 75),
    "Number of employees": ("company_employee_count", 65),
    "Industry": ("company_industry", 70),
}
_LINKEDIN_COMPANY = re.compile(r"^https?://([a-z]{2,3}\.)?(www\.)?linkedin\.com/company/([^/?#]+)", re.IGNORECASE)


class SerperVendor:
    name = "search"
    version = "1"
    fields = frozenset(
        {
            "company_linkedin",
            "company_website",
            "company_description",
            "company_industry",
            *(f for f, _ in KNOWLEDGE_GRAPH_ATTRIBUTES.values()),
        }
    )
    entity_types = frozenset({EntityType.COMPANY_WEBSITE, EntityType.LINKEDIN_COMPANY})

    def headers(self, api_key: str) -> dict[str, str]:
        return {"X-API-KEY": api_key}

    def request(self, target: Target) -> ApiRequest | None:
        return ApiRequest("POST", "search", body={"q": self.query(target), "num": 10})

    @staticmethod
    def query(target: Target) -> str:
        """A website row is searched by its domain; a LinkedIn row by the best name known, else its handle."""
        if target.entity_type == EntityType.COMPANY_WEBSITE:
            return urlsplit(target.normalized_url).hostname or target.normalized_url
        name = target.known.get("company_name")
        return name or target.normalized_url.rstrip("/").rsplit("/", 1)[-1].replace("-", " ")

    def billed(self, http_status: int) -> bool:
        return http_status == 200

    def parse(self, target: Target, data: Any) -> tuple[list[Found], tuple[Evidence, ...]]:
        found: list[Found] = []
        organic = [r for r in data.get("organic") or [] if isinstance(r, dict) and r.get("link")]
        label = (urlsplit(target.normalized_url).hostname or "").removeprefix("www.").split(".")[0]
        if target.entity_type == EntityType.COMPANY_WEBSITE:
            for result in organic:
                match = _LINKEDIN_COMPANY.match(str(result["link"]))
                if match:
                    # A page whose handle carries the domain's name is very likely the company's own.
                    confidence = 75 if label and label in match.group(3).lower() else 55
                    found.append(Found("company_linkedin", str(result["link"]), confidence, _cite(result)))
                    break
        graph = data.get("knowledgeGraph") or {}
        if isinstance(graph, dict) and graph:
            cite = f"knowledge graph: {graph.get('title', '')}".strip()
            if graph.get("website"):
                found.append(Found("company_website", str(graph["website"]), 80, cite))
            if graph.get("description"):
                found.append(Found("company_description", str(graph["description"]), 70, cite))
            for label_text, value in (graph.get("attributes") or {}).items():
                if label_text in KNOWLEDGE_GRAPH_ATTRIBUTES and value:
                    name, confidence = KNOWLEDGE_GRAPH_ATTRIBUTES[label_text]
                    text = str(value).split("(")[0].strip()  # "182,502 (2024)": the figure, not its year
                    found.append(Found(name, text, confidence, cite))
        snippets = tuple(
            Evidence(str(r["link"]), f"{r.get('title', '')}: {r.get('snippet', '')}".strip(": "))
            for r in organic[:SNIPPETS_KEPT]
        )
        return found, snippets


def _cite(result: dict[str, Any]) -> str:
    return f"{result.get('link')} — {result.get('snippet', '')}"
