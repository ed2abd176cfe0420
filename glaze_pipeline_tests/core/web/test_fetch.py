"""The fetch guard against real loopback servers: a "site" on 127.0.0.1 and a "canary" on 127.0.0.2 that
must never be reached unless a policy allows it."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

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


@dataclass(frozen=True)
class Seen:
    path: str
    host: str | None
    user_agent: str | None
    cookie: str | None


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str) -> None:
        super().__init__((host, 0), RouteHandler)
        self.lock = threading.Lock()
        self.connections = 0
        self.seen: list[Seen] = []
        self.release = threading.Event()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def verify_request(self, request: object, client_address: object) -> bool:
        # Counted per accepted connection, so even a request that never completes is seen.
        with self.lock:
            self.connections += 1
        return True

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients hang up early on purpose (size caps, timeouts); that is not a test failure.
        pass

    def reset(self) -> None:
        with self.lock:
            self.connections = 0
            self.seen.clear()

    def hits(self, path: str) -> int:
        with self.lock:
            return sum(1 for seen in self.seen if seen.path == path)


class RouteHandler(BaseHTTPRequestHandler):
    server: LoopbackServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def handle(self) -> None:
        # A TLS ClientHello starts with 0x16: close at once, like a site with nothing on 443.
        if self.request.recv(1, socket.MSG_PEEK) == b"\x16":
            return
        super().handle()

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        with self.server.lock:
            self.server.seen.append(
                Seen(parts.path, self.headers["Host"], self.headers["User-Agent"], self.headers["Cookie"])
            )
        route = parts.path
        if route == "/ok":
            self._reply(200, b"<html>hello</html>")
        elif route == "/redirect":
            self._reply(302, b"", location=parse_qs(parts.query)["to"][0])
        elif route == "/loop":
            self._reply(302, b"", location="/loop")
        elif route in ("/missing", "/gone", "/error"):
            self._reply({"/missing": 404, "/gone": 410, "/error": 500}[route], b"nope")
        elif route == "/big":
            self._reply(200, b"a" * BIG)
        elif route == "/big-stream":
            # No Content-Length: only the streaming cap can stop this one.
            self.send_response(200)
            self.end_headers()
            for _ in range(BIG // 10_000):
                self.wfile.write(b"a" * 10_000)
        elif route == "/bomb":
            self._reply(200, GZIP_BOMB, encoding="gzip")
        elif route == "/gzip":
            self._reply(200, zlib.compress(b"squeezed", wbits=zlib.MAX_WBITS | 16), encoding="gzip")
        elif route == "/deflate-raw":
            raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
            self._reply(200, raw.compress(b"squeezed") + raw.flush(), encoding="deflate")
        elif route == "/set-cookie":
            self._reply(200, b"ok", cookie="session=secret; Path=/")
        elif route == "/stall":
            self.server.release.wait()
            self._reply(200, b"late")
        else:
            self._reply(404, b"no route")

    def _reply(self, code: int, body: bytes, location: str = "", encoding: str = "", cookie: str = "") -> None:
        self.send_response(code)
        for name, value in (("Location", location), ("Content-Encoding", encoding), ("Set-Cookie", cookie)):
            if value:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _serve(host: str) -> Iterator[LoopbackServer]:
    server = LoopbackServer(host)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join()


# Servers live for the module (starting and stopping them costs more than the tests); each test
# gets them with counters reset.
@pytest.fixture(scope="module")
def site_server() -> Iterator[LoopbackServer]:
    yield from _serve("127.0.0.1")


@pytest.fixture(scope="module")
def canary_server() -> Iterator[LoopbackServer]:
    yield from _serve("127.0.0.2")


@pytest.fixture
def site(site_server: LoopbackServer) -> LoopbackServer:
    site_server.reset()
    return site_server


@pytest.fixture
def canary(canary_server: LoopbackServer) -> LoopbackServer:
    canary_server.reset()
    return canary_server


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
def test_refused_urls_never_reach_the_canary(template: str, canary: LoopbackServer) -> None:
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
def test_odd_ip_forms_mean_the_address_the_os_would_use(template: str, canary: LoopbackServer) -> None:
    """Control for the refusals above: once private networks are allowed, these reach 127.0.0.2."""
    result = fetch(template.format(port=canary.port), PRIVATE)
    assert result.ok, result
    assert canary.hits("/ok") == 1


def test_redirect_to_a_refused_address_is_blocked(site: LoopbackServer, canary: LoopbackServer) -> None:
    result = fetch(f"http://127.0.0.1:{site.port}/redirect?to=http://127.0.0.2:{canary.port}/ok", SITE_ONLY)
    assert result.failure == Status.BLOCKED
    assert result.url == f"http://127.0.0.2:{canary.port}/ok"
    assert site.hits("/redirect") == 1
    assert canary.connections == 0


def test_redirect_to_a_name_resolving_to_a_refused_address_is_blocked(
    site: LoopbackServer, canary: LoopbackServer
) -> None:
    resolver = no_dns({"acme.example": ("127.0.0.1", site.port), "evil.example": ("127.0.0.2", canary.port)})
    result = fetch("http://acme.example/redirect?to=http://evil.example/ok", SITE_ONLY, resolver)
    assert result.failure == Status.BLOCKED
    assert "127.0.0.2" in result.detail
    assert canary.connections == 0


def test_one_refused_answer_among_good_ones_blocks(site: LoopbackServer, canary: LoopbackServer) -> None:
    async def two_answers(host: str, port: int) -> list[Address]:
        return [("127.0.0.1", site.port), ("127.0.0.2", canary.port)]

    result = fetch("http://mixed.example/ok", SITE_ONLY, two_answers)
    assert result.failure == Status.BLOCKED
    assert site.connections == 0
    assert canary.connections == 0


# --- pinning, Host header, https fallback ------------------------------------------------------


def test_name_is_pinned_to_resolved_address_with_the_real_host_header(site: LoopbackServer) -> None:
    resolver = no_dns({"acme.example": ("127.0.0.1", site.port)})
    plain, with_port = fetch_all(["http://acme.example/ok", "http://user:pw@acme.example:8080/ok"], PRIVATE, resolver)
    assert plain.ok, plain
    assert plain.http_status == 200
    assert plain.body == b"<html>hello</html>"
    assert plain.url == "http://acme.example/ok"
    assert plain.headers["content-length"] == "18"
    assert with_port.ok, with_port
    assert with_port.url == "http://acme.example:8080/ok"  # credentials never end up in results
    assert [seen.host for seen in site.seen] == ["acme.example", "acme.example:8080"]
    assert site.seen[0].user_agent == DEFAULT.user_agent


def test_https_falls_back_to_http_when_tls_fails(site: LoopbackServer) -> None:
    resolver = no_dns({"acme.example": ("127.0.0.1", site.port)})
    result = fetch("https://acme.example/ok", PRIVATE, resolver)
    assert result.ok, result
    assert result.url.startswith("http://acme.example")
    assert site.hits("/ok") == 1


def test_cookies_are_neither_kept_nor_sent(site: LoopbackServer) -> None:
    base = f"http://127.0.0.1:{site.port}"
    results = fetch_all([f"{base}/set-cookie", f"{base}/ok"], SITE_ONLY)
    assert all(result.ok for result in results)
    assert results[0].headers["set-cookie"].startswith("session=")
    assert [seen.cookie for seen in site.seen] == [None, None]


# --- outcomes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_redirects", [5, 2])
def test_redirect_loop_stops_after_max_redirects(site: LoopbackServer, max_redirects: int) -> None:
    policy = FetchPolicy(allowed_networks=("127.0.0.1/32",), max_redirects=max_redirects)
    result = fetch(f"http://127.0.0.1:{site.port}/loop", policy)
    assert result.failure == Status.PROVIDER_ERROR
    assert result.detail == "too many redirects"
    assert site.hits("/loop") == max_redirects + 1


def test_relative_redirect_is_followed(site: LoopbackServer) -> None:
    result = fetch(f"http://127.0.0.1:{site.port}/redirect?to=/ok", SITE_ONLY)
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
def test_http_outcomes(site: LoopbackServer, path: str, failure: Status, http_status: int) -> None:
    result = fetch(f"http://127.0.0.1:{site.port}{path}", CAPPED)
    assert result.failure == failure, result
    assert result.http_status == http_status
    assert result.body == b""


@pytest.mark.parametrize("path", ["/gzip", "/deflate-raw"])
def test_compressed_bodies_are_decoded(site: LoopbackServer, path: str) -> None:
    result = fetch(f"http://127.0.0.1:{site.port}{path}", SITE_ONLY)
    assert result.ok, result
    assert result.body == b"squeezed"


def test_gzip_bomb_is_cut_without_inflating_it(site: LoopbackServer) -> None:
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


def test_stalled_server_times_out(site: LoopbackServer) -> None:
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
    with pytest.raises(ValueError, match=r"GLAZE_RESOLVE entry"):
        OverrideResolver.parse(spec)


def test_override_wildcard_covers_names_below_it_only() -> None:
    resolver = OverrideResolver.parse("*.bench.example=127.0.0.1:8000", fallback=None)
    assert asyncio.run(resolver("co1.bench.example", 443)) == [("127.0.0.1", 8000)]
    for outside in ("bench.example", "bench.example.evil.test", "co1.bench.example.evil.test"):
        with pytest.raises(socket.gaierror):
            asyncio.run(resolver(outside, 80))
