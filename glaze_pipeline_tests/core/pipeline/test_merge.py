"""Merging candidates into wide records: who wins, agreement boosts, conflicts, hints, statuses and costs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest

from glaze_pipeline.core.model.candidates import CANDIDATE_SCHEMA, INPUT_SOURCE, Attempt, Found, attempts_to_frame
from glaze_pipeline.core.model.fields import FIELD_NAMES, EntityType
from glaze_pipeline.core.model.records import record_schema
from glaze_pipeline.core.model.status import Status
from glaze_pipeline.core.pipeline.gaps import hint_candidates
from glaze_pipeline.core.pipeline.merge import AGREEMENT_BOOST, NOBODY_ANSWERED, NOBODY_FILLS, audit_trail, merge

COMPANY = EntityType.COMPANY_WEBSITE
PERSON = EntityType.LINKEDIN_PERSON
FETCHED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
PRIORITY = ["website", "search", "linkedin", "llm"]


def source_rows(*rows: tuple[str, EntityType], **hints: list[str | None]) -> pl.DataFrame:
    frame = pl.DataFrame(
        [(key, f"{key}.example", f"https://{key}.example", entity.value) for key, entity in rows],
        schema={"row_key": pl.String, "input_url": pl.String, "normalized_url": pl.String, "entity_type": pl.String},
        orient="row",
    )
    return frame.with_columns(**{name: pl.Series(values, dtype=pl.String) for name, values in hints.items()})


def filled(key: str, name: str, value: str, confidence: int, source: str, cost: float = 0.0) -> dict[str, Any]:
    return {
        "row_key": key,
        "field": name,
        "value": value,
        "confidence": confidence,
        "source": source,
        "evidence": f"{source} evidence",
        "cost_usd": cost,
        "cached": False,
        "fetched_at": FETCHED,
        "status": Status.FILLED.value,
        "detail": "",
    }


def failed(key: str, status: Status, source: str, cost: float = 0.0) -> dict[str, Any]:
    return filled(key, "", "", 0, source, cost) | {
        "field": None,
        "value": None,
        "confidence": None,
        "evidence": None,
        "status": status.value,
    }


def frame(*candidates: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(list(candidates), schema=CANDIDATE_SCHEMA)


def one(records: pl.DataFrame, key: str) -> dict[str, Any]:
    row = records.filter(pl.col("row_key") == key).to_dicts()
    assert len(row) == 1
    return row[0] | {"provenance": json.loads(row[0]["provenance"])}


# --- who wins -----------------------------------------------------------------------------------


def test_highest_confidence_wins_and_the_loser_is_kept_as_a_conflict() -> None:
    rows = source_rows(("a", COMPANY))
    candidates = frame(
        filled("a", "company_name", "Acme", 70, "website"),
        filled("a", "company_name", "Acme Holdings", 90, "search"),
    )
    record = one(merge(rows, ["company_name"], [candidates], PRIORITY), "a")

    assert record["company_name"] == "Acme Holdings"
    provenance = record["provenance"]["company_name"]
    assert provenance["status"] == "filled"
    assert provenance["source"] == "search"
    assert provenance["confidence"] == 90
    assert provenance["evidence"] == "search evidence"
    assert provenance["fetched_at"] == FETCHED.isoformat()
    assert provenance["conflicts"] == [{"value": "Acme", "confidence": 70, "source": "website"}]


def test_a_later_stage_wins_when_it_is_more_confident() -> None:
    rows = source_rows(("a", COMPANY))
    website = frame(filled("a", "company_industry", "Software", 60, "website"))
    llm = frame(filled("a", "company_industry", "Robotics", 85, "llm"))
    record = one(merge(rows, ["company_industry"], [website, llm], PRIORITY), "a")
    assert record["company_industry"] == "Robotics"


@pytest.mark.parametrize(
    ("priority", "winner", "loser"),
    [(["website", "search"], "Web Name", "Search Name"), (["search", "website"], "Search Name", "Web Name")],
)
def test_ties_go_to_the_provider_earlier_in_the_priority_order(priority: list[str], winner: str, loser: str) -> None:
    rows = source_rows(("a", COMPANY))
    candidates = frame(
        filled("a", "company_name", "Web Name", 80, "website"),
        filled("a", "company_name", "Search Name", 80, "search"),
    )
    for frames in ([candidates], [candidates.reverse()]):  # the order rows arrive in must not matter
        record = one(merge(rows, ["company_name"], frames, priority), "a")
        assert record["company_name"] == winner
        assert [c["value"] for c in record["provenance"]["company_name"]["conflicts"]] == [loser]


def test_a_source_missing_from_the_priority_list_loses_ties_to_every_listed_one() -> None:
    rows = source_rows(("a", COMPANY))
    candidates = frame(
        filled("a", "company_name", "Unlisted", 80, "mystery"),
        filled("a", "company_name", "Listed Last", 80, "llm"),
    )
    assert one(merge(rows, ["company_name"], [candidates], PRIORITY), "a")["company_name"] == "Listed Last"


# --- agreement ----------------------------------------------------------------------------------


def test_two_sources_agreeing_case_insensitively_add_the_boost() -> None:
    rows = source_rows(("a", COMPANY))
    candidates = frame(
        filled("a", "company_name", "acme corp", 70, "website"),
        filled("a", "company_name", "ACME Corp", 75, "search"),
    )
    provenance = one(merge(rows, ["company_name"], [candidates], PRIORITY), "a")["provenance"]["company_name"]

    assert provenance["confidence"] == 75 + AGREEMENT_BOOST
    assert sorted(provenance["agreeing_sources"]) == ["search", "website"]
    assert provenance["source"] == "search"  # the most confident of the agreeing sources speaks for them
    assert provenance["conflicts"] == []


def test_agreement_can_outvote_a_single_more_confident_source() -> None:
    rows = source_rows(("a", COMPANY))
    candidates = frame(
        filled("a", "company_city", "Berlin", 80, "website"),
        filled("a", "company_city", "berlin", 80, "search"),
        filled("a", "company_city", "Munich", 85, "llm"),
    )
    record = one(merge(rows, ["company_city"], [candidates], PRIORITY), "a")
    assert record["company_city"] == "Berlin"
    assert record["provenance"]["company_city"]["confidence"] == 80 + AGREEMENT_BOOST
    assert record["provenance"]["company_city"]["conflicts"] == [{"value": "Munich", "confidence": 85, "source": "llm"}]


def test_boost_is_capped_at_100() -> None:
    rows = source_rows(("a", COMPANY))
    candidates = frame(
        filled("a", "company_name", "Acme", 95, "website"),
        filled("a", "company_name", "Acme", 96, "search"),
        filled("a", "company_name", "Acme", 97, "linkedin"),
    )
    provenance = one(merge(rows, ["company_name"], [candidates], PRIORITY), "a")["provenance"]["company_name"]
    assert provenance["confidence"] == 100


def test_each_extra_source_adds_one_boost() -> None:
    rows = source_rows(("a", COMPANY))
    candidates = frame(
        filled("a", "company_name", "Acme", 50, "website"),
        filled("a", "company_name", "Acme", 50, "search"),
        filled("a", "company_name", "Acme", 50, "llm"),
    )
    provenance = one(merge(rows, ["company_name"], [candidates], PRIORITY), "a")["provenance"]["company_name"]
    assert provenance["confidence"] == 50 + 2 * AGREEMENT_BOOST


def test_one_source_repeating_itself_is_not_agreement() -> None:
    rows = source_rows(("a", COMPANY))
    candidates = frame(
        filled("a", "company_name", "Acme", 70, "website"),
        filled("a", "company_name", "ACME", 70, "website") | {"cached": True},
    )
    provenance = one(merge(rows, ["company_name"], [candidates], PRIORITY), "a")["provenance"]["company_name"]
    assert provenance["confidence"] == 70


# --- input hints --------------------------------------------------------------------------------


def test_input_hints_win_and_are_never_overwritten() -> None:
    rows = source_rows(("a", COMPANY), ("b", COMPANY), company_name=["Hint Name", None])
    hints = hint_candidates(rows, ["company_name"], FETCHED)
    providers = frame(
        # Even a certain provider with agreement (capped at 100) only ties the hint, and the hint wins ties.
        filled("a", "company_name", "Provider Name", 100, "website"),
        filled("a", "company_name", "Provider Name", 99, "search"),
        filled("b", "company_name", "Provider Name", 60, "website"),
    )
    for frames in ([hints, providers], [providers, hints]):
        records = merge(rows, ["company_name"], frames, PRIORITY)
        hinted = one(records, "a")
        assert hinted["company_name"] == "Hint Name"
        assert hinted["provenance"]["company_name"]["source"] == INPUT_SOURCE
        assert hinted["provenance"]["company_name"]["confidence"] == 100
        assert [c["value"] for c in hinted["provenance"]["company_name"]["conflicts"]] == ["Provider Name"]
        assert one(records, "b")["company_name"] == "Provider Name"


def test_a_provider_agreeing_with_a_hint_keeps_the_hint_as_source() -> None:
    rows = source_rows(("a", COMPANY), company_country=["DE"])
    hints = hint_candidates(rows, ["company_country"], FETCHED)
    providers = frame(filled("a", "company_country", "DE", 100, "website"))
    provenance = one(merge(rows, ["company_country"], [providers, hints], PRIORITY), "a")["provenance"]
    assert provenance["company_country"]["source"] == INPUT_SOURCE
    assert sorted(provenance["company_country"]["agreeing_sources"]) == [INPUT_SOURCE, "website"]


# --- wanted fields and subjects -----------------------------------------------------------------


def test_fields_not_wanted_stay_null_and_out_of_provenance() -> None:
    rows = source_rows(("a", COMPANY), ("p", PERSON))
    candidates = frame(
        filled("a", "company_name", "Acme", 80, "website"),
        filled("a", "company_industry", "Robots", 80, "website"),  # not wanted
        filled("a", "person_name", "Ada Lovelace", 80, "website"),  # wanted, but a company has no person_name
        filled("p", "company_name", "Acme", 80, "linkedin"),  # wanted, but a person row has no company_name
        filled("p", "person_name", "Ada Lovelace", 80, "linkedin"),
    )
    records = merge(rows, ["company_name", "person_name"], [candidates], PRIORITY)

    company, person = one(records, "a"), one(records, "p")
    assert company["company_name"] == "Acme"
    assert company["company_industry"] is None
    assert company["person_name"] is None
    assert set(company["provenance"]) == {"company_name"}
    assert person["person_name"] == "Ada Lovelace"
    assert person["company_name"] is None
    assert set(person["provenance"]) == {"person_name"}
    assert company["status"] == person["status"] == "filled"
    filled_columns = {name for name in FIELD_NAMES if company[name] is not None}
    assert filled_columns == {"company_name"}


def test_output_has_the_record_schema_and_one_row_per_entity_even_without_candidates() -> None:
    rows = source_rows(("a", COMPANY), ("b", COMPANY), ("c", PERSON))
    candidates = frame(filled("a", "company_name", "Acme", 80, "website"))
    records = merge(rows, ["company_name", "person_title"], [candidates], PRIORITY)

    assert records.schema == pl.Schema(record_schema())
    assert records["row_key"].to_list() == ["a", "b", "c"]
    assert records["input_url"].to_list() == ["a.example", "b.example", "c.example"]
    assert one(records, "b")["status"] == "not_found"
    silent = {"status": "not_found", "source": None, "reason": NOBODY_ANSWERED}
    assert one(records, "b")["provenance"] == {"company_name": silent}
    assert one(records, "c")["provenance"] == {"person_title": silent}
    assert merge(rows, ["company_name"], [], PRIORITY)["status"].to_list() == ["not_found"] * 2 + ["not_wanted"]


# --- statuses -----------------------------------------------------------------------------------


def failed_because(key: str, status: Status, source: str, reason: str) -> dict[str, Any]:
    return failed(key, status, source) | {"detail": reason}


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([Status.NOT_FOUND, Status.BLOCKED], Status.BLOCKED),
        ([Status.BLOCKED, Status.NOT_FOUND], Status.BLOCKED),
        ([Status.NOT_FOUND, Status.TIMEOUT], Status.TIMEOUT),
        ([Status.PROVIDER_ERROR, Status.RATE_LIMITED], Status.RATE_LIMITED),
        ([Status.BLOCKED, Status.BUDGET_EXHAUSTED], Status.BUDGET_EXHAUSTED),
        # What happened to this row beats what is true of every row (a missing key is said once per run).
        ([Status.BLOCKED, Status.SKIPPED_NO_KEY], Status.BLOCKED),
        ([Status.SKIPPED_NO_KEY, Status.LLM_FAILED, Status.NOT_FOUND], Status.LLM_FAILED),
        ([Status.NOT_FOUND, Status.SKIPPED_NO_KEY], Status.SKIPPED_NO_KEY),
        ([Status.NOT_FOUND], Status.NOT_FOUND),
    ],
)
def test_an_unfilled_field_reports_the_most_useful_failure_of_its_row(statuses: list[Status], expected: Status) -> None:
    rows = source_rows(("a", COMPANY), ("b", COMPANY))
    sources = ["website", "search", "llm"]
    candidates = frame(
        *(failed_because("a", s, source, f"{s} here") for s, source in zip(statuses, sources, strict=False)),
        filled("b", "company_name", "B", 80, "website"),
    )
    records = merge(rows, ["company_name", "company_email"], [candidates], PRIORITY)

    a = one(records, "a")
    attempts = dict(zip(sources, (s.value for s in statuses), strict=False))
    speaker = sources[statuses.index(expected)]
    reason = f"{speaker}: {expected} here"
    explained = {"status": expected.value, "source": speaker, "reason": reason, "attempts": attempts}
    assert a["provenance"]["company_name"] == explained
    assert a["provenance"]["company_email"] == explained
    assert a["status"] == expected.value
    # Another row's failures never leak into this one; the provider that filled its name found no email.
    b_email = one(records, "b")["provenance"]["company_email"]
    assert b_email == {
        "status": "not_found",
        "source": "website",
        "reason": "website found no value",
        "attempts": {"website": "not_found"},
    }


def test_a_host_that_does_not_resolve_is_not_found_with_its_reason_never_a_missing_key() -> None:
    rows = source_rows(("dead", COMPANY))
    candidates = frame(
        failed_because("dead", Status.NOT_FOUND, "website", "host name 'dead.example' does not resolve"),
        failed_because("dead", Status.SKIPPED_NO_KEY, "search", "GLAZE_SEARCH_API_KEY is not set: search skipped"),
        failed_because("dead", Status.BUDGET_EXHAUSTED, "linkedin", "run budget $0 reached"),
        failed_because("dead", Status.SKIPPED_NO_KEY, "llm", "ANTHROPIC_API_KEY is not set: llm skipped"),
    )
    record = one(merge(rows, ["company_name"], [candidates], PRIORITY), "dead")
    assert record["status"] == "not_found"
    provenance = record["provenance"]["company_name"]
    assert (provenance["status"], provenance["source"]) == ("not_found", "website")
    assert provenance["reason"] == "website: host name 'dead.example' does not resolve"


def test_a_provider_failure_does_not_explain_a_field_it_never_fills() -> None:
    rows = source_rows(("a", COMPANY))
    candidates = frame(
        failed_because("a", Status.TIMEOUT, "website", "the server did not answer in time"),
        failed_because("a", Status.SKIPPED_NO_KEY, "search", "GLAZE_SEARCH_API_KEY is not set: search skipped"),
    )
    fills = {"website": frozenset({"company_email"}), "search": frozenset({"company_industry", "company_email"})}
    records = merge(rows, ["company_email", "company_industry", "company_city"], [candidates], PRIORITY, fills=fills)
    provenance = one(records, "a")["provenance"]
    assert provenance["company_email"]["status"] == "timeout"
    assert provenance["company_industry"]["status"] == "skipped_no_key"  # the website never fills an industry
    assert provenance["company_industry"]["attempts"] == {"search": "skipped_no_key"}
    assert provenance["company_city"] == {"status": "not_found", "source": None, "reason": NOBODY_FILLS}


def test_row_status_is_filled_when_every_wanted_field_is_and_partial_otherwise() -> None:
    rows = source_rows(("full", COMPANY), ("part", COMPANY))
    candidates = frame(
        filled("full", "company_name", "Full", 80, "website"),
        filled("full", "company_email", "a@full.example", 80, "website"),
        filled("part", "company_name", "Part", 80, "website"),
        failed("part", Status.BLOCKED, "search"),
    )
    records = merge(rows, ["company_name", "company_email"], [candidates], PRIORITY)

    assert one(records, "full")["status"] == "filled"
    part = one(records, "part")
    assert part["status"] == "partial"
    assert part["provenance"]["company_email"]["status"] == "blocked"
    assert part["provenance"]["company_email"]["attempts"] == {"website": "not_found", "search": "blocked"}
    assert part["provenance"]["company_name"]["status"] == "filled"


# --- cost ---------------------------------------------------------------------------------------


def test_row_cost_sums_each_call_once_across_the_fields_it_filled() -> None:
    rows = source_rows(("a", COMPANY), ("b", COMPANY))
    search = attempts_to_frame(
        [
            Attempt(
                "a",
                (
                    Found("company_name", "Acme", 80, "e"),
                    Found("company_city", "Berlin", 80, "e"),
                    Found("company_industry", "Robots", 80, "e"),  # not wanted, but it was paid for
                ),
                Status.FILLED,
                cost_usd=0.03,
            ),
            Attempt("b", (), Status.NOT_FOUND, cost_usd=0.02),
        ],
        "search",
    )
    llm = attempts_to_frame(
        [
            Attempt(
                "a",
                (Found("company_name", "Acme Inc", 60, "e"), Found("company_email", "not an email", 90, "e")),
                Status.FILLED,
                cost_usd=0.05,
            ),
            Attempt("b", (Found("company_name", "Bee", 70, "e"),), Status.FILLED, cost_usd=0.05),
        ],
        "llm",
    )
    # The split is what makes sums safe: a call's shares add up to its price.
    assert search.filter(pl.col("row_key") == "a")["cost_usd"].to_list() == pytest.approx([0.01] * 3)
    assert llm.filter(pl.col("row_key") == "a")["cost_usd"].to_list() == pytest.approx([0.05])

    records = merge(rows, ["company_name", "company_city"], [search, llm], ["search", "llm"])
    assert one(records, "a")["cost_usd"] == pytest.approx(0.08)
    assert one(records, "b")["cost_usd"] == pytest.approx(0.02 + 0.05)
    paid = float(search["cost_usd"].sum()) + float(llm["cost_usd"].sum())
    assert float(records["cost_usd"].sum()) == pytest.approx(paid)


def test_hints_and_cached_candidates_cost_nothing() -> None:
    rows = source_rows(("a", COMPANY), company_name=["Hint"])
    hints = hint_candidates(rows, ["company_name"], FETCHED)
    cached = frame(filled("a", "company_city", "Berlin", 80, "website", cost=0.0) | {"cached": True})
    record = one(merge(rows, ["company_name", "company_city"], [hints, cached], PRIORITY), "a")
    assert record["cost_usd"] == 0.0
    assert record["provenance"]["company_city"]["cached"] is True


# --- the audit trail ----------------------------------------------------------------------------


def test_the_audit_trail_keeps_every_candidate_marks_the_chosen_one_and_says_why_the_others_lost() -> None:
    rows = source_rows(("a", COMPANY))
    candidates = frame(
        filled("a", "company_name", "Acme", 80, "website"),
        # The same provider's second guess, with the reason its extractor gave for ranking it lower.
        filled("a", "company_name", "Acme Widgets", 55, "website") | {"detail": "lower: only in the footer"},
        filled("a", "company_name", "ACME", 70, "search"),
        filled("a", "company_name", "Acme Holdings", 75, "llm"),
        failed("a", Status.NOT_FOUND, "linkedin"),
    )
    records = merge(rows, ["company_name"], [candidates], PRIORITY)
    trail = audit_trail(records, candidates)

    assert trail.height == 4  # every value found, none lost; the failure is not a value
    by_value = {r["value"]: r for r in trail.iter_rows(named=True)}
    assert [v for v, r in by_value.items() if r["chosen"]] == ["Acme"]
    assert by_value["Acme"]["reason"].startswith("website at confidence 90, confirmed by search")
    assert by_value["Acme Widgets"]["reason"] == "lost to 'Acme' from website (confidence 90)"
    assert by_value["Acme Widgets"]["detail"] == "lower: only in the footer"
    assert by_value["ACME"]["reason"] == "agrees with the kept value, which website supplied"
    assert by_value["Acme Holdings"]["reason"] == "lost to 'Acme' from website (confidence 90)"


def test_a_value_validation_rejects_is_no_longer_chosen() -> None:
    rows = source_rows(("a", COMPANY))
    candidates = frame(filled("a", "company_name", "Acme", 80, "website"))
    records = merge(rows, ["company_name"], [candidates], PRIORITY)
    provenance = json.dumps({"company_name": {"status": "rejected", "rejected_value": "Acme", "source": "website"}})
    rejected = records.with_columns(company_name=pl.lit(None, pl.String), provenance=pl.lit(provenance))
    row = audit_trail(rejected, candidates).row(0, named=True)
    assert row["chosen"] is False
    assert row["reason"].startswith("chosen, then rejected by validation")


# --- landing policy: values below GLAZE_MIN_CONFIDENCE ---------------------------------------------


def test_a_value_below_min_confidence_that_nothing_beats_is_kept_only_as_a_candidate() -> None:
    rows = source_rows(("a", COMPANY))
    candidates = frame(filled("a", "company_country", "IO", 50, "website"))
    record = one(merge(rows, ["company_country"], [candidates], PRIORITY, min_confidence=70), "a")

    assert record["company_country"] is None  # not a fact in the user's table
    provenance = record["provenance"]["company_country"]
    assert provenance["status"] == Status.LOW_CONFIDENCE.value
    assert (provenance["value"], provenance["confidence"], provenance["source"]) == ("IO", 50, "website")
    assert record["status"] == Status.LOW_CONFIDENCE.value


def test_a_later_provider_above_min_confidence_lands_over_an_earlier_low_one() -> None:
    rows = source_rows(("a", COMPANY))
    website = frame(filled("a", "company_city", "Mahwah", 40, "website"))
    llm = frame(filled("a", "company_city", "Kalamazoo", 75, "llm"))
    record = one(merge(rows, ["company_city"], [website, llm], PRIORITY, min_confidence=70), "a")
    assert record["company_city"] == "Kalamazoo"
    assert record["provenance"]["company_city"]["status"] == Status.FILLED.value


def test_a_low_value_beside_a_filled_field_makes_the_row_partial() -> None:
    rows = source_rows(("a", COMPANY))
    candidates = frame(
        filled("a", "company_name", "Acme", 95, "website"),
        filled("a", "company_email", "jo@acme.example", 55, "website"),
    )
    record = one(merge(rows, ["company_name", "company_email"], [candidates], PRIORITY, min_confidence=70), "a")
    assert (record["company_name"], record["company_email"]) == ("Acme", None)
    assert record["status"] == Status.PARTIAL.value


def test_without_a_threshold_every_value_lands() -> None:
    rows = source_rows(("a", COMPANY))
    record = one(
        merge(rows, ["company_country"], [frame(filled("a", "company_country", "IO", 50, "website"))], PRIORITY), "a"
    )
    assert record["company_country"] == "IO"


def test_a_providers_losing_candidate_is_no_vote_for_another_providers_value() -> None:
    rows = source_rows(("a", COMPANY))
    candidates = frame(
        filled("a", "company_city", "Kalamazoo", 93, "website"),  # the website's choice
        filled("a", "company_city", "Mahwah", 2, "website"),  # a branch it saw and ruled out
        filled("a", "company_city", "Mahwah", 85, "linkedin"),
    )
    provenance = one(merge(rows, ["company_city"], [candidates], PRIORITY), "a")["provenance"]["company_city"]
    assert provenance["confidence"] == 93  # LinkedIn's Mahwah is not raised by the website's ruled-out one
    assert provenance["conflicts"] == [{"value": "Mahwah", "confidence": 85, "source": "linkedin"}]


def test_a_value_only_ever_ruled_out_keeps_its_own_low_confidence() -> None:
    rows = source_rows(("a", COMPANY))
    candidates = frame(
        filled("a", "company_email", "contact@a.example", 98, "website"),
        filled("a", "company_email", "press@a.example", 6, "website"),  # lost: no source chose it
    )
    record = one(merge(rows, ["company_email"], [candidates], PRIORITY, min_confidence=70), "a")
    assert record["company_email"] == "contact@a.example"
    assert record["provenance"]["company_email"]["conflicts"] == [
        {"value": "press@a.example", "confidence": 6, "source": "website"}
    ]


def test_a_value_below_the_landing_threshold_is_in_the_trail_not_chosen_and_says_why() -> None:
    rows = source_rows(("a", COMPANY))
    candidates = frame(
        filled("a", "company_country", "IO", 50, "website"), filled("a", "company_country", "GB", 40, "llm")
    )
    records = merge(rows, ["company_country"], [candidates], PRIORITY, min_confidence=70)
    by_value = {r["value"]: r for r in audit_trail(records, candidates).iter_rows(named=True)}
    assert not any(r["chosen"] for r in by_value.values())
    assert by_value["IO"]["reason"] == "website found 'IO' at confidence 50, below GLAZE_MIN_CONFIDENCE (70)"
    assert by_value["GB"]["reason"] == "lost to 'IO' from website (confidence 50)"


# --- plausibility bounds, whichever provider gave the value -------------------------------------


def test_an_email_at_neither_the_companys_domain_nor_a_mail_service_is_never_kept() -> None:
    rows = source_rows(("a", COMPANY), ("b", COMPANY), ("c", COMPANY), ("li", EntityType.LINKEDIN_COMPANY))
    candidates = frame(
        filled("a", "company_email", "ceo@attacker.example.net", 95, "llm"),  # planted: another organisation's
        filled("a", "company_email", "info@a.example", 40, "website"),
        filled("b", "company_email", "acme.team@gmail.com", 80, "search"),  # a mail service: may be theirs
        filled("c", "company_email", "sales@c.co.uk", 80, "linkedin"),  # the company's name elsewhere
        filled("li", "company_website", "https://li-corp.example", 90, "linkedin"),
        filled("li", "company_email", "hello@other.example", 90, "llm"),
    )
    records = merge(rows, ["company_email", "company_website"], [candidates], PRIORITY)
    assert one(records, "a")["company_email"] == "info@a.example"
    assert "attacker" not in json.dumps(one(records, "a")["provenance"])  # not even a conflict
    assert one(records, "b")["company_email"] == "acme.team@gmail.com"
    assert one(records, "c")["company_email"] == "sales@c.co.uk"
    assert one(records, "li")["company_email"] is None  # a LinkedIn row's domain comes from its website


def test_counts_and_years_out_of_bounds_are_refused_from_any_provider() -> None:
    found = (
        Found("company_employee_count", "99,999,999", 90, "x"),  # above any company's headcount
        Found("company_employee_range", "5000001-10000000", 90, "x"),
        Found("company_founded_year", "1492", 90, "x"),
        Found("company_founded_year", "2999", 90, "x"),
        Found("company_employee_count", "2,100,000", 90, "x"),  # Walmart's size: possible
    )
    for source in ("website", "search", "linkedin", "llm"):
        result = attempts_to_frame([Attempt("r", found, Status.FILLED)], source)
        assert dict(result.select("field", "value").iter_rows()) == {"company_employee_count": "2100000"}


def test_a_company_on_a_hosted_platform_keeps_the_address_at_its_own_domain() -> None:
    rows = pl.DataFrame(
        [("w", "acme.wixsite.com", "https://acme.wixsite.com", COMPANY.value)],
        schema=["row_key", "input_url", "normalized_url", "entity_type"],
        orient="row",
    )
    candidates = frame(filled("w", "company_email", "info@acme.de", 80, "website"))
    assert one(merge(rows, ["company_email"], [candidates], PRIORITY), "w")["company_email"] == "info@acme.de"
