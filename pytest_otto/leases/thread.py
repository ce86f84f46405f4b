"""The lease thread: one event loop of its own that takes, renews and releases leases.

Why not the otto loop: renewing must not wait for what the tests do. A test that
blocks the otto loop (a long synchronous call in an ``async def`` test) would
otherwise let its leases expire under it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from ..loop import start_loop_thread

__all__ = ["lease_loop", "run", "submit"]

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def lease_loop() -> asyncio.AbstractEventLoop:
    """The lease thread's loop, started on first use (a daemon thread)."""
    global _loop
    with _lock:
        if _loop is None:
            _loop, _ = start_loop_thread("pytest-otto-leases")
        return _loop


def submit(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Start ``coro`` on the lease loop."""
    return asyncio.run_coroutine_threadsafe(coro, lease_loop())


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the lease loop and wait for it (from any thread but that one)."""
    future = submit(coro)
    try:
        return future.result()
    except BaseException:
        future.cancel()  # Ctrl-C while waiting: stop the work there too
        raise


async def call(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` run on the lease loop, from another event loop."""
    if asyncio.get_running_loop() is lease_loop():
        return await coro
    return await asyncio.wrap_future(submit(coro))
