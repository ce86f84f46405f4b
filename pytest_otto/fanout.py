"""Calling one function for many hosts at once: each host's outcome is its own.

The Lab's helpers (``do_for_all_hosts``, ``run_on_all_hosts``, ``connect_all``,
``close``) and their blocking twins all go through `fan_out`: results come back in
the hosts' order, one host's exception is its result and never cancels the others,
the caller's cancellation (and Ctrl-C) stops every host's call and propagates.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

__all__ = ["fan_out", "host_method_name"]


def _host_classes() -> Iterator[type]:
    from .hosts.base import Host

    seen: set[type] = set()
    todo: list[type] = [Host]
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        yield cls
        todo.extend(cls.__subclasses__())


def host_method_name(fn: object) -> str | None:
    """The method name when ``fn`` is an unbound method of a host class, else None.

    ``RemoteHost.put`` is the plain function stored in some `Host` subclass's
    ``__dict__``; it is then dispatched by name, so every host runs its own
    ``put`` (a `LocalHost` too). Static and class methods are not dispatched.
    """
    if not inspect.isfunction(fn) or "." not in fn.__qualname__:
        return None
    name = fn.__name__
    for cls in _host_classes():
        if cls.__dict__.get(name) is fn:
            return name
    return None


def _bind(fn: Callable[..., Any], host: Any) -> Callable[..., Any]:
    name = host_method_name(fn)
    if name is None:
        return lambda *args, **kwargs: fn(host, *args, **kwargs)
    method = getattr(host, name, None)
    if method is None:
        raise AttributeError(f"{host.id}: {type(host).__name__} has no method {name!r}")
    return method  # type: ignore[no-any-return]


async def _call_one(
    fn: Callable[..., Any], host: Any, args: tuple[Any, ...], kwargs: dict[str, Any], in_thread: bool
) -> Any:
    bound = _bind(fn, host)
    if in_thread and not inspect.iscoroutinefunction(bound):
        result = await _in_own_thread(bound, args, kwargs)
    else:
        result = bound(*args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


async def _in_own_thread(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``fn(*args, **kwargs)`` in a thread of its own, awaited: a plain function given to a
    blocking twin may block and call blocking twins itself, which the otto loop must not.
    A thread per call (not a small pool) keeps every host's call running at once."""
    running = asyncio.get_running_loop()
    done: asyncio.Future[Any] = running.create_future()

    def work() -> None:
        try:
            value = fn(*args, **kwargs)
        except BaseException as exc:
            running.call_soon_threadsafe(_settle, done, None, exc)
        else:
            running.call_soon_threadsafe(_settle, done, value, None)

    threading.Thread(target=work, name="pytest-otto-fan-out", daemon=True).start()
    return await done


def _settle(done: asyncio.Future[Any], value: Any, exc: BaseException | None) -> None:
    if done.done():  # the fan-out was cancelled meanwhile
        return
    if exc is not None:
        done.set_exception(exc)
    else:
        done.set_result(value)


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _guarded(
    fn: Callable[..., Any], host: Any, args: tuple[Any, ...], kwargs: dict[str, Any], in_thread: bool = False
) -> Any:
    """One host's call; its ``Exception`` becomes its result.

    ``KeyboardInterrupt`` and ``SystemExit`` pass through; so does a
    ``CancelledError`` when this task was cancelled (the caller's cancellation).
    A ``CancelledError`` raised by the host's own work while nobody cancelled us
    is that host's outcome and is returned like an exception.
    """
    try:
        return await _call_one(fn, host, args, kwargs, in_thread)
    except Exception as exc:
        return exc
    except asyncio.CancelledError as exc:
        if _being_cancelled():
            raise
        return exc


async def fan_out(
    hosts: Sequence[Any],
    fn: Callable[..., Any],
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    *,
    concurrent: bool = True,
    in_thread: bool = False,
) -> dict[str, Any]:
    """Call ``fn`` for each host; ``{host.id: result or exception}`` in the given order.

    ``in_thread``: a plain (not async) ``fn`` runs in a thread of its own per host.
    """
    kwargs = kwargs or {}
    if not concurrent:
        return {host.id: await _guarded(fn, host, args, kwargs, in_thread) for host in hosts}
    tasks = [asyncio.ensure_future(_guarded(fn, host, args, kwargs, in_thread)) for host in hosts]
    try:
        results = await asyncio.gather(*tasks)
    except BaseException:
        # Our caller was cancelled (or Ctrl-C): stop the others and let them finish
        # their clean-up before the exception goes on.
        pending = [t for t in tasks if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        raise
    return {host.id: result for host, result in zip(hosts, results, strict=True)}
