"""A loopback web server that plays many company websites at once, routed by the Host header.

Used by the demo, the tests and the benchmarks: point `GLAZE_RESOLVE` (curl
--resolve style) at it and the fetch guard connects here instead of the internet.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from aiohttp import web

from glaze_pipeline.sandbox.loopback import HIT, LoopbackServer

DEMO_SITES = Path(__file__).resolve().parent / "demo_sites"

PageSource = Callable[[str, str], bytes | None]  # (host, path) -> body, None = 404


def directory_pages(root: Path) -> PageSource:
    """Serve root/<host>/<path>, with index.html for "/"; never outside root."""
    root = root.resolve()

    def pages(host: str, path: str) -> bytes | None:
        relative = path.split("?", 1)[0].lstrip("/") or "index.html"
        candidate = (root / host / relative).resolve()
        if candidate.is_dir():
            candidate = candidate / "index.html"
        if root not in candidate.parents or not candidate.is_file():
            return None
        return candidate.read_bytes()

    return pages


def synthetic_pages(host: str, path: str) -> bytes | None:
    """A plausible homepage for any `<name>.bench.example` host, for load tests of any size."""
    if not host.endswith(".bench.example") or path.split("?", 1)[0] not in ("", "/"):
        return None
    name = host.split(".", 1)[0]
    title = name.replace("-", " ").title()
    return (
        f"""<!doctype html><html><head><meta charset="utf-8"><title>{title} | Home</title>
<meta name="description" content="{title} builds useful things for other companies.">
<meta property="og:site_name" content="{title}">
<script type="application/ld+json">{{"@context":"https://schema.org","@type":"Organization",
"name":"{title}","email":"hello@{name}.com","telephone":"+44 20 7946 0{len(name) % 1000:03d}",
"sameAs":["https://www.linkedin.com/company/{name}","https://twitter.com/{name.replace("-", "")[:15]}"],
"address":{{"@type":"PostalAddress","addressLocality":"London","addressCountry":"GB"}},
"foundingDate":"{1950 + len(name) % 70}"}}</script></head>
<body><h1>{title}</h1><p>Welcome.</p><a href="mailto:hello@{name}.com">Contact</a></body></html>"""
    ).encode()


class SiteServer(LoopbackServer):
    """Every site that `pages` knows, on one loopback address; `hits` counts requests per site."""

    def __init__(self, pages: PageSource, ip: str = "127.0.0.1") -> None:
        super().__init__(ip)
        self.pages = pages

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/{path:.*}", self._page)

    async def _page(self, request: web.Request) -> web.Response:
        body = self.pages(request[HIT].site, request.raw_path)
        if body is None:
            return web.Response(status=404, text="not found")
        return web.Response(body=body, content_type="text/html")

    @property
    def hits(self) -> Counter[str]:
        return Counter(h.site for h in list(self.log))

    def resolve_spec(self, hosts: Iterable[str]) -> str:
        """The GLAZE_RESOLVE value that sends these host names here."""
        return ",".join(f"{h}={self.ip}:{self.port}" for h in hosts)


def demo_hosts() -> list[str]:
    return sorted(p.name for p in DEMO_SITES.iterdir() if p.is_dir())
