"""The scrapy crawler against loopback sites: the fetch guard on every hop, robots.txt, caps, redirects,
Retry-After, and a status for every row. A "canary" on 127.0.0.2 must never be reached."""

from __future__ import annotations

import asyncio
import gzip
import tracemalloc
from collections.abc import Iterator

import brotli
import pytest

from glaze_pipeline.core.model.status import Status
from glaze_pipeline.core.web.crawl_options import CrawlOptions, Target
from glaze_pipeline.core.web.crawler import SiteCrawl, crawl_sites, retry_after_seconds
from glaze_pipeline.core.web.fetch import Address, FetchPolicy, OverrideResolver, Resolver
from glaze_pipeline_tests.helpers import RoutedSite, html


def _bomb(encoding: str) -> bytes:
    """64 MB of zeros compressed to a few KB, built chunk by chunk so the test never holds 64 MB."""
    chunk = bytes(1 << 20)
    if encoding == "gzip":
        squeezer = gzip.zlib.compressobj(9, gzip.zlib.DEFLATED, gzip.zlib.MAX_WBITS | 16)  # type: ignore[attr-defined]
        return b"".join([*(squeezer.compress(chunk) for _ in range(64)), squeezer.flush()])
    compressor = brotli.Compressor(quality=5)
    return b"".join([*(compressor.process(chunk) for _ in range(64)), compressor.finish()])


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[RoutedSite, RoutedSite]]:
    with RoutedSite("127.0.0.1") as site, RoutedSite("127.0.0.2") as canary:
        yield site, canary


@pytest.fixture
def site(servers: tuple[RoutedSite, RoutedSite]) -> RoutedSite:
    servers[0].reset()
    return servers[0]


@pytest.fixture
def canary(servers: tuple[RoutedSite, RoutedSite]) -> RoutedSite:
    servers[1].reset()
    servers[1].routes[("*", "/")] = lambda n: html("you should not be here")
    return servers[1]


SITE_ONLY = FetchPolicy(allowed_networks=("127.0.0.1/32",), timeout_s=5)
FAST = CrawlOptions(policy=SITE_ONLY, start_delay_s=0)


def crawl(
    urls: dict[str, str], resolver: Resolver, options: CrawlOptions = FAST
) -> tuple[dict[str, SiteCrawl], dict[str, object]]:
    done: dict[str, SiteCrawl] = {}

    def keep(site: SiteCrawl) -> None:
        done[site.row_key] = site

    stats = asyncio.run(crawl_sites([Target(k, u) for k, u in urls.items()], options, keep, resolver))
    return done, stats


def names(site: RoutedSite, canary: RoutedSite, **extra: str) -> OverrideResolver:
    """Tests never touch real DNS: *.site.example is the site, evil.example the canary."""
    overrides: dict[str, Address] = {
        "*.site.example": ("127.0.0.1", site.port),
        "evil.example": ("127.0.0.2", canary.port),
    }
    return OverrideResolver(overrides, fallback=None)


# --- the guard, through scrapy ------------------------------------------------------------------------


def test_guard_matrix_never_reaches_the_canary(site: RoutedSite, canary: RoutedSite) -> None:
    c = canary.port
    site.routes.update(
        {
            ("redirect.site.example", "/"): lambda n: (302, {"Location": f"http://127.0.0.2:{c}/"}, b""),
            ("named.site.example", "/"): lambda n: (302, {"Location": "http://evil.example/"}, b""),
            ("refresh.site.example", "/"): lambda n: html(
                "moved", f'<meta http-equiv="refresh" content="0;url=http://127.0.0.2:{c}/">'
            ),
            ("subpage.site.example", "/"): lambda n: html(f'<a href="http://127.0.0.2:{c}/about">About us</a>'),
            ("ok.site.example", "/"): lambda n: html("<h1>Fine</h1>"),
        }
    )
    refused = {
        "literal": f"http://127.0.0.2:{c}/",
        "decimal": f"http://2130706434:{c}/",
        "octal": f"http://0177.0.0.02:{c}/",
        "hex": f"http://0x7f000002:{c}/",
        "short": f"http://127.2:{c}/",
        "mapped": f"http://[::ffff:127.0.0.2]:{c}/",
        "sixtofour": f"http://[2002:7f00:2::1]:{c}/",
        "nat64": f"http://[64:ff9b::7f00:2]:{c}/",
        "metadata": "http://169.254.169.254/latest/meta-data/",
        "name": "http://evil.example/",
        "redirect": "http://redirect.site.example/",
        "redirect_to_name": "http://named.site.example/",
        "meta_refresh": "http://refresh.site.example/",
        "file": "file:///etc/passwd",
    }
    done, _ = crawl(
        {**refused, "ok": "http://ok.site.example/", "subpage": "http://subpage.site.example/"}, names(site, canary)
    )
    assert canary.connections == 0
    assert {k: done[k].status for k in refused if k != "file"} == {k: Status.BLOCKED for k in refused if k != "file"}
    assert done["file"].status != Status.FILLED and not done["file"].pages
    # Refused hops leave the row blocked; a refused about-link leaves what the homepage gave.
    assert done["meta_refresh"].pages == [] and "127.0.0.2" in done["meta_refresh"].detail
    assert done["ok"].status == Status.FILLED and done["subpage"].status == Status.FILLED
    assert [p.url for p in done["subpage"].pages] == ["http://subpage.site.example/"]


