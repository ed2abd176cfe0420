"""Request status changes pushed from Postgres (LISTEN): `?wait=` and the WebSocket wake when their request moves.

The job and the sensor announce every change on `EVENTS_CHANNEL` in the same transaction as the change.
Waiters still look again every second, so a notification lost while the listener reconnects costs a
second, never a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import psycopg

from glaze_pipeline.core.storage.requests import EVENTS_CHANNEL

log = logging.getLogger(__name__)
RECHECK_S = 1.0


class RequestEvents:
    def __init__(self, url: str) -> None:
        self.url = url
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="glaze-request-events")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {EVENTS_CHANNEL}")
                    async for note in conn.notifies():
                        for event in self._waiters.get(note.payload, ()):
                            event.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Postgres restarted: waiters fall back to their recheck meanwhile
                log.warning("request events listener lost its connection (%s); reconnecting", type(exc).__name__)
                await asyncio.sleep(RECHECK_S)

    @contextlib.contextmanager
    def watch(self, request_id: str) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._waiters.setdefault(request_id, set()).add(event)
        try:
            yield event
        finally:
            waiters = self._waiters.get(request_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[request_id]


async def changed(event: asyncio.Event, timeout: float) -> None:
    """Wait for a change of the watched request, at most `timeout` (and at most RECHECK_S at a time)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout=max(0.0, min(timeout, RECHECK_S)))
    event.clear()
