"""Validating merged records: bad cells are cleared and explained row by row; the table check guards landing."""

from __future__ import annotations

import json
from typing import Any

import polars as pl
import pytest

from glaze_pipeline.core.model.fields import FIELD_NAMES
from glaze_pipeline.core.model.records import record_schema
from glaze_pipeline.core.model.status import Status
from glaze_pipeline.core.pipeline.validation import check_table, passes_every_check, validate_records


def record(key: str, **values: str | None) -> dict[str, Any]:
    """A merged record as merge() would produce it: each given field filled by the website provider."""
    provenance = {
        name: {"status": "filled", "confidence": 80, "source": "website"}
        if value is not None
        else {"status": "not_found"}
        for name, value in values.items()
    }
    statuses = {p["status"] for p in provenance.values()}
    return {
        "row_key": key,
        "input_url": f"{key}.example",
        "normalized_url": f"https://{key}.example",
        "entity_type": "company_website",
        **{name: values.get(name) for name in FIELD_NAMES},
        "provenance": json.dumps(provenance, sort_keys=True),
        "cost_usd": 0.01,
        "status": "filled" if statuses == {"filled"} else "partial",
    }


GOOD = {
    "company_name": "Acme",
    "company_email": "hello@acme.example",
    "company_country": "DE",
    "company_founded_year": "1999",
}


def records(*rows: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=record_schema())


def clean_table() -> pl.DataFrame:
    return records(record("a", **GOOD), record("b", **GOOD), record("c", company_name="Cee", company_email=None))


def reasons_of(rejects: pl.DataFrame, key: str) -> list[dict[str, str]]:
    rows = rejects.filter(pl.col("row_key") == key)["reasons"].to_list()
    assert len(rows) == 1, rows
    return json.loads(rows[0])


# --- row-level ----------------------------------------------------------------------------------


def test_clean_records_pass_untouched() -> None:
    table = clean_table()
    result = validate_records(table)
    assert result.records.equals(table)
    assert result.rejects.is_empty()
    assert result.failure_cases.is_empty()


@pytest.mark.parametrize(
    ("column", "bad_value"),
    [
        ("company_email", "not-an-email"),
        ("company_email", "Hello@Acme.example"),  # not normalised: the catalog lower-cases emails
        ("company_country", "Germany"),
        ("company_founded_year", "3020"),
        ("company_phone", "030 1234567"),
        ("company_linkedin", "https://linkedin.com/company/acme?trk=x"),
    ],
)
def test_a_bad_cell_is_cleared_marked_rejected_and_explained(column: str, bad_value: str) -> None:
    table = records(record("good", **GOOD), record("bad", **(GOOD | {column: bad_value})), record("last", **GOOD))
    result = validate_records(table)

    assert result.records.height == 3
    assert result.records["row_key"].to_list() == ["good", "bad", "last"]
    bad = result.records.filter(pl.col("row_key") == "bad").to_dicts()[0]
    assert bad[column] is None
    provenance = json.loads(bad["provenance"])
    assert provenance[column]["status"] == Status.REJECTED.value
    assert provenance[column]["rejected_value"] == bad_value
    assert provenance[column]["source"] == "website"  # where it came from is still on record
    for other in set(GOOD) - {column}:
        assert bad[other] == GOOD[other]
        assert provenance[other]["status"] == "filled"
    assert bad["status"] == Status.PARTIAL.value

    assert result.rejects["row_key"].to_list() == ["bad"]
    reasons = reasons_of(result.rejects, "bad")
    assert [r["field"] for r in reasons] == [column]
    assert "str_matches" in reasons[0]["check"]
    assert reasons[0]["value"] == bad_value

    # Good rows are exactly as they were.
    untouched = pl.col("row_key").is_in(["good", "last"])
    assert result.records.filter(untouched).equals(table.filter(untouched))


def test_several_bad_cells_in_one_row_give_one_reject_row_naming_each() -> None:
    bad_values = {"company_email": "nope", "company_country": "Germany", "company_founded_year": "3020"}
    table = records(record("good", **GOOD), record("bad", **(GOOD | bad_values)))
    result = validate_records(table)

    bad = result.records.filter(pl.col("row_key") == "bad").to_dicts()[0]
    assert {name: bad[name] for name in bad_values} == dict.fromkeys(bad_values)
    assert bad["company_name"] == "Acme"
    provenance = json.loads(bad["provenance"])
    assert {name: provenance[name]["status"] for name in bad_values} == dict.fromkeys(bad_values, "rejected")

    assert result.rejects.height == 1
    reasons = reasons_of(result.rejects, "bad")
    assert sorted(r["field"] for r in reasons) == sorted(bad_values)
    assert all(r["check"] for r in reasons)


def test_a_row_whose_only_filled_field_is_rejected_becomes_rejected() -> None:
    table = records(record("a", company_email="bad email"))
    result = validate_records(table)
    row = result.records.to_dicts()[0]
    assert row["company_email"] is None
    assert row["status"] == Status.REJECTED.value


