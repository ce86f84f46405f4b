"""The one event loop that owns every connection.

Why a loop of our own, in a background thread: a shell session is a live stream
bound to the loop that opened it. Callers come from everywhere: the seed document
calls ``asyncio.run()`` again and again on the same host, pytest-asyncio gives each
test its own loop, and sync tests have none. If sessions lived on the caller's loop,
each new loop would orphan them (and the shell state B7 promises). So pytest-otto
runs one daemon thread with one loop; every public coroutine is marshalled onto it
(`call`), and every blocking twin waits for it (`wait`). Cancelling the caller's
await cancels the work on the otto loop too.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["call", "get_loop", "in_loop_thread", "wait"]

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_shutdown_hooks: list[Callable[[], Awaitable[None]]] = []


def get_loop() -> asyncio.AbstractEventLoop:
    """Return the otto loop, starting its thread on first use."""
    global _loop, _thread
    loop = _loop
    if loop is not None and _thread is not None and _thread.is_alive():
        return loop
    with _lock:
        if _loop is None or _thread is None or not _thread.is_alive():
            ready = threading.Event()
            new_loop = asyncio.new_event_loop()

            def serve() -> None:
                asyncio.set_event_loop(new_loop)
                new_loop.call_soon(ready.set)
                new_loop.run_forever()

            thread = threading.Thread(target=serve, name="pytest-otto-loop", daemon=True)
            thread.start()
            ready.wait()
            _loop, _thread = new_loop, thread
        return _loop


def in_loop_thread() -> bool:
    """True when the caller already runs on the otto loop."""
    return _thread is not None and threading.current_thread() is _thread


async def call(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` on the otto loop from any loop; cancellation propagates."""
    if in_loop_thread():
        return await coro
    future = asyncio.run_coroutine_threadsafe(coro, get_loop())
    return await asyncio.wrap_future(future)


def wait(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the otto loop and block until it is done (sync twins)."""
    if in_loop_thread():
        coro.close()
        raise RuntimeError(
            "a blocking pytest-otto call was made on the otto loop itself; await the async method instead"
        )
    future = asyncio.run_coroutine_threadsafe(coro, get_loop())
    try:
        return future.result()
    except BaseException:
        # KeyboardInterrupt while blocked: stop the work instead of leaving it running.
        if not future.done():
            future.cancel()
            try:
                future.result(timeout=5)
            except (concurrent.futures.CancelledError, concurrent.futures.TimeoutError, Exception):
                pass
        raise


def on_shutdown(hook: Callable[[], Awaitable[None]]) -> None:
    """Register a coroutine function run on the otto loop at interpreter exit."""
    _shutdown_hooks.append(hook)


def _shutdown() -> None:
    loop = _loop
    if loop is None or _thread is None or not _thread.is_alive():
        return

    async def run_hooks() -> None:
        await asyncio.gather(*(hook() for hook in _shutdown_hooks), return_exceptions=True)

    try:
        asyncio.run_coroutine_threadsafe(run_hooks(), loop).result(timeout=10)
    except Exception:
        pass
    loop.call_soon_threadsafe(loop.stop)


atexit.register(_shutdown)
