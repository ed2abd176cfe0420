"""The waterfall: gap analysis, input hints as candidates, and a provider run through a real Redis cache."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import uuid4

import polars as pl
import psycopg
import pytest

from glaze_pipeline.core.intake.ingest import read_upload
from glaze_pipeline.core.intake.tables import load_source_rows, register_upload, table_info
from glaze_pipeline.core.model.candidates import CANDIDATE_SCHEMA, INPUT_SOURCE, Attempt, Found
from glaze_pipeline.core.model.fields import EntityType
from glaze_pipeline.core.model.provider import Provider, Target
from glaze_pipeline.core.model.status import Status
from glaze_pipeline.core.pipeline.gaps import gap_targets, hint_candidates
from glaze_pipeline.core.pipeline.stage import run_stage
from glaze_pipeline.core.storage.cache import ProviderCache, connect_cache

COMPANY = EntityType.COMPANY_WEBSITE
LI_COMPANY = EntityType.LINKEDIN_COMPANY
PERSON = EntityType.LINKEDIN_PERSON
FETCHED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
UPLOADED = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
MIN_CONFIDENCE = 70

if TYPE_CHECKING:
    from glaze_pipeline_tests.conftest import TestServers


def source_rows(*rows: tuple[str, EntityType]) -> pl.DataFrame:
    return pl.DataFrame(
        [(key, f"https://{key}.example", entity.value) for key, entity in rows],
        schema={"row_key": pl.String, "normalized_url": pl.String, "entity_type": pl.String},
        orient="row",
    )


def candidates(*rows: tuple[object, ...]) -> pl.DataFrame:
    """(row_key, field, value, confidence, source[, status]) → candidate frame."""
    records: list[dict[str, object]] = []
    for row in rows:
        key, name, value, confidence, source, *rest = row
        records.append(
            {
                "row_key": key,
                "field": name,
                "value": value,
                "confidence": confidence,
                "source": source,
                "evidence": "test",
                "cost_usd": 0.0,
                "cached": False,
                "fetched_at": FETCHED,
                "status": rest[0] if rest else Status.FILLED.value,
                "detail": "",
            }
        )
    return pl.DataFrame(records, schema=CANDIDATE_SCHEMA)


class FakeProvider(Provider):
    """A provider answering from a function of the target; records every batch it was asked."""

    version = "1"
    price_usd = 0.03

    def __init__(
        self,
        fields: Sequence[str] = ("company_name", "company_email", "company_country"),
        entity_types: Sequence[EntityType] = (COMPANY,),
        answer: Callable[[Target], Attempt] | None = None,
        fail_on_batch: int | None = None,
        name: str = "fake",
    ) -> None:
        self.name = name
        self.fields = frozenset(fields)
        self.entity_types = frozenset(entity_types)
        self.answer = answer or default_answer
        self.fail_on_batch = fail_on_batch
        self.batches: list[list[str]] = []

    async def enrich(self, targets: Sequence[Target]) -> list[Attempt]:
        self.batches.append([t.row_key for t in targets])
        if self.fail_on_batch == len(self.batches):
            raise RuntimeError("provider crashed")  # a killed run, not a row failure
        return [self.answer(t) for t in targets]

    @property
    def asked(self) -> list[str]:
        return [key for batch in self.batches for key in batch]


def default_answer(target: Target) -> Attempt:
    return Attempt(
        target.row_key,
        (
            Found("company_name", f"Company {target.row_key}", 80, target.normalized_url),
            Found("company_email", f"hello@{target.row_key}.example", 90, target.normalized_url),
        ),
        Status.FILLED,
        cost_usd=0.03,
        fetched_at=FETCHED,
    )


def targets_for(*keys: str) -> list[Target]:
    return [Target(k, COMPANY, f"https://{k}.example", ("company_name", "company_email")) for k in keys]


@pytest.fixture
def cache(servers: TestServers) -> Iterator[ProviderCache]:
    cache = connect_cache(
        servers.redis_url, prefix=f"{servers.redis_prefix}{uuid4().hex}:", ttl_s=3_600, negative_ttl_s=600
    )
    assert cache.degraded_reason is None, cache.degraded_reason
    yield cache
    assert cache.client is not None
    cache.client.close()


def by_key(targets: list[Target]) -> dict[str, Target]:
    return {t.row_key: t for t in targets}


# --- gap_targets --------------------------------------------------------------------------------


def test_every_row_is_a_target_when_nothing_is_known_upstream() -> None:
    rows = source_rows(("a", COMPANY), ("b", COMPANY))
    targets = gap_targets(rows, ["company_name", "company_email"], [], FakeProvider(), MIN_CONFIDENCE)

    assert sorted(t.row_key for t in targets) == ["a", "b"]
    for target in targets:
        assert set(target.missing) == {"company_name", "company_email"}
        assert target.entity_type == COMPANY
        assert target.normalized_url == f"https://{target.row_key}.example"
        assert target.known == {}


def test_only_rows_with_fillable_gaps_are_targets_and_only_their_gaps_are_missing() -> None:
    rows = source_rows(("done", COMPANY), ("half", COMPANY), ("empty", COMPANY))
    upstream = candidates(
        ("done", "company_name", "Done", 90, "website"),
        ("done", "company_email", "a@done.example", 70, "website"),  # exactly min_confidence: not a gap
        ("half", "company_name", "Half", 95, "website"),
    )
    targets = by_key(gap_targets(rows, ["company_name", "company_email"], [upstream], FakeProvider(), MIN_CONFIDENCE))

    assert set(targets) == {"half", "empty"}
    assert targets["half"].missing == ("company_email",)
    assert set(targets["empty"].missing) == {"company_name", "company_email"}


def test_a_value_below_min_confidence_is_still_a_gap() -> None:
    rows = source_rows(("weak", COMPANY))
    upstream = candidates(("weak", "company_name", "Weak", 69, "website"))
    targets = gap_targets(rows, ["company_name"], [upstream], FakeProvider(), MIN_CONFIDENCE)

    assert [(t.row_key, t.missing) for t in targets] == [("weak", ("company_name",))]


def test_best_confidence_over_all_upstream_frames_decides() -> None:
    rows = source_rows(("a", COMPANY))
    weak = candidates(("a", "company_name", "Weak", 40, "website"))
    strong = candidates(("a", "company_name", "Strong", 85, "search"))
    assert gap_targets(rows, ["company_name"], [weak, strong], FakeProvider(), MIN_CONFIDENCE) == []
    assert gap_targets(rows, ["company_name"], [strong, weak], FakeProvider(), MIN_CONFIDENCE) == []


def test_failed_attempts_upstream_do_not_close_a_gap() -> None:
    rows = source_rows(("a", COMPANY), ("b", COMPANY))
    upstream = candidates(
        ("a", None, None, None, "website", Status.TIMEOUT.value),
        ("b", None, None, None, "website", Status.NOT_FOUND.value),
    )
    targets = gap_targets(rows, ["company_name"], [upstream], FakeProvider(), MIN_CONFIDENCE)
    assert sorted(t.row_key for t in targets) == ["a", "b"]


def test_fields_not_wanted_or_not_fillable_are_never_missing() -> None:
    rows = source_rows(("a", COMPANY))
    targets = gap_targets(
        rows, ["company_name", "company_industry"], [], FakeProvider(fields=["company_name"]), MIN_CONFIDENCE
    )
    assert [t.missing for t in targets] == [("company_name",)]

    # The provider can fill email, but nobody asked for it; industry was asked, but it cannot fill it.
    assert gap_targets(rows, ["company_industry"], [], FakeProvider(), MIN_CONFIDENCE) == []


def test_rows_of_entity_types_the_provider_does_not_accept_are_skipped() -> None:
    rows = source_rows(("site", COMPANY), ("li", LI_COMPANY), ("person", PERSON))
    provider = FakeProvider(fields=["company_name", "person_name"], entity_types=[COMPANY])
    targets = gap_targets(rows, ["company_name", "person_name"], [], provider, MIN_CONFIDENCE)

    assert [t.row_key for t in targets] == ["site"]


def test_person_fields_are_never_asked_of_company_rows() -> None:
    rows = source_rows(("site", COMPANY), ("li", LI_COMPANY), ("person", PERSON))
    provider = FakeProvider(
        fields=["company_name", "company_email", "person_name", "person_email"],
        entity_types=[COMPANY, LI_COMPANY, PERSON],
    )
    targets = by_key(gap_targets(rows, ["company_name", "person_name", "person_email"], [], provider, MIN_CONFIDENCE))

    assert targets["site"].missing == ("company_name",)
    assert targets["li"].missing == ("company_name",)
    assert set(targets["person"].missing) == {"person_name", "person_email"}
    assert targets["li"].entity_type == LI_COMPANY
    assert targets["person"].entity_type == PERSON


def test_an_input_hint_closes_the_gap_and_an_invalid_hint_does_not() -> None:
    rows = source_rows(("hinted", COMPANY), ("bad_hint", COMPANY)).with_columns(
        company_email=pl.Series(["Sales@Hinted.example", "not an email"])
    )
    hints = hint_candidates(rows, ["company_email"], UPLOADED)
    targets = by_key(gap_targets(rows, ["company_name", "company_email"], [hints], FakeProvider(), MIN_CONFIDENCE))

    assert targets["hinted"].missing == ("company_name",)
    assert set(targets["bad_hint"].missing) == {"company_name", "company_email"}
    assert targets["hinted"].known == {"company_email": "sales@hinted.example"}
    assert targets["bad_hint"].known == {}


def test_known_carries_the_best_upstream_value_per_field() -> None:
    rows = source_rows(("a", COMPANY), ("b", COMPANY))
    hints = candidates(("a", "company_website", "https://a.example", 100, INPUT_SOURCE))
    website = candidates(
        ("a", "company_name", "Low Confidence Name", 40, "website"),
        ("a", "company_email", "x@a.example", 50, "website"),
    )
    # The best value comes last, so a "first frame wins" implementation would fail.
    search = candidates(
        ("a", "company_name", "High Confidence Name", 65, "search"),
        ("a", None, None, None, "search", Status.NOT_FOUND.value),
    )
    targets = by_key(gap_targets(rows, ["company_name", "company_email"], [hints, website, search], FakeProvider(), 70))

    assert targets["a"].known == {
        "company_website": "https://a.example",
        "company_name": "High Confidence Name",
        "company_email": "x@a.example",
    }
    assert targets["b"].known == {}


def test_no_rows_or_no_fillable_pairs_gives_no_targets() -> None:
    empty = source_rows()
    assert gap_targets(empty, ["company_name"], [], FakeProvider(), MIN_CONFIDENCE) == []
    rows = source_rows(("p", PERSON))
    assert gap_targets(rows, ["person_name"], [], FakeProvider(entity_types=[PERSON]), MIN_CONFIDENCE) == []


# --- hint_candidates ----------------------------------------------------------------------------


def test_hint_columns_become_input_candidates_with_confidence_100() -> None:
    rows = pl.DataFrame(
        {
            "row_key": ["a", "b"],
            "company_name": ["  Acme   Corp ", None],
            "company_country": ["Germany", "Atlantis"],
            "company_email": ["Info@Acme.example", "not an email"],
            "company_industry": ["Robots", "Boats"],  # named like a field, but not listed as a hint
            "notes": ["x", "y"],
        }
    )
    hint_fields = [
        "company_name",
        "company_country",
        "company_email",
        "person_title",
    ]  # no person_title column
    hints = hint_candidates(rows, hint_fields, UPLOADED)

    assert hints.schema == pl.Schema(CANDIDATE_SCHEMA)
    got = {(k, f): v for k, f, v in hints.select("row_key", "field", "value").iter_rows()}
    assert got == {
        ("a", "company_name"): "Acme Corp",
        ("a", "company_country"): "DE",
        ("a", "company_email"): "info@acme.example",
    }
    assert hints["source"].unique().to_list() == [INPUT_SOURCE]
    assert hints["confidence"].unique().to_list() == [100]
    assert hints["status"].unique().to_list() == [Status.FILLED.value]
    assert hints["cost_usd"].sum() == 0
    assert not hints["cached"].any()
    assert hints["fetched_at"].unique().to_list() == [UPLOADED]


def test_no_usable_hints_is_an_empty_candidate_frame() -> None:
    rows = pl.DataFrame({"row_key": ["a"], "company_email": ["nope"]})
    for hint_fields in ([], ["company_email"], ["company_name"]):
        hints = hint_candidates(rows, hint_fields, UPLOADED)
        assert hints.is_empty()
        assert hints.schema == pl.Schema(CANDIDATE_SCHEMA)


def hints_through_the_real_chain(tmp_path: Path, conn: psycopg.Connection, column: str) -> pl.DataFrame:
    """Upload → register → source rows → hint candidates, exactly as the provider and merge assets do it."""
    upload = tmp_path / "leads.csv"
    upload.write_text(f"url,{column}\nacme.com,Acme GmbH\n", encoding="utf-8")
    parsed = read_upload(upload, name=f"hints_{uuid4().hex[:8]}")
    table_id = register_upload(conn, parsed, ["company_name"], source_file=None)
    info = table_info(conn, table_id)
    rows = load_source_rows(conn, info)
    return hint_candidates(rows, info.hint_fields, info.created_at)


def test_a_hint_column_named_exactly_like_the_field_reaches_the_candidates(
    tmp_path: Path, conn: psycopg.Connection
) -> None:
    hints = hints_through_the_real_chain(tmp_path, conn, "company_name")
    assert hints.select("field", "value", "source").rows() == [("company_name", "Acme GmbH", INPUT_SOURCE)]


def test_a_hint_column_named_in_another_case_reaches_the_candidates(tmp_path: Path, conn: psycopg.Connection) -> None:
    hints = hints_through_the_real_chain(tmp_path, conn, "Company_Name")
    assert hints.select("field", "value", "source").rows() == [("company_name", "Acme GmbH", INPUT_SOURCE)]


# --- run_stage with a real Redis cache ------------------------------------------------------


def test_second_run_is_served_from_cache_free_and_with_the_original_fetch_time(cache: ProviderCache) -> None:
    def answer(target: Target) -> Attempt:
        if target.row_key == "nothing":
            return Attempt(target.row_key, (), Status.NOT_FOUND, cost_usd=0.03, fetched_at=FETCHED)
        return default_answer(target)

    targets = targets_for("a", "b", "nothing")
    first_provider = FakeProvider(answer=answer)
    first, first_stats = asyncio.run(run_stage(first_provider, targets, cache))

    assert sorted(first_provider.asked) == ["a", "b", "nothing"]
    assert (first_stats.calls, first_stats.cache_hits) == (3, 0)
    assert first_stats.cost_usd == pytest.approx(0.09)
    assert not first["cached"].any()

    second_provider = FakeProvider(answer=answer)
    second, second_stats = asyncio.run(run_stage(second_provider, targets, cache))

    assert second_provider.batches == []
    assert (second_stats.calls, second_stats.cache_hits, second_stats.targets) == (0, 3, 3)
    assert second_stats.cost_usd == 0
    assert second["cached"].all()
    assert second["cost_usd"].sum() == 0
    assert second["fetched_at"].unique().to_list() == [FETCHED]
    assert set(second["source"].unique()) == {"fake"}
    assert second_stats.statuses == first_stats.statuses == {"filled": 2, "not_found": 1}
    columns = ["row_key", "field", "value", "confidence", "status"]
    assert second.select(columns).sort(columns[:2]).equals(first.select(columns).sort(columns[:2]))


def test_cache_entries_are_separate_per_provider_name_and_version(cache: ProviderCache) -> None:
    targets = targets_for("a")
    asyncio.run(run_stage(FakeProvider(), targets, cache))

    bumped = FakeProvider()
    bumped.version = "2"
    other = FakeProvider(name="other")
    asyncio.run(run_stage(bumped, targets, cache))
    asyncio.run(run_stage(other, targets, cache))
    assert bumped.asked == ["a"]
    assert other.asked == ["a"]


def test_only_misses_reach_the_provider(cache: ProviderCache) -> None:
    asyncio.run(run_stage(FakeProvider(), targets_for("a", "b"), cache))
    provider = FakeProvider()
    frame, stats = asyncio.run(run_stage(provider, targets_for("a", "b", "c", "d"), cache))

    assert sorted(provider.asked) == ["c", "d"]
    assert (stats.cache_hits, stats.calls) == (2, 2)
    cached_keys = set(frame.filter(pl.col("cached"))["row_key"])
    assert cached_keys == {"a", "b"}
    assert frame.filter(~pl.col("cached"))["cost_usd"].sum() == pytest.approx(0.06)


def test_misses_are_sent_in_chunks_and_progress_is_reported(cache: ProviderCache) -> None:
    asyncio.run(run_stage(FakeProvider(), targets_for("k0"), cache))
    provider = FakeProvider()
    reports: list[tuple[int, int]] = []
    keys = [f"k{i}" for i in range(6)]

    def progress(done: int, total: int) -> None:
        reports.append((done, total))

    asyncio.run(run_stage(provider, targets_for(*keys), cache, chunk_size=2, progress=progress))

    assert provider.batches == [["k1", "k2"], ["k3", "k4"], ["k5"]]
    assert reports == [(1, 6), (3, 6), (5, 6), (6, 6)]


def test_each_chunk_is_cached_before_the_next_so_a_crash_keeps_earlier_answers(cache: ProviderCache) -> None:
    keys = [f"k{i}" for i in range(5)]
    crashing = FakeProvider(fail_on_batch=2)
    with pytest.raises(RuntimeError, match="provider crashed"):
        asyncio.run(run_stage(crashing, targets_for(*keys), cache, chunk_size=2))
    assert crashing.batches == [["k0", "k1"], ["k2", "k3"]]

    # The first chunk's answers are already in Redis ...
    redis_keys = [cache.key("fake", "1", f"https://{k}.example") for k in keys]
    assert set(cache.get_many(redis_keys)) == set(redis_keys[:2])

    # ... so the rerun pays only for the rest.
    rerun = FakeProvider()
    frame, stats = asyncio.run(run_stage(rerun, targets_for(*keys), cache, chunk_size=2))
    assert sorted(rerun.asked) == ["k2", "k3", "k4"]
    assert stats.cache_hits == 2
    assert set(frame.filter(pl.col("cached"))["row_key"]) == {"k0", "k1"}
    assert set(frame["row_key"]) == set(keys)


def test_only_filled_and_not_found_are_cached_so_a_timeout_is_retried(cache: ProviderCache) -> None:
    outcomes = {
        "filled": Status.FILLED,
        "missing": Status.NOT_FOUND,
        "slow": Status.TIMEOUT,
        "throttled": Status.RATE_LIMITED,
        "broken": Status.PROVIDER_ERROR,
        "blocked": Status.BLOCKED,
    }

    def answer(target: Target) -> Attempt:
        status = outcomes[target.row_key]
        if status == Status.FILLED:
            return default_answer(target)
        return Attempt(target.row_key, (), status, fetched_at=FETCHED, detail=str(status))

    targets = targets_for(*outcomes)
    first, _ = asyncio.run(run_stage(FakeProvider(answer=answer), targets, cache))
    assert dict(first.select("row_key", "status").unique("row_key").iter_rows()) == {
        k: s.value for k, s in outcomes.items()
    }

    retry = FakeProvider(answer=answer)
    _, stats = asyncio.run(run_stage(retry, targets, cache))
    assert sorted(retry.asked) == ["blocked", "broken", "slow", "throttled"]
    assert stats.cache_hits == 2


def test_no_targets_means_no_calls(cache: ProviderCache) -> None:
    provider = FakeProvider()
    frame, stats = asyncio.run(run_stage(provider, [], cache))
    assert provider.batches == []
    assert frame.is_empty()
    assert frame.schema == pl.Schema(CANDIDATE_SCHEMA)
    assert (stats.calls, stats.cache_hits, stats.cost_usd) == (0, 0, 0.0)


def test_cached_rows_keep_the_first_runs_fetch_time_even_when_the_provider_sets_none(
    cache: ProviderCache,
) -> None:
    def answer(target: Target) -> Attempt:
        return Attempt(target.row_key, (Found("company_name", "Acme", 80, "e"),), Status.FILLED, 0.03)

    first, _ = asyncio.run(run_stage(FakeProvider(answer=answer), targets_for("a"), cache))
    second, _ = asyncio.run(run_stage(FakeProvider(answer=answer), targets_for("a"), cache))
    assert second["cached"].all()
    assert second["fetched_at"].to_list() == first["fetched_at"].to_list()
