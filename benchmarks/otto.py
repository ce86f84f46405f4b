"""The pytest-otto side of each figure, written the way a user would write it.

Pieces of pytest-otto that are not there yet (an import fails) make their
figures report "n/a" with the reason, instead of stopping the run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .raw import throughput_command

T = TypeVar("T")

__all__ = [
    "close_all",
    "connect_all",
    "fanout",
    "hop_loop",
    "hosts",
    "load",
    "local_host",
    "noop",
    "oneshot_loop",
    "on_otto_loop",
    "oneshot_throughput",
    "run_loop",
    "run_sync_loop",
    "run_throughput",
]


def load(lab_toml: Path) -> Any:
    """Load a lab file with pytest-otto's own loader."""
    from pytest_otto.lab import load_lab

    return load_lab(lab_toml)


def hosts(lab: Any) -> list[Any]:
    """The lab's hosts in lab-file order."""
    return list(lab.all_hosts())


def local_host() -> Any:
    """A fresh `LocalHost`."""
    from pytest_otto import LocalHost

    return LocalHost()


async def connect_all(selected: Sequence[Any]) -> None:
    """Connect every host concurrently (shell open); raise the first failure."""
    results = await asyncio.gather(*(host.connect() for host in selected), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def close_all(selected: Sequence[Any]) -> None:
    """Close every host (sessions and connections)."""
    await asyncio.gather(*(host.close() for host in selected), return_exceptions=True)


async def fanout(lab: Any, command: str = "echo hi") -> float:
    """Cold fan-out: seconds for ``lab.run_on_all_hosts(command)`` on a freshly loaded lab.

    Checks every host answered ``hi``; hosts are closed after the clock stops.
    """
    t0 = time.perf_counter()
    results = await lab.run_on_all_hosts(command)
    elapsed = time.perf_counter() - t0
    try:
        for host_id, result in results.items():
            if isinstance(result, BaseException):
                raise RuntimeError(f"{host_id}: {result!r}") from result
            assert result.only.output == "hi", (host_id, result)
    finally:
        await close_all(hosts(lab))
    return elapsed


async def on_otto_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` running on the otto loop, as the plugin runs an async host test."""
    from pytest_otto import loop

    return await loop.call(coro)


async def run_loop(host: Any, count: int, command: str = "true") -> float:
    """Seconds per ``await host.run(command)`` over ``count`` sequential calls."""
    t0 = time.perf_counter()
    for _ in range(count):
        result = await host.run(command)
    elapsed = time.perf_counter() - t0
    assert result.status.is_ok, result
    return elapsed / count


def run_sync_loop(host: Any, count: int, command: str = "true") -> float:
    """Seconds per ``host.run_sync(command)`` (the blocking twin)."""
    t0 = time.perf_counter()
    for _ in range(count):
        result = host.run_sync(command)
    elapsed = time.perf_counter() - t0
    assert result.status.is_ok, result
    return elapsed / count


async def oneshot_loop(host: Any, count: int, command: str = "true") -> float:
    """Seconds per ``await host.oneshot(command)`` over ``count`` sequential calls."""
    t0 = time.perf_counter()
    for _ in range(count):
        status = await host.oneshot(command)
    elapsed = time.perf_counter() - t0
    assert status.status.is_ok, status
    return elapsed / count


async def run_throughput(host: Any, nbytes: int) -> float:
    """MB/s of one ``run()`` of a command printing ``nbytes`` of text."""
    t0 = time.perf_counter()
    result = await host.run(throughput_command(nbytes), timeout=600)
    elapsed = time.perf_counter() - t0
    status = result.only
    assert status.status.is_ok and len(status.output) >= nbytes - 1, (status.status, len(status.output))
    return nbytes / elapsed / 1e6


async def oneshot_throughput(host: Any, nbytes: int) -> float:
    """MB/s of one ``oneshot()`` of a command printing ``nbytes`` of text."""
    t0 = time.perf_counter()
    status = await host.oneshot(throughput_command(nbytes), timeout=600)
    elapsed = time.perf_counter() - t0
    assert status.status.is_ok and len(status.output) >= nbytes - 1, (status.status, len(status.output))
    return nbytes / elapsed / 1e6


async def noop() -> None:
    """A coroutine that does nothing: what a hop to the otto loop carries when only the hop is timed."""
    return None


def hop_loop(count: int, work_s: float = 0.0) -> float:
    """Median seconds of one blocking hop to the otto loop and back (``loop.wait`` of a
    coroutine that does nothing), each after ``work_s`` of busy work in the calling
    thread: what a pytest node pays between pytest's own work and its test on the otto loop.
    """
    from pytest_otto import loop

    loop.wait(noop())
    times = []
    for _ in range(count):
        if work_s:
            end = time.perf_counter() + work_s
            while time.perf_counter() < end:
                pass
        t0 = time.perf_counter()
        loop.wait(noop())
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]
