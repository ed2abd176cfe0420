"""The paid providers against their loopback simulators: mapping, keys, retries, breaker, budget and ledger."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

import polars as pl
import psycopg
import pytest

from glaze_pipeline.config import ApiSettings, RetrySettings, settings
from glaze_pipeline.core.model.fields import EntityType
from glaze_pipeline.core.model.provider import BreakerState, Target
from glaze_pipeline.core.pipeline.spending import Budget, Spending
from glaze_pipeline.core.pipeline.stage import run_stage
from glaze_pipeline.core.providers.api import ApiProvider
from glaze_pipeline.core.providers.registry import VENDORS
from glaze_pipeline.core.providers.serper import headquarters, industry_of
from glaze_pipeline.core.storage.cache import ProviderCache, connect_cache
from glaze_pipeline.core.storage.ledger import Ledger
from glaze_pipeline.sandbox.apis import ApiSimulator, company_facts, linkedin_person, serper_answer, signed_logo_url
from glaze_pipeline.sandbox.sites import SiteServer
from glaze_pipeline_tests.helpers import closed_port

if TYPE_CHECKING:
    from glaze_pipeline_tests.conftest import TestServers

COMPANY = EntityType.COMPANY_WEBSITE
FAST_RETRY = RetrySettings(max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.05, breaker_failures=1000)


@pytest.fixture
def linkedin_sim() -> Iterator[ApiSimulator]:
    with ApiSimulator("linkedin") as sim:
        yield sim


@pytest.fixture
def search_sim() -> Iterator[ApiSimulator]:
    with ApiSimulator("search") as sim:
        yield sim


@pytest.fixture
def cache(servers: TestServers, fresh_ledger: None) -> Iterator[ProviderCache]:
    cache = connect_cache(
        servers.redis_url, prefix=f"{servers.redis_prefix}{uuid.uuid4().hex}:", ttl_s=600, negative_ttl_s=60
    )
    yield cache
    assert cache.client is not None
    cache.client.close()


def api(sim: ApiSimulator, **overrides: object) -> ApiSettings:
    base = settings(sim.env()).apis[sim.vendor]
    return replace(base, **({"rate_per_s": 1000.0, "concurrency": 4} | overrides))  # type: ignore[arg-type]


def provider(
    servers: TestServers, sim: ApiSimulator, retry: RetrySettings = FAST_RETRY, **overrides: object
) -> ApiProvider:
    """A paid provider pointed at `sim`, with a limiter keyspace of its own."""
    return ApiProvider(
        VENDORS[sim.vendor](),
        api(sim, **overrides),
        retry,
        redis_url=servers.redis_url,
        redis_prefix=f"{servers.redis_prefix}{uuid.uuid4().hex[:8]}:",
    )


def companies(*labels: str, missing: tuple[str, ...] = ("company_name",)) -> list[Target]:
    return [Target(label, COMPANY, f"https://{label}.example", missing) for label in labels]


def run(p: ApiProvider, targets: list[Target], cache: ProviderCache, spending: Spending | None = None):
    return asyncio.run(run_stage(p, targets, cache, spending=spending))


def values(frame: pl.DataFrame, row_key: str) -> dict[str, str]:
    rows = frame.filter((pl.col("row_key") == row_key) & (pl.col("status") == "filled"))
    return dict(rows.select("field", "value").iter_rows())


def statuses(frame: pl.DataFrame) -> dict[str, str]:
    return dict(frame.group_by("row_key").agg(pl.col("status").first()).iter_rows())


# --- field mapping per endpoint ---------------------------------------------------------------


def test_linkedin_company_by_domain_maps_the_documented_fields(servers, linkedin_sim, cache):
    frame, stats = run(provider(servers, linkedin_sim), companies("acme-robotics"), cache)
    facts = company_facts("acme-robotics")
    assert values(frame, "acme-robotics") == {
        "company_name": facts["name"],
        "company_description": facts["description"],
        "company_industry": facts["industry"],
        "company_employee_count": str(facts["employees"]),
        "company_employee_range": facts["band"],
        "company_hq_location": f"{facts['city']}, {facts['country_name']}",
        "company_city": facts["city"],
        "company_country": facts["country"],
        "company_founded_year": str(facts["founded"]),
        "company_website": "https://acme-robotics.example",
        "company_logo_url": signed_logo_url("acme-robotics"),  # the signature kept: without it the link is dead
        "company_specialities": ", ".join(facts["specialties"]),
        "company_linkedin": "https://www.linkedin.com/company/acme-robotics",
    }
    assert [h.entity for h in linkedin_sim.log] == ["acme-robotics.example"]  # get-company-by-domain
    assert stats.paid_calls == 1 and stats.cost_usd == pytest.approx(0.01)
    assert frame["cost_usd"].sum() == pytest.approx(0.01)  # split across the fields, never counted twice


def test_linkedin_uses_the_company_page_found_upstream_and_maps_people(servers, linkedin_sim, cache):
    known = Target(
        "k",
        COMPANY,
        "https://kestrel.example",
        ("company_industry",),
        {"company_linkedin": "https://www.linkedin.com/company/kestrel-logistics"},
    )
    person = Target("p", EntityType.LINKEDIN_PERSON, "https://www.linkedin.com/in/jane-doe", ("person_name",))
    frame, _ = run(provider(servers, linkedin_sim), [known, person], cache)

    assert sorted(h.entity for h in linkedin_sim.log) == [
        "https://www.linkedin.com/company/kestrel-logistics",  # get-company-by-linkedinurl
        "https://www.linkedin.com/in/jane-doe",  # get-personal-profile
    ]
    assert values(frame, "k")["company_industry"] == company_facts("kestrel-logistics")["industry"]
    profile = linkedin_person("jane-doe")
    found = values(frame, "p")
    found.pop("person_title")
    assert found == {
        "person_name": "Jane Doe",
        "person_location": profile["location"],
        "person_company": profile["company"],
        "person_linkedin": "https://www.linkedin.com/in/jane-doe",
    }
    # job_title wins the merge over the headline, which stays as a weaker candidate
    titles = frame.filter((pl.col("row_key") == "p") & (pl.col("field") == "person_title"))
    assert dict(titles.select("value", "confidence").iter_rows()) == {profile["job_title"]: 85, profile["headline"]: 60}


def test_search_finds_linkedin_and_site_reads_the_knowledge_graph_and_keeps_snippets(servers, search_sim, cache):
    linkedin_row = Target(
        "li",
        EntityType.LINKEDIN_COMPANY,
        "https://www.linkedin.com/company/helix-biotech",
        ("company_website",),
        {"company_name": "Helix Biotech"},
    )
    frame, _ = run(provider(servers, search_sim), [*companies("northwind-robotics"), linkedin_row], cache)
    facts = company_facts("northwind-robotics")
    found = values(frame, "northwind-robotics")
    assert found["company_linkedin"] == "https://www.linkedin.com/company/northwind-robotics"
    assert found["company_website"] == "https://northwind-robotics.example"
    assert found["company_founded_year"] == str(facts["founded"])
    assert found["company_employee_count"] == str(facts["employees"])  # "1,234 (2026)" → 1234
    assert found["company_hq_location"] == f"{facts['city']}, {facts['country_name']}"
    assert search_sim.by_entity() == {"northwind-robotics.example": 1, "Helix Biotech": 1}  # by domain, by name
    assert values(frame, "li")["company_website"] == "https://helix-biotech.com"
    snippets = frame.filter((pl.col("row_key") == "northwind-robotics") & (pl.col("status") == "evidence"))
    assert snippets.height == 3 and snippets["evidence"][0].startswith("https://www.linkedin.com/company/")
    assert all(snippets["value"])  # the snippet text, for the LLM stage


# --- keys ---------------------------------------------------------------------------------------


def test_a_missing_key_skips_the_provider_with_a_clear_reason_and_no_call(servers, linkedin_sim, cache):
    p = provider(servers, linkedin_sim, api_key=None)
    frame, stats = run(p, companies("a", "b"), cache)
    assert linkedin_sim.count() == 0
    assert statuses(frame) == {"a": "skipped_no_key", "b": "skipped_no_key"}
    assert stats.skipped == "GLAZE_LINKEDIN_API_KEY is not set: linkedin skipped"
    assert set(frame["detail"]) == {stats.skipped}


def test_a_refused_key_is_not_retried_and_never_echoed(servers, linkedin_sim, cache):
    p = provider(servers, linkedin_sim, api_key="wrong-secret-key", concurrency=1)
    frame, stats = run(p, companies("a", "b", "c", "d"), cache)
    assert linkedin_sim.count(401) == 1  # one 401 opens the breaker: the other rows are not even sent
    assert set(statuses(frame).values()) == {"provider_error"}
    assert "HTTP 401 'Invalid API key." in " ".join(frame["detail"])
    assert "the key in GLAZE_LINKEDIN_API_KEY was refused" in frame["detail"][0]
    assert "wrong-secret-key" not in repr(stats) + " ".join(frame["detail"]) + repr(p.api)


def test_a_redirect_is_not_followed_so_the_key_stays_with_the_configured_host(servers, linkedin_sim, cache):
    with SiteServer(lambda host, path: b"stolen") as elsewhere:
        linkedin_sim.knobs.force_status = 307
        linkedin_sim.knobs.location = f"http://{elsewhere.address[0]}:{elsewhere.address[1]}/collect"
        frame, _ = run(provider(servers, linkedin_sim), companies("a"), cache)
    assert sum(elsewhere.hits.values()) == 0
    assert linkedin_sim.count() == 1  # and not retried
    assert statuses(frame) == {"a": "provider_error"} and frame["detail"][0] == "HTTP 307"


# --- retries ------------------------------------------------------------------------------------


def test_429_retry_after_is_honoured_by_every_later_request(servers, linkedin_sim, cache):
    linkedin_sim.knobs.throttle_first = 1
    linkedin_sim.knobs.retry_after_s = 0.5
    frame, _ = run(provider(servers, linkedin_sim, concurrency=1), companies("a", "b", "c"), cache)
    hits = linkedin_sim.log
    assert [h.status for h in hits] == [429, 200, 200, 200]
    assert all(h.at - hits[0].at >= 0.5 for h in hits[1:])  # nobody went before Retry-After was over
    assert set(statuses(frame).values()) == {"filled"}


def test_a_one_hour_retry_after_fails_fast_as_rate_limited(servers, linkedin_sim, cache):
    linkedin_sim.knobs.force_status = 429
    linkedin_sim.knobs.retry_after_s = 3600
    p = provider(servers, linkedin_sim, concurrency=2)
    frame, stats = run(p, companies(*(f"c{i}" for i in range(10))), cache)
    assert set(statuses(frame).values()) == {"rate_limited"}
    assert linkedin_sim.count() <= 2  # the requests already in flight; the rest fail without a call
    assert stats.duration_s < 5
    assert "Retry-After 3600 s is over the 30 s cap" in frame["detail"][0]


def test_5xx_retries_are_bounded_per_call(servers, linkedin_sim, cache):
    linkedin_sim.knobs.force_status = 503
    frame, stats = run(provider(servers, linkedin_sim), companies("a", "b", "c"), cache)
    assert linkedin_sim.by_entity() == {"a.example": 3, "b.example": 3, "c.example": 3}  # max_attempts each
    assert set(statuses(frame).values()) == {"provider_error"}
    assert stats.paid_calls == 0 and stats.cost_usd == 0  # failures are not billed
    assert stats.requests == 9


def test_transient_5xx_and_timeouts_are_retried_to_success(servers, linkedin_sim, cache):
    linkedin_sim.knobs.fail_first = 2
    frame, _ = run(provider(servers, linkedin_sim, concurrency=1), companies("a"), cache)
    assert [h.status for h in linkedin_sim.log] == [503, 503, 200]
    assert statuses(frame) == {"a": "filled"}

    linkedin_sim.knobs.timeout_rate = 1.0
    linkedin_sim.knobs.hang_s = 2.0
    frame, _ = run(provider(servers, linkedin_sim, timeout_s=0.1), companies("slow"), cache)
    assert statuses(frame) == {"slow": "timeout"}
    assert linkedin_sim.by_entity()["slow.example"] == 3


def test_malformed_json_is_a_row_error_and_the_batch_goes_on(servers, linkedin_sim, cache):
    frame, stats = run(provider(servers, linkedin_sim), companies("fine-co", "malformed-co", "other-co"), cache)
    assert statuses(frame) == {"fine-co": "filled", "malformed-co": "provider_error", "other-co": "filled"}
    assert frame.filter(pl.col("row_key") == "malformed-co")["detail"][0] == "malformed JSON"
    assert linkedin_sim.by_entity()["malformed-co.example"] == 1  # a 200 is billed: asking again would pay again
    assert stats.paid_calls == 3


def test_not_found_is_free_and_negative_cached(servers, linkedin_sim, cache):
    p = provider(servers, linkedin_sim)
    frame, stats = run(p, companies("missing-co"), cache)
    assert statuses(frame) == {"missing-co": "not_found"} and stats.cost_usd == 0
    frame, stats = run(provider(servers, linkedin_sim), companies("missing-co"), cache)
    assert stats.cache_hits == 1 and linkedin_sim.count() == 1


# --- circuit breaker --------------------------------------------------------------------------


def test_the_breaker_opens_after_a_run_of_failures_and_recovers_after_the_cooldown(servers, linkedin_sim, cache):
    now = [1000.0]
    retry = replace(FAST_RETRY, max_attempts=1, breaker_failures=3, breaker_cooldown_s=60)
    p = ApiProvider(
        VENDORS["linkedin"](),
        api(linkedin_sim, concurrency=1),
        retry,
        redis_url=servers.redis_url,
        redis_prefix=f"{servers.redis_prefix}{uuid.uuid4().hex[:8]}:",
        clock=lambda: now[0],
    )
    linkedin_sim.knobs.force_status = 503
    frame, stats = run(p, companies(*(f"r{i}" for i in range(8))), cache)
    assert linkedin_sim.count() == 3  # then the circuit opened: five rows skipped without a call
    assert sum("circuit open" in d for d in frame["detail"]) == 5
    assert stats.health.breaker == BreakerState.OPEN

    linkedin_sim.knobs.force_status = None
    frame, _ = run(p, companies("r8"), cache)
    assert linkedin_sim.count() == 3 and statuses(frame) == {"r8": "provider_error"}  # still cooling down
    now[0] += 61
    frame, _ = run(p, companies("r9", "r10"), cache)
    assert statuses(frame) == {"r9": "filled", "r10": "filled"} and p.breaker.state == BreakerState.CLOSED


# --- budget and ledger --------------------------------------------------------------------------


def spending(servers: TestServers, run_id: str, max_run: float, max_row: float = 1.0) -> Spending:
    ledger = Ledger(servers.database_url, run_id=run_id, table_id="budget_test")
    spent, by_row = ledger.spent()
    return Spending(ledger, Budget(max_run, max_row, spent, by_row), 600, 60)


def test_budget_stops_spending_and_a_larger_budget_pays_only_for_the_rest(servers, linkedin_sim, cache):
    rows = companies(*(f"b{i}" for i in range(12)))
    run_id = uuid.uuid4().hex
    frame, stats = run(provider(servers, linkedin_sim), rows, cache, spending(servers, run_id, 0.05))
    assert linkedin_sim.count() <= 0.05 / 0.01
    assert stats.paid_calls == 5 and stats.cost_usd == pytest.approx(0.05)
    assert stats.statuses["budget_exhausted"] == 7 and stats.budget_note

    second = spending(servers, uuid.uuid4().hex, 1.0)
    frame, stats = run(provider(servers, linkedin_sim), rows, cache, second)
    assert linkedin_sim.count() == 12  # 5 + only the 7 unpaid rows
    assert stats.cache_hits == 5 and set(statuses(frame).values()) == {"filled"}
    assert second.ledger.spent()[0] == pytest.approx(0.07)


def test_the_row_budget_refuses_a_call_dearer_than_it(servers, linkedin_sim, cache):
    frame, _ = run(provider(servers, linkedin_sim), companies("x"), cache, spending(servers, "r", 1.0, 0.005))
    assert statuses(frame) == {"x": "budget_exhausted"} and linkedin_sim.count() == 0


def test_the_ledger_answers_when_the_cache_lost_a_paid_answer(servers, linkedin_sim, cache):
    rows = companies("l1", "l2", "missing-l3")
    run(provider(servers, linkedin_sim), rows, cache, spending(servers, uuid.uuid4().hex, 1.0))
    assert cache.client is not None
    cache.client.delete(*cache.client.keys(cache.prefix + "*"))  # Redis evicted every answer

    frame, stats = run(provider(servers, linkedin_sim), rows, cache, spending(servers, uuid.uuid4().hex, 1.0))
    assert linkedin_sim.count() == 3  # nothing paid twice
    assert stats.ledger_hits == 3 and stats.cost_usd == 0
    assert statuses(frame) == {"l1": "filled", "l2": "filled", "missing-l3": "not_found"}
    _, stats = run(provider(servers, linkedin_sim), rows, cache)
    assert stats.cache_hits == 3  # the ledger's answers went back into the cache


def test_without_the_ledger_nothing_is_paid(servers, linkedin_sim, cache):
    ledger = Ledger(f"postgresql://postgres@127.0.0.1:{closed_port()}/glaze", run_id="r", table_id="t")
    with pytest.raises(psycopg.OperationalError):
        run(provider(servers, linkedin_sim), companies("a"), cache, Spending(ledger, Budget(1.0, 1.0), 600, 60))
    assert linkedin_sim.count() == 0  # never-pay-twice cannot be checked, so nothing is bought


# --- the vendors' answers as they really come (docs/vendors.md) ---------------------------------


def test_a_signed_linkedin_logo_keeps_its_signature_and_says_when_it_expires(servers, linkedin_sim, cache):
    frame, _ = run(provider(servers, linkedin_sim), companies("acme-robotics"), cache)
    logo = frame.filter(pl.col("field") == "company_logo_url")
    url = logo["value"][0]
    assert url.startswith("https://media.licdn.com/dms/image/v2/") and "?e=" in url and "&v=beta&t=" in url
    assert url == signed_logo_url("acme-robotics")  # byte for byte what the API sent
    assert "signed link, expires 20" in logo["evidence"][0]  # the record says when the link dies


def test_linkedin_specialities_come_as_one_string(servers, linkedin_sim, cache):
    frame, _ = run(provider(servers, linkedin_sim), companies("kestrel-logistics"), cache)
    assert values(frame, "kestrel-logistics")["company_specialities"] == "logistics"
    assert isinstance(company_facts("kestrel-logistics")["specialties"], list)  # the sim joins them, as the API does


def test_search_reads_the_industry_from_the_panel_type_and_headquarters_and_founded_as_google_writes_them(
    servers, search_sim, cache
):
    # Find made-up companies whose panel says "Austin, TX" and "Month D, YYYY, Place" (both shapes occur).
    labels = [f"co{i}" for i in range(40)]
    us = next(
        x
        for x in labels
        if serper_answer(f"{x}.example")["knowledgeGraph"]["attributes"]["Headquarters"].endswith(", TX")
    )
    dated = next(x for x in labels if "," in serper_answer(f"{x}.example")["knowledgeGraph"]["attributes"]["Founded"])
    frame, _ = run(provider(servers, search_sim), companies(us, dated), cache)
    found_us, found_dated = values(frame, us), values(frame, dated)
    assert found_us["company_industry"] == company_facts(us)["industry"]  # "Logistics company" → "Logistics"
    assert found_us["company_hq_location"] == "Austin, TX"
    assert found_us["company_city"] == "Austin" and found_us["company_country"] == "US"  # TX is a state
    assert found_dated["company_founded_year"] == str(company_facts(dated)["founded"])


def test_search_headquarters_and_types_parse_sturdily() -> None:
    assert headquarters("Cupertino, CA", 75) == [
        ("company_hq_location", "Cupertino, CA", 75),
        ("company_city", "Cupertino", 70),
        ("company_country", "US", 70),  # California, not Canada
    ]
    assert ("company_country", "DE", 70) in headquarters("Berlin, Germany", 75)
    assert headquarters("Worldwide", 75) == [("company_hq_location", "Worldwide", 75)]
    assert industry_of("Technology company") == "Technology"
    assert industry_of("Automobile manufacturer") == "Automobile manufacturer"
    assert industry_of("City in Germany") is None and industry_of("") is None


def test_a_bad_search_key_gets_403_said_plainly_not_retried_and_no_more_rows_asked(servers, search_sim, cache):
    p = provider(servers, search_sim, api_key="wrong-secret-key", concurrency=1)
    frame, _ = run(p, companies("a", "b", "c", "d"), cache)
    assert search_sim.count(403) == 1 and search_sim.count() == 1  # not retried, the other rows never sent
    assert set(statuses(frame).values()) == {"provider_error"}
    assert frame["detail"][0] == "HTTP 403 'Unauthorized.': the key in GLAZE_SEARCH_API_KEY was refused"
    assert "wrong-secret-key" not in " ".join(frame["detail"])


def test_429s_without_retry_after_open_the_circuit_and_leave_the_rest_rate_limited(servers, linkedin_sim, cache):
    linkedin_sim.knobs.force_status = 429
    linkedin_sim.knobs.retry_after_s = None  # a spent monthly quota: no Retry-After
    retry = replace(FAST_RETRY, max_attempts=4, breaker_failures=5)
    rows = companies(*(f"q{i}" for i in range(30)))
    frame, stats = run(provider(servers, linkedin_sim, retry, concurrency=2), rows, cache)
    assert set(statuses(frame).values()) == {"rate_limited"}  # asked again next run: nothing of it is cached
    assert linkedin_sim.count() <= 5 + 2  # the breaker's threshold and what was in flight, not 30 rows x 4
    assert stats.health.breaker == BreakerState.OPEN
    assert sum("circuit open" in d for d in frame["detail"]) >= 25
    linkedin_sim.knobs.force_status = None
    frame, stats = run(provider(servers, linkedin_sim, retry), rows[:3], cache)
    assert stats.cache_hits == 0 and set(statuses(frame).values()) == {"filled"}  # the next run asks them again
