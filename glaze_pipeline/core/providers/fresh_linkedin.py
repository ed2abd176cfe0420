"""LinkedIn data through the Fresh LinkedIn Data API on RapidAPI (host web-scraping-api2.p.rapidapi.com).

The only vendor-specific part of the LinkedIn provider: which endpoint a row
calls and how the documented answer fields map to the catalog. Another vendor
is another module like this one, named in the registry.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from glaze_pipeline.core.model.candidates import Evidence, Found
from glaze_pipeline.core.model.fields import EntityType, signed_url_expiry
from glaze_pipeline.core.model.provider import Target
from glaze_pipeline.core.providers.api import ApiRequest

RAPIDAPI_HOST = "web-scraping-api2.p.rapidapi.com"

# Documented answer field → (catalog field, confidence). Company endpoints share one shape.
COMPANY_FIELDS: dict[str, tuple[str, int]] = {
    "company_name": ("company_name", 90),
    "description": ("company_description", 85),
    "industry": ("company_industry", 85),
    "employee_count": ("company_employee_count", 80),
    "employee_range": ("company_employee_range", 85),
    "hq_full_address": ("company_hq_location", 80),
    "hq_city": ("company_city", 85),
    "hq_country": ("company_country", 85),
    "year_founded": ("company_founded_year", 85),
    "website": ("company_website", 85),
    "logo_url": ("company_logo_url", 80),
    "specialities": ("company_specialities", 80),  # one comma-separated string, as the API sends it
    "linkedin_url": ("company_linkedin", 95),
}
PERSON_FIELDS: dict[str, tuple[str, int]] = {
    "full_name": ("person_name", 90),
    "job_title": ("person_title", 85),
    "headline": ("person_title", 60),  # only when job_title is absent (lower confidence loses the merge)
    "location": ("person_location", 80),
    "company": ("person_company", 85),
    "linkedin_url": ("person_linkedin", 95),
}


class FreshLinkedinVendor:
    name = "linkedin"
    version = "1"
    fields = frozenset(f for f, _ in (*COMPANY_FIELDS.values(), *PERSON_FIELDS.values()))
    entity_types = frozenset({EntityType.COMPANY_WEBSITE, EntityType.LINKEDIN_COMPANY, EntityType.LINKEDIN_PERSON})

    def headers(self, api_key: str) -> dict[str, str]:
        return {"x-rapidapi-key": api_key, "x-rapidapi-host": RAPIDAPI_HOST}

    def request(self, target: Target) -> ApiRequest | None:
        if target.entity_type == EntityType.LINKEDIN_PERSON:
            return ApiRequest("GET", "get-personal-profile", {"linkedin_url": target.normalized_url})
        if target.entity_type == EntityType.LINKEDIN_COMPANY:
            return ApiRequest("GET", "get-company-by-linkedinurl", {"linkedin_url": target.normalized_url})
        if linkedin := target.known.get("company_linkedin"):  # found upstream: the exact page beats a domain guess
            return ApiRequest("GET", "get-company-by-linkedinurl", {"linkedin_url": linkedin})
        host = urlsplit(target.normalized_url).hostname
        return ApiRequest("GET", "get-company-by-domain", {"domain": host}) if host else None

    def billed(self, http_status: int) -> bool:
        return http_status == 200  # RapidAPI bills answered requests; a 404 "no such profile" is free

    def parse(self, target: Target, data: Any) -> tuple[list[Found], tuple[Evidence, ...]]:
        record = data.get("data") if isinstance(data, dict) else None
        if not isinstance(record, dict) or not record:
            return [], ()
        mapping = PERSON_FIELDS if target.entity_type == EntityType.LINKEDIN_PERSON else COMPANY_FIELDS
        evidence = str(record.get("linkedin_url") or target.normalized_url)
        found: list[Found] = []
        for key, (field_name, confidence) in mapping.items():
            value = _value(record, key)
            if value in (None, ""):
                continue
            cite = evidence
            if key == "logo_url" and (expiry := signed_url_expiry(str(value))):
                # The CDN link is signed and dies at its expiry; the record keeps the link and says when.
                cite = f"{evidence}; signed link, expires {expiry:%Y-%m-%d %H:%M} UTC"
            found.append(Found(field_name, str(value), confidence, cite))
        return found, ()


def _value(record: dict[str, Any], key: str) -> object:
    """One answer field, read the way the API sends it (and the older spellings it has used)."""
    value = record.get(key)
    if key == "industry" and not value and isinstance(record.get("industries"), list):
        value = record["industries"][0] if record["industries"] else None
    if key == "specialities" and not value:
        value = record.get("specialties")  # the spelling of older answers, a list
    if isinstance(value, list):
        value = ", ".join(str(v).strip() for v in value if v)
    if isinstance(value, str):
        value = value.strip()
    return value
