"""What every ``otto`` command shares: the lab, the selected hosts, the printer, exit codes."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .. import loop
from ..config import HostConfig, LabError
from ..errors import OttoError
from ..lab import Lab
from ..leases import LeaseError, LeaseLost
from ..selection import LabChoice, choose_lab, find_ini_file, ini_value, open_lab, parse_tags, select_hosts
from ._output import Masker, Printer

if TYPE_CHECKING:
    from ..hosts.base import Host
    from ..leases import LeaseSet

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "Context", "UsageError"]

T = TypeVar("T")

#: pytest's exit codes, with the same meanings.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INTERRUPTED = 2
EXIT_INTERNAL = 3
EXIT_USAGE = 4


class UsageError(Exception):
    """A mistake in the command line or the lab file: exit code 4, no traceback."""


def lab_choice(option: str | None, cwd: Path | None = None) -> LabChoice:
    """``--lab``, ``$OTTO_LAB``, ``otto_lab`` of the pytest ini file found from ``cwd``, or default."""
    here = (cwd or Path.cwd()).resolve()
    ini_file = find_ini_file(here)
    ini = None
    if ini_file is not None:
        value = ini_value(ini_file, "otto_lab")
        if value:
            ini = (value, ini_file.parent)
    return choose_lab(option, cwd=here, ini=ini)


@dataclass
class Context:
    """The parsed command line with the lab loaded and its hosts selected."""

    args: argparse.Namespace
    choice: LabChoice
    lab: Lab
    out: Printer
    #: The leases a command that drives devices holds (`leasing.holding`), while it holds them.
    leases: LeaseSet | None = None

    @classmethod
    def load(cls, args: argparse.Namespace, *, select: bool = True) -> Context:
        """Load the lab; `UsageError` for a bad lab file (or selection, checked by `selected`)."""
        choice = lab_choice(args.lab)
        try:
            lab = open_lab(choice)
        except LabError as exc:
            raise UsageError(str(exc)) from None
        context = cls(args, choice, lab, Printer(Masker(lab), json_mode=args.json))
        if select:
            context.selected()  # a pattern that selects nothing is a usage error up front
        return context

    def selected(self) -> list[Host]:
        """The hosts ``-p``/``--tags`` select (all by default); `UsageError` if none."""
        try:
            return select_hosts(self.lab, self.args.host_pattern, parse_tags(self.args.tags))
        except LabError as exc:
            raise UsageError(str(exc)) from None

    def host(self, host_id: str) -> Host:
        """The lab's host ``host_id``; `UsageError` listing the ids."""
        try:
            return self.lab.get(host_id)
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from None

    def usable(self, host: Host) -> None:
        """Raise the `pytest_otto.leases.LeaseError` naming the holder if ``host``'s device
        was not obtained (or its lease was lost); nothing is sent to a device another run holds."""
        error = self.lease_error(host)
        if error is not None:
            raise error

    def lease_error(self, host: Host) -> LeaseError | None:
        """Why ``host`` may not be used (its device not obtained, or its lease lost), or None."""
        return self.leases.error(host.id) if self.leases is not None else None

    def config(self, host: Host) -> HostConfig | None:
        """The lab file's entry for ``host``."""
        if self.lab.config is None:
            return None
        try:
            return self.lab.config.host(host.id)
        except KeyError:
            return None

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the otto loop (where hosts live); close every host after it."""
        try:
            return loop.wait(coro)
        finally:
            loop.wait(self.lab.close())


def endpoint(config: HostConfig | None) -> str:
    """Where a host is: ``user@address:port``, the device, or ``-`` for the local machine."""
    if config is None or config.transport == "local":
        return "-"
    device = getattr(config, "device", None)
    if device is not None:
        return str(device)
    user = getattr(config, "user", None) if config.transport == "ssh" else None
    where = f"{user + '@' if user else ''}{getattr(config, 'address', '?')}:{getattr(config, 'port', '?')}"
    hop = getattr(config, "hop", None)
    return f"{where} via {hop}" if hop else where


def seconds_arg(text: str) -> float:
    """An option's value as a positive number of seconds (argparse ``type=``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def seconds_or_zero_arg(text: str) -> float:
    """An option's value as a number of seconds, 0 allowed (argparse ``type=``)."""
    return 0.0 if text.strip() in ("0", "0.0") else seconds_arg(text)


def verdict(exc: BaseException) -> str:
    """Why a host was not used: ``misconfigured`` (a mistake in the lab, such as an unset
    password variable), ``leased`` (another run holds its device), ``lease lost`` (broken
    or taken while we used it), else ``unreachable``."""
    if isinstance(exc, LeaseLost):
        return "lease lost"
    if isinstance(exc, LeaseError):
        return "leased"
    return "misconfigured" if isinstance(exc, LabError) else "unreachable"


def describe(exc: BaseException) -> str:
    """An error's cause in one line, without the host id the caller shows anyway."""
    cause = getattr(exc, "cause", None)  # our errors that lead with the host id keep the rest here
    if isinstance(exc, OttoError) and isinstance(cause, str) and cause:
        return cause
    if isinstance(exc, LabError):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return f"timed out{': ' + str(exc) if str(exc) else ''}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def timed(call: Callable[[], Awaitable[T]]) -> tuple[T, float]:
    """``await call()`` and how long it took, in seconds."""
    start = time.monotonic()
    result = await call()
    return result, time.monotonic() - start


@dataclass
class HostResult:
    """What one host made of a command: a `pytest_otto.Status` name, or why it was not reached."""

    id: str
    status: str  # Success, Failed, Error, Skipped, or unreachable / misconfigured

    @property
    def ok(self) -> bool:
        """The host did what was asked."""
        return self.status == "Success"


async def each_host(
    out: Printer, what: str, hosts: list[Host], work: Callable[[Host], Awaitable[T]]
) -> list[T]:
    """``work(host)`` for every host at once, with progress on a terminal; results in host order."""
    tasks = {h.id: asyncio.ensure_future(work(h)) for h in hosts}
    await with_progress(out, what, tasks)
    return [task.result() for task in tasks.values()]


async def with_progress(
    out: Printer, what: str, tasks: dict[str, asyncio.Task[Any]], interval: float = 0.25
) -> None:
    """While ``tasks`` run, show on a terminal's stderr which hosts are still awaited."""
    if not sys.stderr.isatty() or out.json_mode:
        if tasks:
            await asyncio.wait(tasks.values())
        return
    pending = set(tasks.values())
    start = time.monotonic()
    shown = False
    try:
        while pending:
            _, pending = await asyncio.wait(pending, timeout=interval)
            if pending:
                waiting = [host_id for host_id, task in tasks.items() if not task.done()]
                names = ", ".join(waiting[:6]) + (f" +{len(waiting) - 6}" if len(waiting) > 6 else "")
                done = len(tasks) - len(waiting)
                took = time.monotonic() - start
                status = f"{what}: {done}/{len(tasks)} done, waiting for {names} ({took:.0f}s)"
                sys.stderr.write("\r\x1b[K" + out.mask(status))
                sys.stderr.flush()
                shown = True
    finally:
        if shown:  # leave the line empty for what follows
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
