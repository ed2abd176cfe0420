"""The one guarded fetch path for user-supplied URLs: http(s) only, every hop resolved once, checked,
and pinned to the checked address, with size, time and redirect caps."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from http.cookiejar import CookieJar, DefaultCookiePolicy
from types import TracebackType

import brotli
import httpx

from glaze_pipeline.config import parse_resolve
from glaze_pipeline.core.model.status import DOES_NOT_RESOLVE, Status

Address = tuple[str, int]
Resolver = Callable[[str, int], Awaitable[list[Address]]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_ALLOWED_SCHEMES = frozenset({"http", "https"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
# Bodies are decompressed here with a hard output bound: zlib's max_length, brotli's output_buffer_limit.
_ACCEPT_ENCODING = "gzip, deflate, br"

# What allow_private opens up: loopback, RFC 1918 and IPv6 unique-local. Deliberately not
# `is_private`, which also covers link-local, documentation and other ranges that stay refused.
_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(cidr)
    for cidr in ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7")
)
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
# Host names made only of these characters may be IPv4 literals in inet_aton's loose forms
# (2130706433, 0x7f.1, 0177.0.0.1, 127.1); anything else is a name for the resolver.
_NUMERIC_HOST = re.compile(r"[0-9a-fx.]+", re.IGNORECASE)


@dataclass(frozen=True)
class FetchPolicy:
    """What the guard lets through; tests and the demo widen it, production keeps the defaults."""

    allow_private: bool = False
    allowed_networks: tuple[str, ...] = ()
    max_bytes: int = 3_000_000
    timeout_s: float = 15.0
    max_redirects: int = 5
    user_agent: str = "glaze-pipeline/0.1 (+https://github.com/glaze-pipeline/glaze-pipeline)"

    def __post_init__(self) -> None:
        # Fail at configuration time rather than on the first fetch.
        _parse_networks(self.allowed_networks)
        if self.max_bytes <= 0 or self.timeout_s <= 0 or self.max_redirects < 0:
            raise ValueError("FetchPolicy needs max_bytes > 0, timeout_s > 0 and max_redirects >= 0")


@lru_cache(maxsize=32)
def _parse_networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    try:
        return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs)
    except ValueError as exc:
        raise ValueError(f"allowed_networks must be CIDRs like '127.0.0.1/32': {exc}") from exc


async def system_resolver(host: str, port: int) -> list[Address]:
    """Resolve with the OS (getaddrinfo) in the loop's executor, so a slow DNS never blocks the loop."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addresses: list[Address] = []
    for _family, _kind, _proto, _canonical, sockaddr in infos:
        address = (str(sockaddr[0]), int(sockaddr[1]))
        if address not in addresses:
            addresses.append(address)
    return addresses


def _normalise_name(host: str) -> str:
    return host.strip().lower().rstrip(".")


class OverrideResolver:
    """Like curl --resolve: fixed answers for some host names (sandbox sites, tests); others go to `fallback`.

    An override answers with its own port whatever port the URL asked for, so one loopback server can
    stand in for a site on both http and https.
    """

    def __init__(self, overrides: Mapping[str, Address], fallback: Resolver | None = system_resolver) -> None:
        self.overrides: dict[str, Address] = {
            _normalise_name(host): (str(ipaddress.ip_address(ip)), int(port)) for host, (ip, port) in overrides.items()
        }
        self.fallback = fallback

    async def __call__(self, host: str, port: int) -> list[Address]:
        name = _normalise_name(host)
        fixed = self.overrides.get(name)
        if fixed is None:  # "*.bench.example" stands for every name below it (load tests of many sites)
            fixed = next(
                (a for pattern, a in self.overrides.items() if pattern.startswith("*.") and name.endswith(pattern[1:])),
                None,
            )
        if fixed is not None:
            return [fixed]
        if self.fallback is None:
            raise socket.gaierror(socket.EAI_NONAME, f"no override for {host!r} and no fallback resolver")
        return await self.fallback(host, port)

    @classmethod
    def parse(cls, spec: str, *, fallback: Resolver | None = system_resolver) -> OverrideResolver:
        """Read "a.example=127.0.0.1:8081,b.example=[::1]:8082" (the form config files and env carry)."""
        overrides: dict[str, Address] = parse_resolve(spec)  # the one reader of this form, in config
        return cls(overrides, fallback=fallback)

    def __str__(self) -> str:
        """The spec `parse` reads, so an override set can be passed on to another process."""
        return ",".join(
            f"{host}=[{ip}]:{port}" if ":" in ip else f"{host}={ip}:{port}"
            for host, (ip, port) in self.overrides.items()
        )


