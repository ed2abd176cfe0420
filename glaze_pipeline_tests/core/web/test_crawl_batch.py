"""The website provider end to end: crawl batches in a child process (a few rows in process), one status per row."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from glaze_pipeline.core.model.candidates import Attempt
from glaze_pipeline.core.model.fields import EntityType
from glaze_pipeline.core.model.provider import Target as RowTarget
from glaze_pipeline.core.model.status import Status
from glaze_pipeline.core.pipeline.stage import run_stage
from glaze_pipeline.core.providers.website import WebsiteProvider
from glaze_pipeline.core.storage.cache import connect_cache
from glaze_pipeline.core.web.crawl_batch import IN_PROCESS_MAX_SITES, BatchJob, crawl, crawl_in_child, crawl_in_process
from glaze_pipeline.core.web.crawl_options import CrawlOptions, Target
from glaze_pipeline.core.web.fetch import FetchPolicy, OverrideResolver
from glaze_pipeline.sandbox.sites import DEMO_SITES, SiteServer, demo_hosts, directory_pages
from glaze_pipeline_tests.helpers import RoutedSite, html

if TYPE_CHECKING:
    from glaze_pipeline_tests.conftest import TestServers

ORG = """<script type="application/ld+json">{"@type": "Organization", "name": "Okay GmbH",
"email": "info@ok.site.example"}</script>"""


@pytest.fixture(scope="module")
def site() -> Iterator[RoutedSite]:
    with RoutedSite("127.0.0.1") as server:
        server.routes.update(
            {
                ("ok.site.example", "/"): lambda n: html('<a href="/impressum">Impressum</a>', ORG),
                ("ok.site.example", "/impressum"): lambda n: html("<p>Telefon: +49 30 1234567</p>"),
                ("empty.site.example", "/"): lambda n: html("<p>Under construction</p>"),
                ("missing.site.example", "/"): lambda n: (404, {}, b"no"),
                ("broken.site.example", "/"): lambda n: (500, {}, b"oops"),
                ("shy.site.example", "/robots.txt"): lambda n: (200, {}, b"User-agent: *\nDisallow: /\n"),
                ("shy.site.example", "/"): lambda n: html("secret", ORG),
                ("slow.site.example", "/"): lambda n: (server.release.wait(), html("late"))[1],
                ("big.site.example", "/"): lambda n: (200, {"Content-Type": "text/html"}, b"a" * 200_000),
            }
        )
        yield server


def provider(site: RoutedSite, **policy: object) -> WebsiteProvider:
    resolver = OverrideResolver({"*.site.example": ("127.0.0.1", site.port)}, fallback=None)
    settings = {"allowed_networks": ("127.0.0.1/32",), "timeout_s": 1.0, "max_bytes": 100_000} | policy
    return WebsiteProvider(CrawlOptions(policy=FetchPolicy(**settings), start_delay_s=0), resolver)  # type: ignore[arg-type]


def targets(*names: str) -> list[RowTarget]:
    return [RowTarget(n, EntityType.COMPANY_WEBSITE, f"https://{n}.site.example", ("company_name",)) for n in names]


def enrich(p: WebsiteProvider, rows: list[RowTarget]) -> dict[str, Attempt]:
    async def run() -> list[Attempt]:
        async with p:
            return await p.enrich(rows)

    return {a.row_key: a for a in asyncio.run(run())}


def test_every_row_ends_with_its_status_and_the_batch_goes_on(site: RoutedSite) -> None:
    rows = targets("ok", "empty", "missing", "broken", "shy", "slow", "big", "nodns")
    rows.append(RowTarget("evil", EntityType.COMPANY_WEBSITE, "http://127.0.0.2/", ("company_name",)))
    attempts = enrich(provider(site), rows)
    assert {k: a.status for k, a in attempts.items()} == {
        "ok": Status.FILLED,
        "empty": Status.NOT_FOUND,
        "missing": Status.NOT_FOUND,
        "broken": Status.PROVIDER_ERROR,
        "shy": Status.BLOCKED,
        "slow": Status.TIMEOUT,
        "big": Status.TOO_LARGE,
        "nodns": Status.NOT_FOUND,
        "evil": Status.BLOCKED,
    }
    found = {(f.field, f.value) for f in attempts["ok"].found}
    assert ("company_name", "Okay GmbH") in found
    assert ("company_phone", "+49301234567") in found  # from the Impressum page the crawler chose
    assert "impressum" in attempts["ok"].detail
    assert site.paths("shy.site.example") == ["/robots.txt"]


def test_provider_runs_twice_in_one_process(site: RoutedSite) -> None:
    p = provider(site)
    first, second = enrich(p, targets("ok")), enrich(p, targets("ok"))
    assert first["ok"].found == second["ok"].found and first["ok"].status == Status.FILLED


def test_a_batch_over_its_deadline_ends_as_timeout_rows(site: RoutedSite) -> None:
    options = CrawlOptions(policy=FetchPolicy(allowed_networks=("127.0.0.1/32",), timeout_s=30), start_delay_s=0)
    job = BatchJob(options, resolve_overrides=f"*.site.example=127.0.0.1:{site.port}", system_dns=False, deadline_s=2)
    results, stats = asyncio.run(crawl_in_child([Target("slow", "http://slow.site.example/")], job))
    assert [(r.row_key, r.status) for r in results] == [("slow", Status.TIMEOUT)]
    assert stats.exit_code is not None and stats.exit_code != 0  # the child was killed, not left behind


def test_only_an_override_table_reaches_the_child() -> None:
    resolver = OverrideResolver({"a.example": ("127.0.0.1", 8080)}, fallback=None)
    p = WebsiteProvider(CrawlOptions(), resolver)
    assert p.job.resolve_overrides == "a.example=127.0.0.1:8080"
    assert p.job.system_dns is False
    assert WebsiteProvider(CrawlOptions()).job.system_dns is True


def test_a_page_fetched_through_a_pin_is_not_served_from_the_cache_to_a_run_without_it(
    site: RoutedSite, servers: TestServers
) -> None:
    cache = connect_cache(
        servers.redis_url, prefix=f"{servers.redis_prefix}{uuid.uuid4().hex}:", ttl_s=600, negative_ttl_s=60
    )
    pinned = provider(site)  # *.site.example pinned to the loopback site, private networks allowed
    frame, stats = asyncio.run(run_stage(pinned, targets("ok"), cache))
    assert stats.calls == 1 and "Okay GmbH" in frame["value"].to_list()
    _, again = asyncio.run(run_stage(provider(site), targets("ok"), cache))
    assert again.cache_hits == 1  # the same configuration reads its own answer back

    plain = WebsiteProvider(CrawlOptions())  # the system's DNS, public addresses only
    row = targets("ok")[0]
    assert plain.request_key(row) == row.normalized_url  # the plain configuration keeps its keys
    assert plain.request_key(row) != pinned.request_key(row)
    key = cache.key(plain.name, plain.version, plain.request_key(row))
    assert cache.get_many([key]) == {}  # a run without the pin would fetch for itself, not read the pinned page


def test_a_small_batch_crawled_in_process_answers_exactly_as_the_child_does() -> None:
    """The in-process path (a single-record request) against the child, on every demo site: same results."""
    with SiteServer(directory_pages(DEMO_SITES)) as server:
        hosts = demo_hosts()
        options = CrawlOptions(policy=FetchPolicy(allowed_networks=("127.0.0.1/32",)), start_delay_s=0)
        job = BatchJob(options, resolve_overrides=server.resolve_spec(hosts), system_dns=False, deadline_s=60)
        batch = [Target(host, f"https://{host}/") for host in hosts]
        in_child, stats = asyncio.run(crawl_in_child(batch, job))  # one child for all of them
        assert stats.exit_code == 0
        for target, b in zip(batch, in_child, strict=True):
            (a,), _ = asyncio.run(crawl_in_process([target], job))
            assert a.status == b.status == Status.FILLED, target.url
            assert (a.found, a.pages, a.evidence, a.detail) == (b.found, b.pages, b.evidence, b.detail), target.url
            assert a.found, target.url


def test_only_a_few_sites_skip_the_child(site: RoutedSite) -> None:
    options = CrawlOptions(policy=FetchPolicy(allowed_networks=("127.0.0.1/32",)), start_delay_s=0)
    job = BatchJob(options, resolve_overrides=f"*.site.example=127.0.0.1:{site.port}", system_dns=False)
    few = [Target(n, f"https://{n}.site.example/") for n in ("ok", "empty", "missing")[:IN_PROCESS_MAX_SITES]]
    results, stats = asyncio.run(crawl(few, job))
    assert stats.exit_code is None  # no child was started
    assert [r.status for r in results][:1] == [Status.FILLED]
    many = [Target(f"{i}", "https://ok.site.example/") for i in range(IN_PROCESS_MAX_SITES + 1)]
    results, stats = asyncio.run(crawl(many, job))
    assert stats.exit_code == 0 and {r.status for r in results} == {Status.FILLED}


def test_an_in_process_batch_over_its_deadline_ends_as_timeout_rows(site: RoutedSite) -> None:
    options = CrawlOptions(policy=FetchPolicy(allowed_networks=("127.0.0.1/32",), timeout_s=30), start_delay_s=0)
    job = BatchJob(options, resolve_overrides=f"*.site.example=127.0.0.1:{site.port}", system_dns=False, deadline_s=1)
    results, _ = asyncio.run(crawl_in_process([Target("slow", "http://slow.site.example/")], job))
    assert [(r.row_key, r.status) for r in results] == [("slow", Status.TIMEOUT)]
