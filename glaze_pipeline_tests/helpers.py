"""Small builders shared by tests: demo tables and a running loopback site."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from glaze_pipeline.sandbox.sites import demo_hosts


def write_table(path: Path, urls: list[str], extra: dict[str, list[str]] | None = None) -> Path:
    """A CSV with a `website` column (plus extra columns); values must not contain commas."""
    extra = extra or {}
    header = ["website", *extra]
    lines = [",".join(header)]
    for i, url in enumerate(urls):
        lines.append(",".join([url, *(extra[c][i] for c in extra)]))
    path.write_text("\n".join(lines) + "\n")
    return path


def demo_urls() -> list[str]:
    return [f"https://{h}" for h in demo_hosts()]


Reply = tuple[int, dict[str, str], bytes]
Route = Callable[[int], Reply]  # (how many times this host+path was asked before) -> reply


def html(body: str, head: str = "") -> Reply:
    return (
        200,
        {"Content-Type": "text/html; charset=utf-8"},
        f"<html><head>{head}</head><body>{body}</body></html>".encode(),
    )


@dataclass
class Hit:
    host: str
    path: str
    at: float  # the server's own clock when the request arrived
    user_agent: str = ""
    cookie: str | None = None


@dataclass
class RoutedSite:
    """Loopback HTTP server routed by Host and path; records every request with its arrival time."""

    ip: str
    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)
    connections: int = 0
    release: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                host = (self.headers.get("Host") or "").split(":")[0]
                path = self.path.split("?")[0]
                with lock:
                    seen = sum(1 for h in server.hits if (h.host, h.path) == (host, path))
                    server.hits.append(
                        Hit(
                            host, path, time.monotonic(), self.headers.get("User-Agent", ""), self.headers.get("Cookie")
                        )
                    )
                route = server.routes.get((host, path)) or server.routes.get(("*", path))
                code, headers, body = route(seen) if route else (404, {}, b"not here")
                self.send_response(code)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def verify_request(self, request: object, client_address: object) -> bool:
                with lock:
                    server.connections += 1
                return True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # clients hang up on purpose (caps, timeouts)

        self._httpd = Server((self.ip, 0), Handler)
        self.port = int(self._httpd.server_address[1])
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def reset(self) -> None:
        self.routes.clear()
        self.hits.clear()
        self.connections = 0

    def paths(self, host: str) -> list[str]:
        return [h.path for h in self.hits if h.host == host]


def closed_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago and has nobody listening now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_port_url() -> str:
    """A Redis URL nobody answers."""
    return f"redis://127.0.0.1:{closed_port()}/0"