def test_overlong_values_are_rejected_by_the_catalog_length() -> None:
    table = records(record("a", **(GOOD | {"company_name": "x" * 201})))
    result = validate_records(table)
    assert result.records["company_name"].to_list() == [None]
    assert [r["field"] for r in reasons_of(result.rejects, "a")] == ["company_name"]
    assert "str_length" in reasons_of(result.rejects, "a")[0]["check"]


def test_structural_failures_are_left_to_the_table_check() -> None:
    broken = records(record("a", **GOOD), record("b", **(GOOD | {"company_email": "nope"}))).with_columns(
        status=pl.lit("bogus")
    )
    result = validate_records(broken)
    assert result.records.equals(broken)  # nothing cleared: a broken table is not a bad row
    assert result.rejects.is_empty()
    assert not result.failure_cases.is_empty()
    assert not check_table(result.records, 0, 0.5).passed


# --- table-level --------------------------------------------------------------------------------


def test_check_table_passes_for_clean_data() -> None:
    verdict = check_table(clean_table(), 0, 0.1)
    assert verdict.passed
    assert verdict.problems == []
    assert (verdict.rows, verdict.rejected_rows, verdict.reject_rate) == (3, 0, 0.0)


def test_check_table_passes_after_bad_cells_were_cleared_but_not_before() -> None:
    table = records(record("a", **GOOD), record("b", **(GOOD | {"company_country": "Germany"})))
    before = check_table(table, 0, 1.0)
    assert not before.passed
    assert any("company_country" in p for p in before.problems)

    result = validate_records(table)
    after = check_table(result.records, result.rejects.height, 1.0)
    assert after.passed, after.problems
    assert after.reject_rate == 0.5


@pytest.mark.parametrize("missing", ["company_email", "row_key", "normalized_url"])
def test_check_table_fails_on_missing_columns(missing: str) -> None:
    verdict = check_table(clean_table().drop(missing), 0, 0.1)
    assert not verdict.passed
    assert any("missing columns" in p and missing in p for p in verdict.problems)


def test_check_table_fails_when_an_extra_column_breaks_the_schema() -> None:
    verdict = check_table(clean_table().with_columns(surprise=pl.lit("x")), 0, 0.1)
    assert not verdict.passed
    assert verdict.problems


@pytest.mark.parametrize(
    ("rejected", "max_rate", "passed"),
    [(0, 0.0, True), (1, 0.25, False), (1, 1 / 3, True), (2, 0.5, False), (3, 0.99, False), (3, 1.0, True)],
)
def test_check_table_fails_when_the_reject_rate_is_over_the_limit(rejected: int, max_rate: float, passed: bool) -> None:
    verdict = check_table(clean_table(), rejected, max_rate)
    assert verdict.passed is passed
    assert verdict.reject_rate == pytest.approx(rejected / 3)
    assert any("reject rate" in p for p in verdict.problems) is not passed


def test_check_table_of_an_empty_table_passes() -> None:
    verdict = check_table(records(), 0, 0.0)
    assert verdict.passed
    assert verdict.reject_rate == 0.0


# --- the one-pass check agrees with pandera ---------------------------------------------------------


BREAKAGES = {
    "bad email": lambda f: f.with_columns(
        pl.when(pl.col("row_key") == "b")
        .then(pl.lit("not-an-email"))
        .otherwise(pl.col("company_email"))
        .alias("company_email")
    ),
    "empty value": lambda f: f.with_columns(pl.lit("").alias("company_name")),
    "too long": lambda f: f.with_columns(pl.lit("x" * 5000).alias("company_description")),
    "country not a code": lambda f: f.with_columns(pl.lit("Germany").alias("company_country")),
    "duplicate key": lambda f: f.with_columns(pl.lit("a").alias("row_key")),
    "null key": lambda f: f.with_columns(pl.lit(None, pl.String).alias("row_key")),
    "url without scheme": lambda f: f.with_columns(pl.lit("acme.example").alias("normalized_url")),
    "unknown entity type": lambda f: f.with_columns(pl.lit("planet").alias("entity_type")),
    "negative cost": lambda f: f.with_columns(pl.lit(-0.5).alias("cost_usd")),
    "unknown status": lambda f: f.with_columns(pl.lit("great").alias("status")),
    "null status": lambda f: f.with_columns(pl.lit(None, pl.String).alias("status")),
    "extra column": lambda f: f.with_columns(pl.lit(1).alias("surprise")),
    "missing column": lambda f: f.drop("company_phone"),
    "mistyped column": lambda f: f.with_columns(pl.col("cost_usd").cast(pl.String)),
}


def test_one_pass_check_passes_what_pandera_passes():
    table = clean_table()
    assert passes_every_check(table) and validate_records(table).failure_cases.is_empty()
    assert passes_every_check(records())


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_one_pass_check_fails_whatever_pandera_fails(breakage):
    broken = BREAKAGES[breakage](clean_table())
    assert not passes_every_check(broken)
    assert not validate_records(broken).failure_cases.is_empty()  # pandera then says what failed
