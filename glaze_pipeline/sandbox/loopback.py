"""The one way the sandbox runs an HTTP server: aiohttp on a loopback address, in a background thread.

The demo sites, the API simulators and the tests' sites are subclasses that add routes; this
module owns the plumbing. One event loop (uvloop when installed) with aiohttp's C parser spends about
half the CPU per request of a thread per connection, which was the ceiling of the throughput
benches. A server binds 127.0.0.x on a free port with a listen backlog for bursts,
logs every request with its arrival time on the server's own clock, counts accepted connections
(so a test can prove nothing even connected), and stays quiet when a client hangs up.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from aiohttp.web_protocol import RequestHandler

from glaze_pipeline.core import aio


@dataclass(slots=True)
class Hit:
    """One request as the server saw it."""

    at: float  # time.monotonic() on arrival: the server's clock, so waits are measured where they happen
    method: str
    host: str  # the Host header as sent, port included
    path: str  # without the query
    user_agent: str
    cookie: str | None
    entity: str = ""  # what a simulator was asked about (a domain, a query); filled in by its handler
    status: int = 0  # the status answered; 0 while the answer is still being made

    @property
    def site(self) -> str:
        """The host name without the port, lower case: what a site is routed by."""
        return self.host.split(":", 1)[0].lower()


HIT = web.RequestKey("hit", Hit)


class LoopbackServer:
    """An aiohttp application on `ip`, served from its own thread; `with` starts and stops it.

    Subclasses add their routes in `add_routes`. `log` is every request in arrival order: the loop
    appends, other threads read (copy it with `list()` while the server runs).
    """

    max_request_bytes = 1024**2  # aiohttp's default body limit; a vendor that takes more says so

    def __init__(self, ip: str = "127.0.0.1") -> None:
        self.ip = ip
        self.port = 0
        self.log: list[Hit] = []
        self.connections = 0  # accepted, whether or not a request followed
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """Add the server's routes; every unmatched request is answered 404."""

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        return self.ip, self.port

    @property
    def base_url(self) -> str:
        return f"http://{self.ip}:{self.port}"

    def start(self, port: int = 0) -> Self:
        loop = (aio.loop_factory() or asyncio.new_event_loop)()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name=f"{type(self).__name__}", daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._open(port), loop).result(10)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    async def _open(self, port: int) -> None:
        app = web.Application(middlewares=[self._logged()], client_max_size=self.max_request_bytes)
        self.add_routes(app.router)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        loop = asyncio.get_running_loop()
        # The default backlog (100) resets connections when a crawler opens hundreds at once.
        self._listener = await loop.create_server(self._accept, self.ip, port, backlog=1024)
        self.port = int(self._listener.sockets[0].getsockname()[1])

    async def _close(self) -> None:
        if self._listener is not None:
            self._listener.close()
        if self._runner is not None:
            await self._runner.cleanup()  # closes open connections too
        # Answers still being made (a simulated hang whose client gave up) are cancelled, not left pending.
        leftovers = asyncio.all_tasks() - {asyncio.current_task()}
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)

    def _accept(self) -> RequestHandler:
        """A connection was accepted: count it, before any request on it (a refused one never gets here)."""
        self.connections += 1
        assert self._runner is not None and self._runner.server is not None
        return self._runner.server()

    def _logged(self) -> Middleware:
        @web.middleware
        async def log(request: web.Request, handler: Handler) -> web.StreamResponse:
            arrived = time.monotonic()
            user_agent, cookie = request.headers.get("User-Agent", ""), request.headers.get("Cookie")
            hit = Hit(arrived, request.method, request.host, request.path, user_agent, cookie)
            self.log.append(hit)
            request[HIT] = hit
            try:
                response = await handler(request)
            except web.HTTPException as refused:
                hit.status = refused.status
                raise
            hit.status = response.status
            return response

        return log

    # --- what tests read ---------------------------------------------------------------------

    def count(self, status: int | None = None) -> int:
        """Requests seen, or those answered with `status`."""
        return sum(1 for h in list(self.log) if status is None or h.status == status)

    def max_in_window(self, window_s: float = 1.0) -> int:
        """The most requests that arrived within any sliding window of `window_s` seconds."""
        times = sorted(h.at for h in list(self.log))
        best, lo = 0, 0
        for hi, at in enumerate(times):
            while at - times[lo] >= window_s:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

    def reset(self) -> None:
        """Forget what was seen (a server shared by several tests)."""
        self.log.clear()
        self.connections = 0