def test_dns_rebinding_is_pinned_to_the_first_checked_answer(site: RoutedSite, canary: RoutedSite) -> None:
    site.routes[("*", "/")] = lambda n: html('<a href="/contact">Contact</a><a href="/about">About</a>')
    site.routes[("*", "/contact")] = lambda n: html("mail us")
    site.routes[("*", "/about")] = lambda n: html("about us")
    asked: list[str] = []

    async def rebinding(host: str, port: int) -> list[Address]:
        """Answers a (for this policy) public address first, the canary every time after."""
        asked.append(host)
        return [("127.0.0.1", site.port)] if len(asked) == 1 else [("127.0.0.2", canary.port)]

    done, _ = crawl({"rebind": "http://rebind.example/"}, rebinding)
    assert canary.connections == 0
    assert done["rebind"].status == Status.FILLED
    assert sorted(p.url.rsplit("/", 1)[1] for p in done["rebind"].pages) == ["", "about", "contact"]
    assert asked == ["rebind.example"]  # robots.txt, the homepage and two pages: one resolution


def test_private_networks_only_when_configured(site: RoutedSite, canary: RoutedSite) -> None:
    site.routes[("*", "/")] = lambda n: html("hello")
    closed = CrawlOptions(policy=FetchPolicy(), start_delay_s=0)
    done, _ = crawl({"a": "http://a.site.example/"}, names(site, canary), closed)
    assert done["a"].status == Status.BLOCKED
    assert site.connections == 0


# --- robots, politeness, caps ---------------------------------------------------------------------------


def test_robots_disallow_means_no_page_is_fetched(site: RoutedSite, canary: RoutedSite) -> None:
    site.routes[("shy.site.example", "/robots.txt")] = lambda n: (200, {}, b"User-agent: *\nDisallow: /\n")
    site.routes[("picky.site.example", "/robots.txt")] = lambda n: (
        200,
        {},
        b"User-agent: glaze-pipeline\nDisallow: /team\n\nUser-agent: *\nDisallow: /\n",
    )
    site.routes[("*", "/")] = lambda n: html('<a href="/team">Team</a><a href="/contact">Contact</a>')
    site.routes[("*", "/contact")] = lambda n: html("contact")
    done, _ = crawl({"shy": "http://shy.site.example/", "picky": "http://picky.site.example/"}, names(site, canary))
    assert done["shy"].status == Status.BLOCKED and "robots.txt" in done["shy"].detail
    assert site.paths("shy.site.example") == ["/robots.txt"]
    assert sorted(site.paths("picky.site.example")) == ["/", "/contact", "/robots.txt"]  # its own group wins


def test_identifying_user_agent_and_no_cookies(site: RoutedSite, canary: RoutedSite) -> None:
    site.routes[("*", "/")] = lambda n: (
        200,
        {"Set-Cookie": "s=1", "Content-Type": "text/html"},
        b'<a href="/contact">c</a>',
    )
    site.routes[("*", "/contact")] = lambda n: html("c")
    done, _ = crawl({"a": "http://a.site.example/"}, names(site, canary))
    assert done["a"].status == Status.FILLED
    assert sorted(site.paths("a.site.example")) == ["/", "/contact", "/robots.txt"]
    assert {h.user_agent for h in site.log} == {SITE_ONLY.user_agent}
    assert [h.cookie for h in site.log] == [None, None, None]


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_compression_bomb_is_too_large_with_flat_memory(site: RoutedSite, canary: RoutedSite, encoding: str) -> None:
    bomb = _bomb(encoding)
    site.routes[("*", "/")] = lambda n: (200, {"Content-Type": "text/html", "Content-Encoding": encoding}, bomb)
    options = CrawlOptions(policy=FetchPolicy(allowed_networks=("127.0.0.1/32",), max_bytes=1_000_000), start_delay_s=0)
    tracemalloc.start()
    try:
        done, _ = crawl({"bomb": "http://bomb.site.example/"}, names(site, canary), options)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert done["bomb"].status == Status.TOO_LARGE
    assert peak < 30_000_000  # 64 MB inflated would be far above; the cap is 1 MB


