"""Which wanted fields the configured providers fill: said before a run, and in its summary."""

from __future__ import annotations

from glaze_pipeline.config import settings
from glaze_pipeline.core.pipeline.coverage import configured_providers, coverage_notes, field_coverage

COMPANIES = ["company_website"]


def _notes(
    env: dict[str, str], wanted: list[str], kinds: list[str] = COMPANIES, hints: frozenset[str] = frozenset()
) -> list[str]:
    providers = configured_providers(settings({"GLAZE_HOME": "/tmp/glaze-coverage"} | env))
    return coverage_notes(field_coverage(providers, wanted, kinds, hints))


def test_a_field_only_paid_providers_fill_is_named_with_the_keys_that_would_fill_it() -> None:
    assert _notes({}, ["company_name", "company_industry"]) == [
        "company_industry: no configured provider fills it; search or linkedin or llm would"
        " (set GLAZE_SEARCH_API_KEY or GLAZE_LINKEDIN_API_KEY or ANTHROPIC_API_KEY)"
    ]


def test_one_configured_provider_is_enough_and_an_input_column_counts() -> None:
    assert _notes({"GLAZE_SEARCH_API_KEY": "k" * 10}, ["company_industry"]) == []
    assert _notes({}, ["company_industry"], hints=frozenset({"company_industry"})) == []


def test_a_field_no_row_of_the_table_is_about_is_said_too() -> None:
    assert _notes({}, ["person_title"]) == ["person_title: describes a person, and no row of this table is one"]
    assert _notes({"GLAZE_LINKEDIN_API_KEY": "k" * 10}, ["person_title"], ["linkedin_person"]) == []
