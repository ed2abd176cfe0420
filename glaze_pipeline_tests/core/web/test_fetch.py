"""The fetch guard against real loopback servers: a "site" on 127.0.0.1 and a "canary" on 127.0.0.2 that
must never be reached unless a policy allows it."""

from __future__ import annotations

import asyncio
import socket
import time
import tracemalloc
import zlib
from collections.abc import Iterator

import pytest

from glaze_pipeline.core.model.status import Status
from glaze_pipeline.core.web.fetch import (
    Address,
    FetchPolicy,
    FetchResult,
    GuardedFetcher,
    OverrideResolver,
    Resolver,
    is_allowed_address,
)
from glaze_pipeline_tests.helpers import Route, RoutedSite

SITE_ONLY = FetchPolicy(allowed_networks=("127.0.0.1/32",))
BIG = 1_000_000
SMALL_CAP = 100_000
CAPPED = FetchPolicy(allowed_networks=("127.0.0.1/32",), max_bytes=SMALL_CAP)


def _gzip_bomb() -> bytes:
    """50 MB of zeros as ~50 KB of gzip, built without holding the 50 MB."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    zeros = bytes(1 << 20)
    return b"".join([*(compressor.compress(zeros) for _ in range(50)), compressor.flush()])


GZIP_BOMB = _gzip_bomb()


def _raw_deflate(data: bytes) -> bytes:
    squeezer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return squeezer.compress(data) + squeezer.flush()


def redirect(to: str) -> Route:
    return lambda n: (302, {"Location": to}, b"")


def routes(server: RoutedSite) -> dict[tuple[str, str], Route]:
    """What both servers answer on any host name (the canary too, so a test can tell it was never reached)."""
    gzip = {"Content-Encoding": "gzip"}
    return {
        ("*", "/ok"): lambda n: (200, {}, b"<html>hello</html>"),
        ("*", "/loop"): redirect("/loop"),
        ("*", "/missing"): lambda n: (404, {}, b"nope"),
        ("*", "/gone"): lambda n: (410, {}, b"nope"),
        ("*", "/error"): lambda n: (500, {}, b"nope"),
        ("*", "/big"): lambda n: (200, {}, b"a" * BIG),
        # Streamed with no Content-Length: only the streaming cap can stop this one.
        ("*", "/big-stream"): lambda n: (200, {}, (b"a" * 10_000 for _ in range(BIG // 10_000))),
        ("*", "/bomb"): lambda n: (200, gzip, GZIP_BOMB),
        ("*", "/gzip"): lambda n: (200, gzip, zlib.compress(b"squeezed", wbits=zlib.MAX_WBITS | 16)),
        ("*", "/deflate-raw"): lambda n: (200, {"Content-Encoding": "deflate"}, _raw_deflate(b"squeezed")),
        ("*", "/set-cookie"): lambda n: (200, {"Set-Cookie": "session=secret; Path=/"}, b"ok"),
        ("*", "/stall"): lambda n: (server.release.wait(), (200, {}, b"late"))[1],
    }


def hits(server: RoutedSite, path: str) -> int:
    return sum(1 for h in list(server.log) if h.path == path)


# Servers live for the module (starting and stopping them costs more than the tests); each test
# gets them with the log and routes reset.
@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[RoutedSite, RoutedSite]]:
    with RoutedSite("127.0.0.1") as site, RoutedSite("127.0.0.2") as canary:
        yield site, canary


def _fresh(server: RoutedSite) -> RoutedSite:
    server.reset()
    server.routes.update(routes(server))
    return server


@pytest.fixture
def site(servers: tuple[RoutedSite, RoutedSite]) -> RoutedSite:
    return _fresh(servers[0])


@pytest.fixture
def canary(servers: tuple[RoutedSite, RoutedSite]) -> RoutedSite:
    return _fresh(servers[1])


def no_dns(overrides: dict[str, Address] | None = None) -> Resolver:
    """Tests never touch real DNS: unknown names fail as unresolvable."""
    return OverrideResolver(overrides or {}, fallback=None)


def fetch(url: str, policy: FetchPolicy, resolver: Resolver | None = None) -> FetchResult:
    return fetch_all([url], policy, resolver)[0]


def fetch_all(urls: list[str], policy: FetchPolicy, resolver: Resolver | None = None) -> list[FetchResult]:
    async def run() -> list[FetchResult]:
        async with GuardedFetcher(policy, resolver or no_dns()) as fetcher:
            return [await fetcher.fetch(url) for url in urls]

    return asyncio.run(run())


# --- is_allowed_address -------------------------------------------------------------------------

PRIVATE = FetchPolicy(allow_private=True)
DEFAULT = FetchPolicy()


@pytest.mark.parametrize(
    ("ip", "by_default", "with_private"),
    [
        ("8.8.8.8", True, True),
        ("2001:4860:4860::8888", True, True),
        ("10.0.0.1", False, True),
        ("172.16.5.4", False, True),
        ("192.168.1.1", False, True),
        ("127.0.0.1", False, True),
        ("::1", False, True),
        ("fc00::1", False, True),
        ("100.64.0.1", False, False),  # carrier-grade NAT is neither global nor RFC 1918
        ("169.254.169.254", False, False),
        ("0.0.0.0", False, False),
        ("::", False, False),
        ("fe80::1", False, False),
        ("224.0.0.1", False, False),
        ("ff02::1", False, False),
        ("255.255.255.255", False, False),
        ("240.0.0.1", False, False),
        ("::ffff:127.0.0.1", False, True),
        ("::ffff:169.254.169.254", False, False),
        ("2002:7f00:1::1", False, True),
        ("2002:a9fe:a9fe::1", False, False),
        ("64:ff9b::7f00:1", False, True),
        ("64:ff9b::a9fe:a9fe", False, False),
        ("64:ff9b::808:808", True, True),
        ("::ffff:8.8.8.8", True, True),
        ("not-an-ip", False, False),
        ("", False, False),
    ],
)
def test_is_allowed_address(ip: str, by_default: bool, with_private: bool) -> None:
    assert is_allowed_address(ip, DEFAULT) is by_default
    assert is_allowed_address(ip, PRIVATE) is with_private


def test_allowed_networks_allow_exactly_the_listed_range() -> None:
    assert is_allowed_address("127.0.0.1", SITE_ONLY)
    assert is_allowed_address("::ffff:127.0.0.1", SITE_ONLY)
    assert not is_allowed_address("127.0.0.2", SITE_ONLY)
    # An allow-list cannot reopen what is never allowed.
    assert not is_allowed_address("169.254.169.254", FetchPolicy(allowed_networks=("0.0.0.0/0",)))


def test_policy_rejects_bad_networks() -> None:
    with pytest.raises(ValueError, match="CIDR"):
        FetchPolicy(allowed_networks=("localhost",))


# --- refusals: the canary must never be reached ------------------------------------------------

REFUSED_URLS = [
    "http://127.0.0.2:{port}/ok",
    "http://0.0.0.0:{port}/ok",
    "http://2130706434:{port}/ok",  # decimal
    "http://0177.0.0.02:{port}/ok",  # octal
    "http://0x7f.0.0.2:{port}/ok",  # hex per octet
    "http://0x7f000002:{port}/ok",  # hex whole
    "http://127.2:{port}/ok",  # short form
    "http://127.0.0.2.:{port}/ok",  # trailing dot
    "http://[::ffff:127.0.0.2]:{port}/ok",
    "http://[::ffff:7f00:2]:{port}/ok",
    "http://169.254.169.254/latest/meta-data/",
    "ftp://127.0.0.2:{port}/ok",
    "gopher://127.0.0.2:{port}/ok",
    "file:///etc/passwd",
    "data:text/plain,hello",
    "http:///ok",
    "not a url at all",
]


@pytest.mark.parametrize("template", REFUSED_URLS)
def test_refused_urls_never_reach_the_canary(template: str, canary: RoutedSite) -> None:
    url = template.format(port=canary.port)
    result = fetch(url, SITE_ONLY)
    assert result.failure == Status.BLOCKED, result
    assert result.body == b""
    assert canary.connections == 0


@pytest.mark.parametrize(
    "template",
    [
        "http://127.0.0.2:{port}/ok",
        "http://2130706434:{port}/ok",
        "http://0x7f.0.0.2:{port}/ok",
        "http://0x7f000002:{port}/ok",
        "http://127.2:{port}/ok",
    ],
)
def test_odd_ip_forms_mean_the_address_the_os_would_use(template: str, canary: RoutedSite) -> None:
    """Control for the refusals above: once private networks are allowed, these reach 127.0.0.2."""
    result = fetch(template.format(port=canary.port), PRIVATE)
    assert result.ok, result
    assert hits(canary, "/ok") == 1


def test_redirect_to_a_refused_address_is_blocked(site: RoutedSite, canary: RoutedSite) -> None:
    site.routes[("*", "/redirect")] = redirect(f"http://127.0.0.2:{canary.port}/ok")
    result = fetch(f"http://127.0.0.1:{site.port}/redirect", SITE_ONLY)
    assert result.failure == Status.BLOCKED
    assert result.url == f"http://127.0.0.2:{canary.port}/ok"
    assert hits(site, "/redirect") == 1
    assert canary.connections == 0


def test_redirect_to_a_name_resolving_to_a_refused_address_is_blocked(site: RoutedSite, canary: RoutedSite) -> None:
    resolver = no_dns({"acme.example": ("127.0.0.1", site.port), "evil.example": ("127.0.0.2", canary.port)})
    site.routes[("*", "/redirect")] = redirect("http://evil.example/ok")
    result = fetch("http://acme.example/redirect", SITE_ONLY, resolver)
    assert result.failure == Status.BLOCKED
    assert "127.0.0.2" in result.detail
    assert canary.connections == 0


def test_one_refused_answer_among_good_ones_blocks(site: RoutedSite, canary: RoutedSite) -> None:
    async def two_answers(host: str, port: int) -> list[Address]:
        return [("127.0.0.1", site.port), ("127.0.0.2", canary.port)]

    result = fetch("http://mixed.example/ok", SITE_ONLY, two_answers)
    assert result.failure == Status.BLOCKED
    assert site.connections == 0
    assert canary.connections == 0


# --- pinning, Host header, https fallback ------------------------------------------------------


def test_name_is_pinned_to_resolved_address_with_the_real_host_header(site: RoutedSite) -> None:
    resolver = no_dns({"acme.example": ("127.0.0.1", site.port)})
    plain, with_port = fetch_all(["http://acme.example/ok", "http://user:pw@acme.example:8080/ok"], PRIVATE, resolver)
    assert plain.ok, plain
    assert plain.http_status == 200
    assert plain.body == b"<html>hello</html>"
    assert plain.url == "http://acme.example/ok"
    assert plain.headers["content-length"] == "18"
    assert with_port.ok, with_port
    assert with_port.url == "http://acme.example:8080/ok"  # credentials never end up in results
    assert [h.host for h in site.log] == ["acme.example", "acme.example:8080"]
    assert site.log[0].user_agent == DEFAULT.user_agent


def test_https_falls_back_to_http_when_tls_fails(site: RoutedSite) -> None:
    resolver = no_dns({"acme.example": ("127.0.0.1", site.port)})
    result = fetch("https://acme.example/ok", PRIVATE, resolver)
    assert result.ok, result
    assert result.url.startswith("http://acme.example")
    assert hits(site, "/ok") == 1


def test_cookies_are_neither_kept_nor_sent(site: RoutedSite) -> None:
    base = f"http://127.0.0.1:{site.port}"
    results = fetch_all([f"{base}/set-cookie", f"{base}/ok"], SITE_ONLY)
    assert all(result.ok for result in results)
    assert results[0].headers["set-cookie"].startswith("session=")
    assert [h.cookie for h in site.log] == [None, None]


# --- outcomes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_redirects", [5, 2])
def test_redirect_loop_stops_after_max_redirects(site: RoutedSite, max_redirects: int) -> None:
    policy = FetchPolicy(allowed_networks=("127.0.0.1/32",), max_redirects=max_redirects)
    result = fetch(f"http://127.0.0.1:{site.port}/loop", policy)
    assert result.failure == Status.PROVIDER_ERROR
    assert result.detail == "too many redirects"
    assert hits(site, "/loop") == max_redirects + 1


def test_relative_redirect_is_followed(site: RoutedSite) -> None:
    site.routes[("*", "/redirect")] = redirect("/ok")
    result = fetch(f"http://127.0.0.1:{site.port}/redirect", SITE_ONLY)
    assert result.ok, result
    assert result.url == f"http://127.0.0.1:{site.port}/ok"


@pytest.mark.parametrize(
    ("path", "failure", "http_status"),
    [
        ("/missing", Status.NOT_FOUND, 404),
        ("/gone", Status.NOT_FOUND, 410),
        ("/error", Status.PROVIDER_ERROR, 500),
        ("/big", Status.TOO_LARGE, 200),
        ("/big-stream", Status.TOO_LARGE, 200),
        ("/bomb", Status.TOO_LARGE, 200),
    ],
)
def test_http_outcomes(site: RoutedSite, path: str, failure: Status, http_status: int) -> None:
    result = fetch(f"http://127.0.0.1:{site.port}{path}", CAPPED)
    assert result.failure == failure, result
    assert result.http_status == http_status
    assert result.body == b""


@pytest.mark.parametrize("path", ["/gzip", "/deflate-raw"])
def test_compressed_bodies_are_decoded(site: RoutedSite, path: str) -> None:
    result = fetch(f"http://127.0.0.1:{site.port}{path}", SITE_ONLY)
    assert result.ok, result
    assert result.body == b"squeezed"


def test_gzip_bomb_is_cut_without_inflating_it(site: RoutedSite) -> None:
    url = f"http://127.0.0.1:{site.port}/bomb"
    tracemalloc.start()
    try:
        result = fetch(url, SITE_ONLY)  # default 3 MB cap
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.failure == Status.TOO_LARGE
    assert peak < 20_000_000


def test_unresolvable_name_is_not_found() -> None:
    async def nothing(host: str, port: int) -> list[Address]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    result = fetch("http://nonexistent.invalid/", DEFAULT, nothing)
    assert result.failure == Status.NOT_FOUND
    assert result.http_status is None


def test_stalled_server_times_out(site: RoutedSite) -> None:
    policy = FetchPolicy(allowed_networks=("127.0.0.1/32",), timeout_s=0.5)
    started = time.monotonic()
    result = fetch(f"http://127.0.0.1:{site.port}/stall", policy)
    assert result.failure == Status.TIMEOUT
    assert time.monotonic() - started < 5


def test_connection_refused_is_a_provider_error() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    result = fetch(f"http://127.0.0.1:{port}/", SITE_ONLY)
    assert result.failure == Status.PROVIDER_ERROR


# --- OverrideResolver ---------------------------------------------------------------------------


def test_override_resolver_parse_round_trip() -> None:
    resolver = OverrideResolver.parse(" a.example=127.0.0.1:8081, B.Example=[::1]:8082 ,", fallback=None)
    assert resolver.overrides == {"a.example": ("127.0.0.1", 8081), "b.example": ("::1", 8082)}
    assert str(resolver) == "a.example=127.0.0.1:8081,b.example=[::1]:8082"
    assert OverrideResolver.parse(str(resolver)).overrides == resolver.overrides
    assert OverrideResolver.parse("").overrides == {}
    assert asyncio.run(resolver("A.EXAMPLE.", 443)) == [("127.0.0.1", 8081)]
    with pytest.raises(socket.gaierror):
        asyncio.run(resolver("c.example", 80))


@pytest.mark.parametrize("spec", ["a.example", "a.example=127.0.0.1", "a.example=nohost:80", "=1.2.3.4:80"])
def test_override_resolver_parse_rejects_bad_specs(spec: str) -> None:
    with pytest.raises(ValueError, match=r"resolver override"):
        OverrideResolver.parse(spec)


def test_override_wildcard_covers_names_below_it_only() -> None:
    resolver = OverrideResolver.parse("*.bench.example=127.0.0.1:8000", fallback=None)
    assert asyncio.run(resolver("co1.bench.example", 443)) == [("127.0.0.1", 8000)]
    for outside in ("bench.example", "bench.example.evil.test", "co1.bench.example.evil.test"):
        with pytest.raises(socket.gaierror):
            asyncio.run(resolver(outside, 80))