def test_redirect_loop_stops_at_five(site: RoutedSite, canary: RoutedSite) -> None:
    site.routes[("*", "/")] = lambda n: (302, {"Location": "/"}, b"")
    done, _ = crawl({"loop": "http://loop.site.example/"}, names(site, canary))
    assert done["loop"].status == Status.PROVIDER_ERROR and done["loop"].detail == "too many redirects"
    assert site.paths("loop.site.example").count("/") == 6  # the first request and 5 redirects


def test_retry_after_is_honoured_then_capped(site: RoutedSite, canary: RoutedSite) -> None:
    site.routes[("busy.site.example", "/")] = lambda n: (429, {"Retry-After": "1"}, b"") if n == 0 else html("ok")
    site.routes[("gone-fishing.site.example", "/")] = lambda n: (503, {"Retry-After": "3600"}, b"")
    done, _ = crawl(
        {"busy": "http://busy.site.example/", "away": "http://gone-fishing.site.example/"}, names(site, canary)
    )
    assert done["busy"].status == Status.FILLED
    first, second = [h.at for h in site.log if (h.site, h.path) == ("busy.site.example", "/")]
    assert second - first >= 1.0  # measured by the server: the wait the header asked for
    assert done["away"].status == Status.RATE_LIMITED
    assert site.paths("gone-fishing.site.example").count("/") == 1  # an hour is over the cap: no retry


def test_retry_after_header_forms() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_statuses_per_row_and_the_crawl_goes_on(site: RoutedSite, canary: RoutedSite) -> None:
    site.routes.update(
        {
            ("ok.site.example", "/"): lambda n: html("<p>hi</p>"),
            ("missing.site.example", "/"): lambda n: (404, {}, b"no"),
            ("broken.site.example", "/"): lambda n: (500, {}, b"oops"),
            ("slow.site.example", "/"): lambda n: (site.release.wait(), html("late"))[1],
            ("big.site.example", "/"): lambda n: (200, {"Content-Type": "text/html"}, b"a" * 200_000),
        }
    )
    options = CrawlOptions(
        policy=FetchPolicy(allowed_networks=("127.0.0.1/32",), timeout_s=0.5, max_bytes=100_000), start_delay_s=0
    )
    urls = {name: f"http://{name}.site.example/" for name in ("ok", "missing", "broken", "slow", "big")}
    done, _ = crawl(
        urls | {"nodns": "http://nowhere.example/", "blocked": "http://evil.example/"}, names(site, canary), options
    )
    assert {k: s.status for k, s in done.items()} == {
        "ok": Status.FILLED,
        "missing": Status.NOT_FOUND,
        "broken": Status.PROVIDER_ERROR,
        "slow": Status.TIMEOUT,
        "big": Status.TOO_LARGE,
        "nodns": Status.NOT_FOUND,
        "blocked": Status.BLOCKED,
    }


# --- which pages, and running twice --------------------------------------------------------------------


def test_homepage_then_legal_contact_about_team_same_site_only(site: RoutedSite, canary: RoutedSite) -> None:
    links = [
        ("/blog/2024/launch", "Our launch"),
        ("/de/impressum", "Impressum"),
        ("/kontakt", "Kontakt"),
        ("/ueber-uns", "Über uns"),
        ("/careers", "Jobs"),
        ("/team", "Team"),
        ("/history", "History"),
        ("http://other.example/about", "About our partner"),
        ("/brochure.pdf", "About (PDF)"),
    ]
    site.routes[("*", "/")] = lambda n: html("".join(f'<a href="{h}">{t}</a>' for h, t in links))
    for path in ("/de/impressum", "/kontakt", "/ueber-uns", "/team", "/history"):
        site.routes[("*", path)] = lambda n: html("page")
    done, _ = crawl({"de": "http://de.site.example/"}, names(site, canary))
    assert sorted(p.url.split("example", 1)[1] for p in done["de"].pages) == [
        "/",
        "/de/impressum",
        "/kontakt",
        "/team",
        "/ueber-uns",
    ]


def test_crawl_runs_twice_in_one_process(site: RoutedSite, canary: RoutedSite) -> None:
    site.routes[("*", "/")] = lambda n: html("<h1>again</h1>")
    first, _ = crawl({"a": "http://a.site.example/"}, names(site, canary))
    second, _ = crawl({"a": "http://a.site.example/"}, names(site, canary))
    assert first["a"].status == second["a"].status == Status.FILLED
    assert site.paths("a.site.example").count("/") == 2