class OnceResolver:
    """Answers each name from its first resolution, so every request of one crawl reaches one checked address.

    Without it a DNS-rebinding name could answer a public address for robots.txt and an internal one
    for the next page; with it the second question is never asked.
    """

    def __init__(self, resolver: Resolver) -> None:
        self._resolver = resolver
        self._answers: dict[tuple[str, int], asyncio.Future[list[Address]]] = {}

    async def __call__(self, host: str, port: int) -> list[Address]:
        key = (_normalise_name(host), port)
        answer = self._answers.get(key)
        if answer is None:
            # Concurrent requests for one name share the single resolution in flight.
            answer = self._answers[key] = asyncio.ensure_future(self._resolver(host, port))
        return list(await asyncio.shield(answer))


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a v6 form really reaches: traffic to these ends up at the embedded v4 host."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_allowed_address(ip: str, policy: FetchPolicy) -> bool:
    """Whether the guard may connect to `ip`; anything it cannot parse is refused (fail closed)."""
    try:
        address: IPAddress = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        address = _embedded_ipv4(address) or address
    # Never reachable whatever the policy: cloud metadata lives on link-local, and 0.0.0.0 / ::
    # quietly mean "this host". IPv6 ::1 sits inside the reserved ::/8, hence the loopback exception.
    if address.is_unspecified or address.is_link_local or address.is_multicast:
        return False
    if address.is_reserved and not address.is_loopback:
        return False
    if any(address in network for network in _parse_networks(policy.allowed_networks)):
        return True
    if policy.allow_private and any(address in network for network in _PRIVATE_NETWORKS):
        return True
    return address.is_global


def _ip_literal(host: str) -> str | None:
    """The IP a host string denotes as the OS would read it, or None when it is a name to resolve."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    # inet_aton is what getaddrinfo applies to numeric hosts, so decimal, octal, hex and short
    # forms are judged as the address the OS would really connect to, never handed over as names.
    candidate = host.removesuffix(".")
    if _NUMERIC_HOST.fullmatch(candidate):
        try:
            return socket.inet_ntoa(socket.inet_aton(candidate))
        except OSError:
            return None
    return None


@dataclass(frozen=True)
class FetchResult:
    """One fetch's outcome; `failure` carries the row status when the fetch did not succeed."""

    url: str
    http_status: int | None
    headers: Mapping[str, str]
    body: bytes
    failure: Status | None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.failure is None


