"""A loopback web server that plays many company websites at once, routed by the Host header.

Used by the demo, the tests and the benchmarks: point `GLAZE_RESOLVE` (curl
--resolve style) at it and the fetch guard connects here instead of the internet.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

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


class _BackloggedServer(ThreadingHTTPServer):
    """A listen backlog for bursts of many sites at once (the default 5 resets connections under load)."""

    request_queue_size = 256

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that hangs up (a crawler closing idle keep-alive connections) is not a server error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class SiteServer:
    """Threaded HTTP server on 127.0.0.1; `hits` counts requests per host, for assertions."""

    def __init__(self, pages: PageSource, host: str = "127.0.0.1") -> None:
        self.pages = pages
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                site = (self.headers.get("Host") or "").split(":", 1)[0].lower()
                with server._lock:
                    server.hits[site] += 1
                body = server.pages(site, self.path)
                status = 200 if body is not None else 404
                payload = body if body is not None else b"not found"
                self.send_response(status)
                self.send_header("Content-Type", "text/html" if body is not None else "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                return  # quiet: tests and the demo print their own summaries

        self._httpd = _BackloggedServer((host, 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="glaze-sites", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    def resolve_spec(self, hosts: Iterable[str]) -> str:
        """The GLAZE_RESOLVE value that sends these host names here."""
        ip, port = self.address
        return ",".join(f"{h}={ip}:{port}" for h in hosts)

    def start(self) -> SiteServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> SiteServer:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()


def demo_hosts() -> list[str]:
    return sorted(p.name for p in DEMO_SITES.iterdir() if p.is_dir())
