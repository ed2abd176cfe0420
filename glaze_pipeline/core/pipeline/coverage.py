"""Which wanted field the configured providers can fill, said before a run starts and again in its summary.

A field no configured provider fills stays empty on every row; saying so once, with the provider
(and key) that would fill it, beats 32 rows of `skipped_no_key` or `not_found` that look like misses.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from glaze_pipeline.config import Settings
from glaze_pipeline.core.model.fields import CATALOG, SUBJECT_OF_ENTITY, EntityType
from glaze_pipeline.core.model.provider import Provider
from glaze_pipeline.core.providers.registry import build_provider

_KEY_VARIABLE = re.compile(r"\b[A-Z][A-Z0-9_]*_KEY\b")


@dataclass(frozen=True)
class FieldCoverage:
    """Who can fill one wanted field for this table's rows: providers that will try, and those without a key."""

    field: str
    applies: bool  # some row of the table is the kind of entity the field describes
    configured: tuple[str, ...]
    without_key: tuple[str, ...]
    key_variables: tuple[str, ...]
    from_input: bool = False  # the table has a column of its own for it

    @property
    def unfillable(self) -> bool:
        return self.applies and not self.configured and not self.from_input

    @property
    def why(self) -> str:
        """Why no configured provider will fill the field, or "" when some provider will try it."""
        if not self.applies:
            return f"describes a {CATALOG[self.field].subject}, and no row of this table is one"
        if not self.unfillable:
            return ""
        if not self.without_key:
            return "no provider in the waterfall fills it"
        would = " or ".join(self.without_key)
        keys = f" (set {' or '.join(self.key_variables)})" if self.key_variables else ""
        return f"no configured provider fills it; {would} would{keys}"

    @property
    def note(self) -> str:
        """The sentence said before a run: `company_hq_location: no configured provider fills it; …`."""
        return f"{self.field}: {self.why}" if self.why else ""


def provider_fields(providers: Sequence[Provider]) -> dict[str, frozenset[str]]:
    """Provider → the fields it can fill: the merge keeps a provider's failure out of fields it never fills."""
    return {p.name: p.fields for p in providers}


def field_coverage(
    providers: Sequence[Provider],
    wanted: Sequence[str],
    entity_types: Collection[str],
    hint_fields: Collection[str] = (),
) -> list[FieldCoverage]:
    """Per wanted field, the providers that will try it for the table's kinds of rows, and those that cannot."""
    kinds = {EntityType(e) for e in entity_types}
    coverage = []
    for name in wanted:
        subject = CATALOG[name].subject
        relevant = {e for e in kinds if SUBJECT_OF_ENTITY[e] == subject}
        able = [p for p in providers if name in p.fields and relevant & p.entity_types]
        missing = [p for p in able if p.unavailable]
        keys = tuple(dict.fromkeys(v for p in missing for v in _KEY_VARIABLE.findall(p.unavailable or "")))
        coverage.append(
            FieldCoverage(
                field=name,
                applies=bool(relevant),
                configured=tuple(p.name for p in able if not p.unavailable),
                without_key=tuple(p.name for p in missing),
                key_variables=keys,
                from_input=name in hint_fields,
            )
        )
    return coverage


def configured_providers(settings: Settings) -> list[Provider]:
    """The waterfall's providers as configured now (keys or not); building them opens nothing."""
    return [build_provider(name, settings) for name in settings.waterfall_order]


def coverage_notes(coverage: Sequence[FieldCoverage]) -> list[str]:
    return [c.note for c in coverage if c.note]