class _Stop(Exception):
    """A fetch ends here with this status; raised deep, turned into a FetchResult at the top."""

    def __init__(self, status: Status, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class _Redirect:
    source: httpx.URL
    target: httpx.URL
    http_status: int
    headers: Mapping[str, str]


class _BodyDecoder:
    """Decompresses with a hard output bound so a small gzip bomb never expands past the cap in memory.

    httpx's own decoders inflate each network chunk in full (a 50 KB chunk of gzip can be 50 MB), so
    the raw stream is decoded here instead.
    """

    def __init__(self, content_encoding: str, max_bytes: int) -> None:
        encoding = content_encoding.strip().lower()
        if encoding not in ("", "identity", "gzip", "x-gzip", "deflate", "br"):
            raise _Stop(Status.PROVIDER_ERROR, f"unsupported content-encoding {encoding!r}")
        self._encoding = encoding
        self._max_bytes = max_bytes
        self._inflater: zlib._Decompress | None = None
        self._brotli = brotli.Decompressor() if encoding == "br" else None
        if encoding in ("gzip", "x-gzip"):
            self._inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
        self._head = b""  # deflate: the first bytes, until we know whether a zlib header is present
        self.body = bytearray()

    def feed(self, data: bytes) -> None:
        if self._encoding in ("", "identity"):
            self._append(data)
            return
        if self._brotli is not None:
            self._feed_brotli(data)
            return
        if self._inflater is None:
            # "deflate" is meant to be zlib-wrapped, but many servers send raw deflate.
            self._head += data
            if len(self._head) < 2:
                return
            data, self._head = self._head, b""
            zlib_wrapped = (data[0] & 0x0F) == 8 and ((data[0] << 8) | data[1]) % 31 == 0
            self._inflater = zlib.decompressobj(zlib.MAX_WBITS if zlib_wrapped else -zlib.MAX_WBITS)
        try:
            while data and not self._inflater.eof:
                self._append(self._inflater.decompress(data, self._max_bytes - len(self.body) + 1))
                data = self._inflater.unconsumed_tail
        except zlib.error as exc:
            raise _Stop(Status.PROVIDER_ERROR, f"could not decode {self._encoding} body: {exc}") from exc

    def _feed_brotli(self, data: bytes) -> None:
        assert self._brotli is not None
        try:
            # The limit holds each call's output near the cap; a bomb is cut by _append long before it grows.
            self._append(self._brotli.process(data, output_buffer_limit=self._max_bytes - len(self.body) + 1))
            while not self._brotli.can_accept_more_data():
                self._append(self._brotli.process(b"", output_buffer_limit=self._max_bytes - len(self.body) + 1))
        except brotli.error as exc:
            raise _Stop(Status.PROVIDER_ERROR, f"could not decode br body: {exc}") from exc

    def finish(self) -> bytes:
        if self._head:
            head, self._head = self._head, b""
            self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            self.feed(head)
        if self._inflater is not None:
            try:
                self._append(self._inflater.flush())
            except zlib.error as exc:
                raise _Stop(Status.PROVIDER_ERROR, f"could not decode {self._encoding} body: {exc}") from exc
        return bytes(self.body)

    def _append(self, data: bytes) -> None:
        self.body += data
        if len(self.body) > self._max_bytes:
            raise _Stop(Status.TOO_LARGE, f"body exceeds {self._max_bytes} bytes")


def _failed(
    url: httpx.URL | str,
    status: Status,
    detail: str,
    http_status: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> FetchResult:
    return FetchResult(str(url), http_status, dict(headers or {}), b"", status, detail)


def _describe(exc: BaseException) -> str:
    # httpx messages name the failure, never the request headers; some are empty.
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _lower_headers(response: httpx.Response) -> dict[str, str]:
    return {name.lower(): value for name, value in response.headers.items()}


def _without_userinfo(url: httpx.URL) -> httpx.URL:
    # Credentials in a URL would otherwise end up in FetchResult.url, and from there in logs.
    return url.copy_with(username=None, password=None) if url.userinfo else url


class GuardedFetcher:
    """Fetches user-supplied URLs without letting them reach internal addresses; owns one httpx client."""

    def __init__(self, policy: FetchPolicy, resolver: Resolver | None = None, max_connections: int = 100) -> None:
        self.policy = policy
        self._resolver: Resolver = resolver or system_resolver
        self._max_connections = max_connections
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> GuardedFetcher:
        self._client = httpx.AsyncClient(
            headers={"User-Agent": self.policy.user_agent, "Accept-Encoding": _ACCEPT_ENCODING},
            # An empty allow-list means no cookie is ever stored or sent.
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            timeout=httpx.Timeout(self.policy.timeout_s),
            limits=httpx.Limits(
                max_connections=self._max_connections,
                max_keepalive_connections=min(20, self._max_connections),
            ),
            follow_redirects=False,
            trust_env=False,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _open_client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("GuardedFetcher must be used as `async with GuardedFetcher(policy) as f:`")
        return self._client

    async def fetch(self, url: str) -> FetchResult:
        """Fetch `url`, following redirects; every failure comes back as a FetchResult, never raised."""
        client = self._open_client()
        trail = [url]
        try:
            async with asyncio.timeout(self.policy.timeout_s):
                return await self._follow(client, url, trail)
        except TimeoutError:
            return _failed(trail[-1], Status.TIMEOUT, f"no complete answer within {self.policy.timeout_s}s")

    async def fetch_hop(self, url: str) -> FetchResult:
        """One guarded request whose redirect is returned (3xx, `location` header), not followed.

        For callers that follow redirects themselves, such as the crawler: each hop they take comes
        back through here, so each is checked and pinned like the first.
        """
        client = self._open_client()
        try:
            async with asyncio.timeout(self.policy.timeout_s):
                current = _without_userinfo(httpx.URL(url))
                outcome = await self._guarded_hop(client, current)
        except TimeoutError:
            return _failed(url, Status.TIMEOUT, f"no complete answer within {self.policy.timeout_s}s")
        except (httpx.InvalidURL, ValueError) as exc:
            return _failed(url, Status.BLOCKED, f"invalid URL: {exc}")
        if isinstance(outcome, _Redirect):
            return FetchResult(str(outcome.source), outcome.http_status, outcome.headers, b"", None)
        return outcome

    async def _follow(self, client: httpx.AsyncClient, url: str, trail: list[str]) -> FetchResult:
        try:
            current = _without_userinfo(httpx.URL(url))
        except (httpx.InvalidURL, ValueError) as exc:
            return _failed(url, Status.BLOCKED, f"invalid URL: {exc}")
        redirects = 0
        while True:
            trail.append(str(current))
            outcome = await self._guarded_hop(client, current)
            if isinstance(outcome, FetchResult):
                return outcome
            if redirects >= self.policy.max_redirects:
                return _failed(
                    outcome.source, Status.PROVIDER_ERROR, "too many redirects", outcome.http_status, outcome.headers
                )
            redirects += 1
            current = outcome.target

    async def _guarded_hop(self, client: httpx.AsyncClient, url: httpx.URL) -> FetchResult | _Redirect:
        """One hop with every failure turned into a status; https falls back to http once."""
        try:
            return await self._hop(client, url)
        except httpx.ConnectError as exc:
            if url.scheme == "https":
                # Many small company sites (and the loopback sandbox) only speak plain http.
                return await self._guarded_hop(client, url.copy_with(scheme="http"))
            return _failed(url, Status.PROVIDER_ERROR, f"could not connect: {_describe(exc)}")
        except _Stop as stop:
            return _failed(url, stop.status, stop.detail)
        except socket.gaierror:
            return _failed(url, Status.NOT_FOUND, f"host name {url.host!r} {DOES_NOT_RESOLVE}")
        except (httpx.TimeoutException, TimeoutError):
            return _failed(url, Status.TIMEOUT, "the server did not answer in time")
        except httpx.InvalidURL as exc:
            return _failed(url, Status.BLOCKED, f"invalid URL: {exc}")
        except (httpx.HTTPError, OSError, ValueError) as exc:
            return _failed(url, Status.PROVIDER_ERROR, _describe(exc))

    async def _hop(self, client: httpx.AsyncClient, url: httpx.URL) -> FetchResult | _Redirect:
        """One request, sent to the checked address; a redirect is returned, not followed."""
        request = await self._pinned_request(client, url)
        response = await client.send(request, stream=True)
        try:
            headers = _lower_headers(response)
            code = response.status_code
            if code in _REDIRECT_CODES and "location" in headers:
                try:
                    target = _without_userinfo(url.join(headers["location"]))
                except (httpx.InvalidURL, ValueError) as exc:
                    raise _Stop(Status.BLOCKED, f"invalid redirect location: {exc}") from exc
                return _Redirect(url, target, code, headers)
            if code in (404, 410):
                return _failed(url, Status.NOT_FOUND, f"HTTP {code}", code, headers)
            if not 200 <= code < 300:
                return _failed(url, Status.PROVIDER_ERROR, f"HTTP {code}", code, headers)
            try:
                body = await self._read_body(response)
            except _Stop as stop:
                return _failed(url, stop.status, stop.detail, code, headers)
            return FetchResult(str(url), code, headers, body, None)
        finally:
            await response.aclose()

    async def _pinned_request(self, client: httpx.AsyncClient, url: httpx.URL) -> httpx.Request:
        """Check scheme and every resolved address, then aim the request at the checked IP itself."""
        if url.scheme not in _ALLOWED_SCHEMES:
            raise _Stop(Status.BLOCKED, f"scheme {url.scheme!r} is not allowed (http and https only)")
        host = url.raw_host.decode("ascii")
        if not host:
            raise _Stop(Status.BLOCKED, "URL has no host")
        port = url.port or _DEFAULT_PORTS[url.scheme]
        literal = _ip_literal(host)
        addresses = [(literal, port)] if literal is not None else await self._resolver(host, port)
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, f"no addresses for {host!r}")
        # Fail closed: one bad answer among good ones could be the one a later connect would use.
        for ip, _port in addresses:
            if not is_allowed_address(ip, self.policy):
                raise _Stop(Status.BLOCKED, f"{host} resolves to {ip}, which is not an allowed address")
        ip, ip_port = addresses[0]
        headers = {"Host": url.netloc.decode("ascii")}
        extensions: dict[str, str] = {}
        if url.scheme == "https":
            # SNI and certificate checks use the real name although we connect to the IP.
            extensions["sni_hostname"] = host
            # The pool keys connections by IP, so a kept-alive TLS connection verified for one name
            # could be reused for another name on the same IP; closing after each response prevents it.
            headers["Connection"] = "close"
        return client.build_request("GET", url.copy_with(host=ip, port=ip_port), headers=headers, extensions=extensions)

    async def _read_body(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.policy.max_bytes:
            raise _Stop(Status.TOO_LARGE, f"content-length {declared} exceeds {self.policy.max_bytes} bytes")
        decoder = _BodyDecoder(response.headers.get("content-encoding", ""), self.policy.max_bytes)
        async for chunk in response.aiter_raw():
            decoder.feed(chunk)
        return decoder.finish()
