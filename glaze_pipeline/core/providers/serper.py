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
from glaze_pipeline.core.model.fields import CATALOG, EntityType
from glaze_pipeline.core.model.provider import Target
from glaze_pipeline.core.providers.api import ApiRequest

SNIPPETS_KEPT = 5
# knowledgeGraph.attributes label → (catalog field, confidence). Google's panel has no "Industry"
# attribute: the kind of company is `knowledgeGraph.type` ("Technology company"), read apart.
KNOWLEDGE_GRAPH_ATTRIBUTES: dict[str, tuple[str, int]] = {
    "Headquarters": ("company_hq_location", 75),
    "Founded": ("company_founded_year", 75),
    "Number of employees": ("company_employee_count", 65),
}
INDUSTRY_CONFIDENCE = 65
# A panel's type names an organisation when it ends in one of these words ("Software company",
# "Automobile manufacturer"); "City in Germany" or "American entrepreneur" is another kind of panel.
_ORGANISATION_TYPE = re.compile(
    r"\b(?:company|corporation|manufacturer|firm|business|retailer|bank|agency|provider|developer|"
    r"organi[sz]ation|consultancy|producer|publisher|operator|group|chain|studio|insurer|airline|carrier|"
    r"brewery|winery|supplier|distributor|wholesaler|maker|contractor|startup|conglomerate|cooperative)$",
    re.IGNORECASE,
)
_GENERIC_SUFFIX = re.compile(r"\s+(?:company|corporation|business|firm)$", re.IGNORECASE)
_US_STATES = frozenset(
    {
        *("AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY"),
        *("LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND"),
        *("OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY", "DC"),
    }
)
_YEAR = re.compile(r"\b(1[6-9]\d\d|20\d\d)\b")
_LINKEDIN_COMPANY = re.compile(r"^https?://([a-z]{2,3}\.)?(www\.)?linkedin\.com/company/([^/?#]+)", re.IGNORECASE)


class SerperVendor:
    name = "search"
    # 2: industry from knowledgeGraph.type, city and country from Headquarters ("Cupertino, CA" is the US).
    version = "2"
    fields = frozenset(
        {
            "company_linkedin",
            "company_website",
            "company_description",
            "company_industry",
            "company_city",
            "company_country",
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
            found.extend(knowledge_graph(graph))
        snippets = tuple(
            Evidence(str(r["link"]), f"{r.get('title', '')}: {r.get('snippet', '')}".strip(": "))
            for r in organic[:SNIPPETS_KEPT]
        )
        return found, snippets


def knowledge_graph(graph: dict[str, Any]) -> list[Found]:
    """What Google's panel states, read from its display strings (they are written for people, not parsers)."""
    cite = f"knowledge graph: {graph.get('title', '')}".strip()
    found: list[Found] = []
    if graph.get("website"):
        found.append(Found("company_website", str(graph["website"]), 80, cite))
    if graph.get("description"):
        found.append(Found("company_description", str(graph["description"]), 70, cite))
    if industry := industry_of(str(graph.get("type") or "")):
        found.append(Found("company_industry", industry, INDUSTRY_CONFIDENCE, cite))
    attributes = graph.get("attributes")
    for label, raw in attributes.items() if isinstance(attributes, dict) else ():
        if label not in KNOWLEDGE_GRAPH_ATTRIBUTES or not isinstance(raw, str) or not raw.strip():
            continue
        name, confidence = KNOWLEDGE_GRAPH_ATTRIBUTES[label]
        if label == "Headquarters":
            found.extend(Found(f, v, c, cite) for f, v, c in headquarters(raw, confidence))
        elif label == "Founded":
            if year := _YEAR.search(raw):  # "April 1, 1976, Los Altos, CA": the year, not where
                found.append(Found(name, year.group(1), confidence, cite))
        else:
            found.append(Found(name, raw.split("(")[0].strip(), confidence, cite))  # "182,502 (2024)"
    return found


def industry_of(kind: str) -> str | None:
    """ "Software company" → "Software"; "Automobile manufacturer" stays; a city's or a person's panel → None."""
    kind = " ".join(kind.split())
    if not kind or not _ORGANISATION_TYPE.search(kind):
        return None
    return _GENERIC_SUFFIX.sub("", kind) or None


def headquarters(raw: str, confidence: int) -> list[tuple[str, str, int]]:
    """ "Cupertino, CA" or "Berlin, Germany": the place as written, its city, and its country when it says one.

    Google writes a US place with its state ("CA" is California there, not Canada) and any other with its country.
    """
    place = " ".join(raw.split())
    parts = [p.strip() for p in place.split(",") if p.strip()]
    found = [("company_hq_location", place, confidence)]
    if len(parts) < 2:
        return found
    found.append(("company_city", parts[0], confidence - 5))
    last = parts[-1]
    country = "US" if last in _US_STATES else CATALOG["company_country"].clean(last) if len(last) > 2 else None
    if country:
        found.append(("company_country", country, confidence - 5))
    return found


def _cite(result: dict[str, Any]) -> str:
    return f"{result.get('link')} — {result.get('snippet', '')}"
