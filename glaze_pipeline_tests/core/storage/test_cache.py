"""The provider cache against a real Redis: hits, misses, TTLs by outcome, bulk MGET, and Redis down."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING
from uuid import uuid4

import polars as pl
import pytest
import redis

from glaze_pipeline.core.model.candidates import Attempt, Evidence, Found, attempts_to_frame
from glaze_pipeline.core.model.fields import EntityType
from glaze_pipeline.core.model.provider import Provider, Target
from glaze_pipeline.core.model.status import Status
from glaze_pipeline.core.pipeline.stage import run_stage
from glaze_pipeline.core.storage.cache import (
    CACHEABLE,
    CachedFrame,
    ProviderCache,
    connect_cache,
    decode_attempt,
    encode_attempt,
    request_hash,
)
from glaze_pipeline_tests.helpers import closed_port_url

TTL_S = 1_000
NEGATIVE_TTL_S = 60

if TYPE_CHECKING:
    from glaze_pipeline_tests.conftest import TestServers


@pytest.fixture
def prefix(servers: TestServers) -> str:
    return f"{servers.redis_prefix}{uuid4().hex}:"


@pytest.fixture
def cache(servers: TestServers, prefix: str) -> Iterator[ProviderCache]:
    cache = connect_cache(servers.redis_url, prefix=prefix, ttl_s=TTL_S, negative_ttl_s=NEGATIVE_TTL_S)
    assert cache.degraded_reason is None, cache.degraded_reason
    yield cache
    assert cache.client is not None
    cache.client.close()


@pytest.fixture
def client(servers: TestServers) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(servers.redis_url)
    yield client
    client.close()


def command_calls(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name: int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("get", "mget")}


# --- keys, encoding ------------------------------------------------------------------------------


def test_key_is_prefix_provider_version_and_request_hash(cache: ProviderCache, prefix: str) -> None:
    key = cache.key("website", "1", "https://acme.example")
    assert key == f"{prefix}cache:website:1:{request_hash('https://acme.example')}"
    assert cache.key("website", "2", "https://acme.example") != key
    assert cache.key("search", "1", "https://acme.example") != key
    assert cache.key("website", "1", "https://other.example") != key


def test_decoded_attempt_is_free_cached_and_keeps_its_fetch_time() -> None:
    fetched = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    attempt = Attempt(
        "r1",
        (Found("company_name", "Acme", 80, "https://acme.example"),),
        Status.FILLED,
        0.05,
        False,
        fetched,
        "d",
    )
    decoded = decode_attempt("r1", encode_attempt(attempt, attempt.cost_usd))
    assert decoded == Attempt("r1", attempt.found, Status.FILLED, 0.0, True, fetched, "d")


def test_answers_decoded_in_bulk_give_the_same_candidate_rows_as_one_attempt_at_a_time() -> None:
    fetched = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
    elsewhere = datetime(2026, 3, 4, 7, 6, 7, tzinfo=timezone(timedelta(hours=2)))  # the same instant, +02:00
    attempts = [
        Attempt(
            "r1",
            (
                Found("company_name", "  Acme  GmbH ", 140, "x" * 600),  # cleaned, confidence capped, evidence cut
                Found("company_website", "not a url", 90, "page"),  # the catalog refuses it: no row
                Found("company_city", "Berlin", -5, "address"),  # not wanted below: no row
                Found(
                    "company_name", "Acme", 70, "title", reason="lost to the og:site_name"
                ),  # the reason is not cached
            ),
            Status.FILLED,
            0.03,
            fetched_at=fetched,
            detail="two names",
            evidence=(Evidence("https://acme.example/about", "About Acme"),),
        ),
        Attempt("r2", (Found("company_city", "Leeds", 80, "e"),), Status.FILLED, fetched_at=elsewhere),  # none wanted
        Attempt("r3", (), Status.NOT_FOUND, fetched_at=None),  # no fetch time: the frame's `now`
        Attempt("r4", (), Status.PROVIDER_ERROR, detail="HTTP 500", fetched_at=fetched),
        Attempt("r5", (Found("company_name", "Beta", 60, "e"),), Status.FILLED, fetched_at=elsewhere),
    ]
    payloads = [(a.row_key, encode_attempt(a, a.cost_usd)) for a in attempts]
    now = datetime(2026, 5, 1, tzinfo=UTC)
    for wanted in (["company_name", "company_website"], None):
        bulk = CachedFrame("search", wanted, now)
        for key, payload in payloads:
            bulk.add(key, payload)
        one_by_one = [decode_attempt(key, payload) for key, payload in payloads]
        expected = attempts_to_frame(one_by_one, "search", wanted).with_columns(  # it stamps its own `now`
            fetched_at=pl.when(pl.col("row_key") == "r3").then(pl.lit(now)).otherwise(pl.col("fetched_at"))
        )
        got = bulk.frame()
        assert got.schema == expected.schema
        assert got.to_dicts() == expected.to_dicts()
        assert bulk.statuses == dict(Counter(a.status.value for a in one_by_one))
        assert bulk.count == len(attempts)


# --- hit, miss, TTL ------------------------------------------------------------------------------


def test_get_many_returns_hits_only_and_counts_hits_and_misses(cache: ProviderCache) -> None:
    k1, k2, k3 = (cache.key("fake", "1", f"req-{i}") for i in range(3))
    assert cache.put_many([(k1, b"one", Status.FILLED), (k2, b"two", Status.NOT_FOUND)]) == 2

    assert cache.get_many([k1, k2, k3]) == {k1: b"one", k2: b"two"}
    assert (cache.hits, cache.misses) == (2, 1)


def test_put_many_accepts_a_mapping(cache: ProviderCache) -> None:
    key = cache.key("fake", "1", "mapping")
    assert cache.put_many({key: (b"payload", Status.FILLED)}) == 1
    assert cache.get_many([key]) == {key: b"payload"}


def test_get_many_of_nothing_makes_no_round_trip(cache: ProviderCache, client: redis.Redis) -> None:
    before = command_calls(client)
    assert cache.get_many([]) == {}
    assert command_calls(client) == before


def test_filled_answers_get_the_ttl_and_misses_the_shorter_negative_ttl(
    cache: ProviderCache, client: redis.Redis
) -> None:
    filled, missing = cache.key("fake", "1", "filled"), cache.key("fake", "1", "missing")
    assert cache.put_many([(filled, b"f", Status.FILLED), (missing, b"m", Status.NOT_FOUND)]) == 2

    filled_ttl, missing_ttl = client.ttl(filled), client.ttl(missing)
    assert NEGATIVE_TTL_S < filled_ttl <= TTL_S
    assert 0 < missing_ttl <= NEGATIVE_TTL_S


def test_a_one_second_ttl_is_set_on_the_key(servers: TestServers, prefix: str, client: redis.Redis) -> None:
    cache = connect_cache(servers.redis_url, prefix=prefix, ttl_s=1, negative_ttl_s=1)
    key = cache.key("fake", "1", "short")
    cache.put_many([(key, b"x", Status.FILLED)])
    assert 0 < client.pttl(key) <= 1_000


@pytest.mark.parametrize("status", sorted(set(Status) - CACHEABLE))
def test_outcomes_that_may_change_on_retry_are_not_cached(
    cache: ProviderCache, client: redis.Redis, status: Status
) -> None:
    key = cache.key("fake", "1", f"retry-{status}")
    assert cache.put_many([(key, b"x", status)]) == 0
    assert client.exists(key) == 0


def test_only_cacheable_entries_of_a_mixed_batch_are_written(cache: ProviderCache, client: redis.Redis) -> None:
    keys = [cache.key("fake", "1", f"mixed-{i}") for i in range(3)]
    statuses = [Status.FILLED, Status.TIMEOUT, Status.NOT_FOUND]
    assert cache.put_many(zip(keys, [b"a", b"b", b"c"], statuses, strict=True)) == 2
    assert [client.exists(k) for k in keys] == [1, 0, 1]


# --- bulk ---------------------------------------------------------------------------------------


def test_bulk_get_uses_a_few_mgets_and_no_single_gets(cache: ProviderCache, client: redis.Redis) -> None:
    keys = [cache.key("fake", "1", f"bulk-{i}") for i in range(2_500)]
    assert cache.put_many([(k, k.encode(), Status.FILLED) for k in keys]) == 2_500

    before = command_calls(client)
    found = cache.get_many(keys)
    after = command_calls(client)

    assert len(found) == 2_500
    assert found[keys[1_234]] == keys[1_234].encode()
    assert 1 <= after["mget"] - before["mget"] <= 3
    assert after["get"] - before["get"] == 0


# --- Redis down ---------------------------------------------------------------------------------


def test_no_redis_configured_is_a_degraded_cache() -> None:
    cache = connect_cache(None, prefix="x:", ttl_s=TTL_S, negative_ttl_s=NEGATIVE_TTL_S)
    assert not cache.available
    assert cache.degraded_reason
    assert cache.get_many(["x:a"]) == {}
    assert cache.put_many([("x:a", b"v", Status.FILLED)]) == 0


def test_unreachable_redis_degrades_instead_of_raising() -> None:
    cache = connect_cache(closed_port_url(), prefix="x:", ttl_s=TTL_S, negative_ttl_s=NEGATIVE_TTL_S)

    assert cache.degraded_reason is not None
    assert "Redis unavailable" in cache.degraded_reason
    assert not cache.available
    assert cache.get_many(["x:a", "x:b"]) == {}
    assert cache.misses == 2
    assert cache.put_many([("x:a", b"v", Status.FILLED)]) == 0


def test_redis_failing_after_connect_degrades_on_first_use() -> None:
    """Redis gone between connect and use: the first failing call degrades the cache, later ones skip it."""
    client = redis.Redis.from_url(closed_port_url(), socket_connect_timeout=2, socket_timeout=2)
    cache = ProviderCache(client, "x:", TTL_S, NEGATIVE_TTL_S)
    assert cache.available

    assert cache.get_many(["x:a"]) == {}
    assert cache.degraded_reason is not None
    assert not cache.available
    assert cache.put_many([("x:a", b"v", Status.FILLED)]) == 0


def test_put_many_degrades_when_redis_fails_mid_write() -> None:
    client = redis.Redis.from_url(closed_port_url(), socket_connect_timeout=2, socket_timeout=2)
    cache = ProviderCache(client, "x:", TTL_S, NEGATIVE_TTL_S)
    assert cache.put_many([("x:a", b"v", Status.FILLED)]) == 0
    assert cache.degraded_reason is not None


class CountingProvider(Provider):
    name = "counting"
    version = "1"
    fields = frozenset({"company_name"})
    entity_types = frozenset({EntityType.COMPANY_WEBSITE})
    price_usd = 0.01

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def enrich(self, targets: Sequence[Target]) -> list[Attempt]:
        self.seen.extend(t.row_key for t in targets)
        return [
            Attempt(
                t.row_key,
                (Found("company_name", f"Name {t.row_key}", 80, t.normalized_url),),
                Status.FILLED,
                0.01,
            )
            for t in targets
        ]


def test_run_provider_without_redis_still_returns_the_providers_answers() -> None:
    cache = connect_cache(closed_port_url(), prefix="x:", ttl_s=TTL_S, negative_ttl_s=NEGATIVE_TTL_S)
    provider = CountingProvider()
    targets = [
        Target(f"r{i}", EntityType.COMPANY_WEBSITE, f"https://c{i}.example", ("company_name",)) for i in range(3)
    ]

    frame, stats = asyncio.run(run_stage(provider, targets, cache))

    assert provider.seen == ["r0", "r1", "r2"]
    assert sorted(frame["value"].to_list()) == ["Name r0", "Name r1", "Name r2"]
    assert not frame["cached"].any()
    assert stats.calls == 3
    assert stats.cache_hits == 0
    assert stats.cost_usd == pytest.approx(0.03)
    assert stats.cache_note is not None
    assert stats.cache_note == cache.degraded_reason
