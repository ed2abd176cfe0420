"""Request and response bodies of the API, with the field catalog as an enum and an example for each."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from glaze_pipeline.core.model.fields import CATALOG, FIELD_NAMES, SUBJECT_OF_ENTITY, EntityType
from glaze_pipeline.core.model.urls import Entity, InvalidUrl, parse_entity


def _aliases() -> list[str]:
    """Short names as the reference design writes them ("name", "industry"): the URL's subject picks the field."""
    short = {name.split("_", 1)[1] for name in FIELD_NAMES if "_" in name}
    return sorted(s for s in short if s not in CATALOG)


FieldName = StrEnum("FieldName", {n: n for n in (*FIELD_NAMES, *_aliases())})  # type: ignore[misc]
FieldName.__doc__ = "A catalog field (docs/fields.md), or its short form without `company_` / `person_`."
RequestStatus = Literal["queued", "running", "completed", "failed"]


def resolve_fields(names: list[str], entity_type: EntityType) -> list[str]:
    """Catalog names in catalog order; a short name is the field of the URL's subject. ValueError names a misfit."""
    subject = SUBJECT_OF_ENTITY[entity_type]
    resolved = []
    for name in names:
        full = name if name in CATALOG else f"{subject.value}_{name}"
        if full not in CATALOG or CATALOG[full].subject != subject:
            raise ValueError(
                f"field {name!r} does not describe a {entity_type.value} URL; ask for {subject.value}_* fields"
            )
        resolved.append(full)
    return [n for n in FIELD_NAMES if n in resolved]


class EnrichBody(BaseModel):
    """One URL to enrich and the fields wanted of it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"url": "https://example.com", "type": "company_website", "fields": ["company_name", "industry"]}
            ]
        },
    )
    url: str = Field(min_length=1, max_length=2048, description="A company website or a LinkedIn company/person URL.")
    type: EntityType | None = Field(default=None, description="The kind of URL; checked against what the URL is.")
    fields: list[FieldName] = Field(min_length=1, max_length=64, description="Fields to fill (docs/fields.md).")
    max_cost_usd: float | None = Field(
        default=None,
        ge=0,
        le=100,
        allow_inf_nan=False,  # NaN would switch every budget comparison off
        description="Most this request may spend; default GLAZE_MAX_COST_PER_ROW_USD.",
    )

    @field_validator("url")
    @classmethod
    def _parses(cls, value: str) -> str:
        try:
            parse_entity(value)
        except InvalidUrl as exc:
            raise ValueError(str(exc)) from exc
        return value

    def entity(self) -> Entity:
        entity = parse_entity(self.url)
        if self.type is not None and entity.entity_type != self.type:
            raise ValueError(f"the URL is a {entity.entity_type.value}, not a {self.type.value}")
        return entity

    def wanted(self, entity: Entity) -> list[str]:
        return resolve_fields([f.value for f in self.fields], entity.entity_type)


class FieldValue(BaseModel):
    value: str
    confidence: int | None = None
    source: str | None = None
    evidence: str | None = None
    fetched_at: str | None = None


class Gap(BaseModel):
    status: str = Field(description="Why the field is empty: not_found, budget_exhausted, skipped_no_key, …")
    attempts: dict[str, str] | None = Field(default=None, description="Each provider's own reason.")


class Costs(BaseModel):
    total_usd: float
    by_provider: dict[str, float]


_RESULT_EXAMPLE: dict[str, Any] = {
    "request_id": "6f1c2d4e-1b7a-4c1e-9a55-0d6f3f0e9b21",
    "status": "completed",
    "url": "https://example.com",
    "normalized_url": "https://example.com/",
    "entity_type": "company_website",
    "fields": ["company_name", "company_industry"],
    "cache_hit": False,
    "data": {
        "company_name": {
            "value": "Example Ltd",
            "confidence": 90,
            "source": "website",
            "evidence": "https://example.com/about",
            "fetched_at": "2026-01-04T10:30:05+00:00",
        }
    },
    "gaps": {"company_industry": {"status": "not_found", "attempts": {"website": "not_found"}}},
    "costs": {"total_usd": 0.0, "by_provider": {}},
    "error": None,
    "created_at": "2026-01-04T10:30:00+00:00",
    "finished_at": "2026-01-04T10:30:05+00:00",
    "run_id": "b0c5…",
    "run_url": "http://127.0.0.1:3000/runs/b0c5…",
}


class EnrichResult(BaseModel):
    """A request: its status and, once completed, the reference design's result (data, gaps, costs)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_RESULT_EXAMPLE]})
    request_id: str
    status: RequestStatus
    url: str
    normalized_url: str
    entity_type: str
    fields: list[str]
    cache_hit: bool
    data: dict[str, FieldValue] | None = None
    gaps: dict[str, Gap] | None = None
    costs: Costs | None = None
    error: str | None = None
    created_at: datetime
    finished_at: datetime | None = None
    run_id: str | None = None
    run_url: str | None = None


class RequestEvent(BaseModel):
    """One message on the WebSocket: the status, and the whole result once the request is done."""

    request_id: str
    status: RequestStatus
    result: EnrichResult | None = None


class Problem(BaseModel):
    """An error the caller can act on; `detail` says what to do."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"detail": "a valid API key is required"}]})
    detail: str


class TableCreated(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "table_id": "leads",
                    "url_column": "website",
                    "fields": ["company_name"],
                    "rows_in": 10,
                    "accepted": 8,
                    "rejected": 1,
                    "duplicates": 1,
                    "status": "pending",
                }
            ]
        }
    )
    table_id: str
    url_column: str
    fields: list[str]
    rows_in: int
    accepted: int
    rejected: int
    duplicates: int
    status: str


class TableSummary(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "table_id": "leads",
                    "name": "leads",
                    "status": "running",
                    "rows_in": 10,
                    "accepted": 8,
                    "rejected": 1,
                    "duplicates": 1,
                    "fields": ["company_name"],
                    "enriched_rows": 0,
                    "coverage": {"company_name": 0.0},
                    "cost_usd": 0.0,
                    "created_at": "2026-01-04T10:30:00+00:00",
                    "updated_at": "2026-01-04T10:30:02+00:00",
                    "last_run_id": "b0c5…",
                    "run_url": "http://127.0.0.1:3000/runs/b0c5…",
                    "progress": {"run_status": "STARTED", "steps_done": 2, "steps_total": 7},
                }
            ]
        }
    )
    table_id: str
    name: str
    status: str
    rows_in: int
    accepted: int
    rejected: int
    duplicates: int
    fields: list[str]
    enriched_rows: int
    coverage: dict[str, float] = Field(description="Share of the table's entities with a value, per wanted field.")
    cost_usd: float = Field(description="What the ledger says the table's paid calls cost.")
    created_at: datetime
    updated_at: datetime
    last_run_id: str | None = None
    run_url: str | None = None
    progress: dict[str, Any] | None = Field(default=None, description="The last run's status and steps done.")


class Health(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok", "postgres": "ok", "redis": "ok"}]})
    status: Literal["ok", "degraded"]
    postgres: str
    redis: str
