"""Small builders shared by tests: demo tables and a running loopback site."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiohttp import web

from glaze_pipeline.sandbox.loopback import HIT, LoopbackServer
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


Reply = tuple[int, dict[str, str], bytes | Iterable[bytes]]  # status, headers, body (an iterable is streamed)
Route = Callable[[int], Reply]  # (how many times this host+path was asked before) -> reply


def html(body: str, head: str = "") -> Reply:
    return (
        200,
        {"Content-Type": "text/html; charset=utf-8"},
        f"<html><head>{head}</head><body>{body}</body></html>".encode(),
    )


class RoutedSite(LoopbackServer):
    """A loopback site routed by host name and path ("*" = any host), for tests.

    Routes run in threads, so one may block: `release` lets blocked routes go (it is set at stop).
    A body given as an iterable of chunks is streamed with no Content-Length.
    """

    def __init__(self, ip: str = "127.0.0.1") -> None:
        super().__init__(ip)
        self.routes: dict[tuple[str, str], Route] = {}
        self.release = threading.Event()
        self._workers = ThreadPoolExecutor(32, thread_name_prefix="routed-site")

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_route("*", "/{path:.*}", self._route)

    async def _route(self, request: web.Request) -> web.StreamResponse:
        site, path = request[HIT].site, request.path
        seen = sum(1 for h in list(self.log) if (h.site, h.path) == (site, path)) - 1  # this one is logged already
        route = self.routes.get((site, path)) or self.routes.get(("*", path))
        if route is None:
            return web.Response(status=404, body=b"not here")
        status, headers, body = await asyncio.get_running_loop().run_in_executor(self._workers, route, seen)
        if isinstance(body, bytes):
            return web.Response(status=status, headers=headers, body=body)
        response = web.StreamResponse(status=status, headers=headers)
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):  # the client stopped reading: a size cap doing its job
            for chunk in body:
                await response.write(chunk)
        return response

    def stop(self) -> None:
        self.release.set()
        super().stop()
        self._workers.shutdown(wait=False)

    def reset(self) -> None:
        super().reset()
        self.routes.clear()

    def paths(self, host: str) -> list[str]:
        return [h.path for h in list(self.log) if h.site == host]


def closed_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago and has nobody listening now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_port_url() -> str:
    """A Redis URL nobody answers."""
    return f"redis://127.0.0.1:{closed_port()}/0"
