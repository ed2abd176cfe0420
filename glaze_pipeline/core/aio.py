"""Run the async core from synchronous callers (Dagster steps, the CLI, benchmarks) on uvloop when it is there.

A paid stage spends most of its CPU in the event loop itself (timers, sockets,
callbacks); uvloop roughly halves that, which is what lets one process keep up
with a provider's rate limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # not on every platform; the standard loop works, only slower
        return None
    return uvloop.new_event_loop


def run(coro: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(coro)
