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
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, TypeVar

__all__ = ["call", "get_loop", "in_loop_thread", "refuse_blocking", "wait"]

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
            _loop, _thread = start_loop_thread("pytest-otto-loop")
        return _loop


def start_loop_thread(name: str) -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
    """A new event loop running forever in a daemon thread called ``name`` (running on return)."""
    ready = threading.Event()
    new_loop = asyncio.new_event_loop()

    def serve() -> None:
        asyncio.set_event_loop(new_loop)
        new_loop.call_soon(ready.set)
        new_loop.run_forever()

    thread = threading.Thread(target=serve, name=name, daemon=True)
    thread.start()
    ready.wait()
    return new_loop, thread


def in_loop_thread() -> bool:
    """True when the caller already runs on the otto loop."""
    return _thread is not None and threading.current_thread() is _thread


class _Call:
    """One coroutine handed to the otto loop, and how its outcome travels back.

    Lighter than ``run_coroutine_threadsafe`` + ``wrap_future`` (no
    ``concurrent.futures.Future`` and its locks in between): a call costs one
    wake-up of each thread, which matters for sub-millisecond commands. The
    outcome is handed to ``on_done`` by the task itself as the coroutine ends, not
    by a done-callback one turn of the otto loop later (``docs/performance.md``).
    """

    __slots__ = ("caller", "cancelled", "coro", "error", "on_done", "result", "started", "task")

    def __init__(
        self,
        coro: Coroutine[Any, Any, Any],
        on_done: Callable[[_Call], None],
        caller: FrameType | None = None,
    ) -> None:
        self.coro = coro
        self.on_done = on_done
        self.caller = caller
        self.task: asyncio.Task[Any] | None = None
        self.cancelled = False
        self.started = False
        self.result: Any = None
        #: The coroutine's exception; a CancelledError when it was cancelled.
        self.error: BaseException | None = None

    def start(self) -> None:  # on the otto loop
        if self.cancelled:
            self.coro.close()
            return
        task = self.task = asyncio.get_running_loop().create_task(self.serve())
        if self.caller is not None:
            _callers[task] = self.caller

    async def serve(self) -> None:  # the task, on the otto loop
        self.started = True
        try:
            self.result = await self.coro
        except (KeyboardInterrupt, SystemExit) as exc:
            self.error = exc
            self.finish()
            raise
        except BaseException as exc:  # handed to the caller, which raises it
            self.error = exc
        self.finish()

    def finish(self) -> None:  # on the otto loop
        if self.task is not None:
            _callers.pop(self.task, None)
        self.on_done(self)

    def cancel(self) -> None:  # on the otto loop
        self.cancelled = True
        if self.task is None:
            return
        self.task.cancel()
        if not self.started:  # the task's first step will throw before serve() runs
            self.coro.close()
            self.error = asyncio.CancelledError()
            self.finish()

    def outcome(self) -> Any:
        """The coroutine's result, or raise its exception (in the caller's thread)."""
        if self.error is not None:
            raise self.error
        return self.result


#: The frame of the thread that made each call in flight (it waits there), so that a
#: warning raised on the otto loop can name the caller's line (`calling_frame`).
_callers: dict[asyncio.Task[Any], FrameType] = {}


#: Modules whose frames are not a caller's code: ours, and the machinery between.
_NOT_CALLERS = frozenset({"contextlib", "threading", "selectors", "runpy"})


def first_caller_frame(frame: FrameType | None) -> FrameType | None:
    """The first frame from ``frame`` outwards that is the caller's code, not pytest-otto's
    nor asyncio's; None if there is none."""
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not (module.startswith(("pytest_otto", "asyncio", "concurrent")) or module in _NOT_CALLERS):
            return frame
        frame = frame.f_back
    return None


def calling_frame() -> FrameType | None:
    """The waiting caller's frame of the call the current otto task serves, if any."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        return None
    return _callers.get(task) if task is not None else None


def _copy_outcome(job: _Call, future: asyncio.Future[Any]) -> None:  # on the caller's loop
    if future.done():
        return
    if isinstance(job.error, asyncio.CancelledError):
        future.cancel()
    elif job.error is not None:
        future.set_exception(job.error)
    else:
        future.set_result(job.result)


async def call(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` on the otto loop from any loop; cancellation propagates."""
    if in_loop_thread():
        return await coro
    otto = get_loop()
    caller = asyncio.get_running_loop()
    future: asyncio.Future[T] = caller.create_future()

    def on_done(job: _Call) -> None:
        try:
            caller.call_soon_threadsafe(_copy_outcome, job, future)
        except RuntimeError:  # the caller's loop is gone; nobody waits for the outcome
            pass

    # found now: once suspended, a coroutine's frame no longer links to its caller's
    job = _Call(coro, on_done, first_caller_frame(sys._getframe(1)))
    otto.call_soon_threadsafe(job.start)
    try:
        return await future
    except asyncio.CancelledError:
        otto.call_soon_threadsafe(job.cancel)
        raise


_ON_OTTO_LOOP = "a blocking pytest-otto call was made on the otto loop itself; await the async method instead"

#: Per thread: why blocking twins are refused there now (`refuse_blocking`), if they are.
_refusal = threading.local()


@contextmanager
def refuse_blocking(reason: str) -> Iterator[None]:
    """Make the blocking twins raise ``RuntimeError(reason)`` in this thread while the block runs.

    For a caller that runs async code on its own loop in this thread (the pytest plugin,
    around an async test that pytest-asyncio runs): a blocking twin there would stall
    that loop, and on the otto loop it cannot work at all, so both refuse the same way.
    """
    before = getattr(_refusal, "reason", None)
    _refusal.reason = reason
    try:
        yield
    finally:
        _refusal.reason = before


def wait(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the otto loop and block until it is done (sync twins)."""
    refused = getattr(_refusal, "reason", None)
    if refused is not None or in_loop_thread():
        coro.close()
        raise RuntimeError(refused or _ON_OTTO_LOOP)
    otto = get_loop()
    finished = threading.Event()
    job = _Call(coro, lambda job: finished.set(), sys._getframe(1))
    otto.call_soon_threadsafe(job.start)
    try:
        finished.wait()
    except BaseException:
        # KeyboardInterrupt while blocked: stop the work instead of leaving it running.
        otto.call_soon_threadsafe(job.cancel)
        finished.wait(5)
        raise
    result: T = job.outcome()
    return result


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
