"""The leases ``otto`` takes and reads: the same store and device names as a pytest run.

Commands that drive devices (``run``, ``put``, ``get``, ``console``, ``power``,
``reboot``) hold the leases of the devices they touch for their whole duration, as a
pytest run does, so a person at a terminal and a CI job never drive one board at
once. The leases are given back on every way out: the end, an error, Ctrl-C,
SIGTERM and SIGHUP. ``otto check``, ``otto lease`` and ``otto lab`` take none; they
read who holds what.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any

from ..leases import Holder, LeaseInfo, LeaseSet, LeaseStoreError, lease_set, thread
from ..leases.settings import LEASE_WAIT_HELP
from ._app import UsageError, seconds_or_zero_arg

if TYPE_CHECKING:
    from ..hosts.base import Host
    from ._app import Context

__all__ = [
    "Terminated",
    "add_lease_options",
    "holder_json",
    "holder_short",
    "holding",
    "read_holders",
]


def add_lease_options(parser: argparse.ArgumentParser) -> None:
    """``--lease-wait SECONDS`` on a command that drives devices."""
    parser.add_argument(
        "--lease-wait",
        type=seconds_or_zero_arg,
        default=None,
        metavar="SECONDS",
        help=f"{LEASE_WAIT_HELP}; a device still busy then fails its host, naming the holder "
        "(0: do not wait)",
    )


def holder_short(holder: Holder) -> str:
    """``alice@desk-7 (pid 8812, since 18:40:11 UTC)``: who, for a table cell."""
    if not holder.known:
        return "another run (who, it did not say)"
    return f"{holder.user}@{holder.machine} (pid {holder.pid}, since {_since(holder)})"


def holder_json(holder: Holder, now: float | None = None) -> dict[str, Any]:
    """A holder for ``--json``: who, where, which process, since when, how long, which CI job."""
    now = time.time() if now is None else now
    return {
        "user": holder.user if holder.known else None,
        "machine": holder.machine if holder.known else None,
        "pid": holder.pid if holder.known else None,
        "started": _iso(holder.started) if holder.known else None,
        "age_seconds": round(max(0.0, now - holder.started), 1) if holder.known else None,
        "job": holder.job,
    }


def _since(holder: Holder) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(holder.started))


def _iso(stamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


def read_holders(context: Context) -> dict[str, LeaseInfo]:
    """``{device: lease}`` for every lease held now in the lab's store (by anyone).

    `LeaseStoreError` (naming the store's URL) when the store cannot be read.
    """
    return {info.device: info for info in context.lab.leases_sync()}


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP while leases are held: leave as Ctrl-C does, giving them back."""


@contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP raise `Terminated` (where nobody else handles them), so every
    ``finally`` runs and a Redis lease is deleted at once rather than after its TTL."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        raise Terminated(f"by {signal.Signals(signum).name}")

    saved = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is signal.SIG_DFL:
            saved[sig] = signal.signal(sig, stop)
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


async def _start(leases: LeaseSet) -> asyncio.Task[LeaseSet]:
    return asyncio.ensure_future(leases.acquire())


async def _finish(task: asyncio.Task[LeaseSet]) -> None:
    await asyncio.shield(task)


async def _cancel(task: asyncio.Task[LeaseSet]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def _acquire(leases: LeaseSet) -> None:
    """Take the leases; interrupted (Ctrl-C while waiting), give back what was taken first.

    The taking runs as a task on the lease thread, so an interruption here can stop it
    and wait until it has given its leases back before the process goes on to exit.
    """
    task = thread.run(_start(leases))
    try:
        thread.run(_finish(task))
    except BaseException:
        thread.run(_cancel(task))
        leases.release_sync()
        raise


@contextmanager
def holding(context: Context, hosts: Sequence[Host]) -> Iterator[LeaseSet]:
    """Hold the leases of ``hosts``' devices for the block (hosts without one need none).

    Waits up to ``--lease-wait`` (else the lab's ``lease_wait``), printing on stderr
    whom it waits for. A device not obtained makes its hosts unusable
    (`Context.usable` raises the `pytest_otto.leases.LeaseError` naming the holder); the
    others go ahead. A lease store that cannot be used is a `UsageError` (exit 4, as
    in pytest), before any device is touched.
    """
    wait = getattr(context.args, "lease_wait", None)
    leases = lease_set(context.lab, hosts, wait=wait, partial=True, report=context.out.note)
    with _signals_interrupt():
        try:
            _acquire(leases)
        except LeaseStoreError as exc:
            raise UsageError(f"{exc}; no device was touched") from None
        context.leases = leases
        try:
            yield leases
        finally:
            context.leases = None
            leases.release_sync()
