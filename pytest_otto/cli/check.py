"""``otto check``: is every selected host reachable, and what is it?"""

from __future__ import annotations

import argparse
import asyncio
import os
import stat
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..config import HostConfig
from ..leases import LeaseInfo, LeaseStoreError, host_devices
from ._app import EXIT_FAILED, EXIT_OK, Context, describe, each_host, endpoint, timed, verdict
from ._output import Printer
from .leasing import holder_json, holder_short, read_holders

if TYPE_CHECKING:
    from ..hosts.base import Host

__all__ = ["add_parser"]

#: The command whose first line `otto check` shows.
PROBE = "uname -srm"

_STATE_COLOURS = {"ok": "green", "unreachable": "red", "misconfigured": "yellow", "failed": "yellow"}


@dataclass
class HostCheck:
    """One row of the table: what connecting to a host and asking it ``uname -srm`` gave."""

    id: str
    transport: str
    endpoint: str
    state: str
    connect_seconds: float | None
    uname: str
    error: str = ""
    #: The device's lease when another run holds it (then otto does not log in), else None.
    lease: dict[str, Any] | None = None
    #: For a leased host: whether its endpoint answers (None: not probed, behind a hop).
    reachable: bool | None = None

    @property
    def ok(self) -> bool:
        """The host answered; or another run holds it and its endpoint answers (or cannot be probed)."""
        return self.state == "ok" or (self.lease is not None and self.reachable is not False)

    @property
    def colour(self) -> str:
        """The state's colour on a terminal."""
        return "yellow" if self.lease is not None and self.ok else _STATE_COLOURS.get(self.state, "red")


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``otto check``."""
    parser = commands.add_parser(
        "check",
        parents=[common],
        help="connect every selected host at once; a table of state, connect time, uname",
        description=(
            "Connect every selected host at once and print one row each: state (ok, unreachable, "
            f"misconfigured, leased by ...), connect time and the first line of `{PROBE}`. A host "
            "whose device another run holds is not logged in to: only its endpoint is probed. "
            "Exit 1 if any host is not ok (a leased host is ok when its endpoint answers)."
        ),
    )
    parser.set_defaults(handler=run_check)


async def _endpoint_answers(config: HostConfig | None, timeout: float) -> tuple[bool | None, str]:
    """Whether a leased host's endpoint is there, without logging in: a TCP connection opened
    and closed at once, or the serial device present. None when it cannot be probed (a hop)."""
    if config is None or config.transport == "local":
        return True, "this machine"
    hop = getattr(config, "hop", None)
    if hop:
        return None, f"behind hop {hop}: not probed"
    device = getattr(config, "device", None)
    if device is not None:
        try:
            is_tty = stat.S_ISCHR(os.stat(device).st_mode)
        except OSError as exc:
            return False, f"{device}: {exc.strerror}"
        return (True, "device present") if is_tty else (False, f"{device}: not a character device")
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(config.address, config.port),  # type: ignore[attr-defined]
            timeout,
        )
    except ConnectionRefusedError:
        return False, "connection refused"
    except TimeoutError:
        return False, f"no answer within {timeout:g}s"
    except OSError as exc:
        return False, exc.strerror or describe(exc)
    writer.close()
    return True, "endpoint answers"


async def _check_leased(context: Context, host: Host, row: HostCheck, lease: LeaseInfo) -> HostCheck:
    """A device another run holds: who holds it, and whether its endpoint answers."""
    row.state = f"leased by {holder_short(lease.holder)}"
    row.lease = {"device": lease.device, "holder": holder_json(lease.holder)}
    row.reachable, why = await _endpoint_answers(context.config(host), max(host.connect_timeout, 5.0))
    row.error = f"not logged in (leased); {why}"
    return row


async def _check_host(context: Context, host: Host, lease: LeaseInfo | None = None) -> HostCheck:
    config = context.config(host)
    row = HostCheck(
        host.id, config.transport if config else host.transport_name, endpoint(config), "", None, ""
    )
    if lease is not None:
        return await _check_leased(context, host, row, lease)
    try:
        _, seconds = await timed(host.connect)
    except Exception as exc:
        row.state, row.error = verdict(exc), describe(exc)
        return row
    row.connect_seconds = round(seconds, 3)
    try:
        result = await host.run(PROBE, timeout=max(host.connect_timeout, 10.0))
    except Exception as exc:
        row.state, row.error = "failed", describe(exc)
        return row
    status = result.only
    lines = status.output.strip().splitlines()
    row.uname = lines[0] if lines else ""
    if status.ok:
        row.state = "ok"
    else:  # a shell without uname, or a console that said something else: show what it said
        row.state, row.error = "failed", f"{PROBE} gave {status.status.name}/{status.retcode}"
    return row


def _leases_of(context: Context, hosts: list[Host]) -> tuple[dict[str, LeaseInfo], str]:
    """``{host id: lease}`` for the hosts whose device another run holds; an error reading them."""
    try:
        holders = read_holders(context)
    except LeaseStoreError as exc:
        return {}, str(exc)
    devices = host_devices(context.lab, hosts)
    return {h: holders[d] for h, d in devices.items() if d is not None and d in holders}, ""


def run_check(context: Context) -> int:
    """Check the selected hosts; print the table (or JSON); exit 1 if one is not ok.

    Takes no lease: a host whose device another run holds is shown as leased, by whom,
    and only its endpoint is probed (nothing is typed into that run's console).
    """
    hosts = context.selected()
    leased, lease_error = _leases_of(context, hosts)
    rows = context.run(
        each_host(context.out, "checking", hosts, lambda h: _check_host(context, h, leased.get(h.id)))
    )
    out = context.out
    if lease_error:
        out.error(f"cannot read the leases ({lease_error}); hosts were checked as if free")
    ok = all(r.ok for r in rows) and not lease_error
    document: dict[str, Any] = {"lab": context.lab.name, "ok": ok, "hosts": [asdict(r) for r in rows]}
    if lease_error:
        document["lease_error"] = lease_error
    out.document(document)
    out.table(
        ["HOST", "TRANSPORT", "ENDPOINT", "STATE", "CONNECT", "UNAME / ERROR"],
        [
            [
                r.id,
                r.transport,
                r.endpoint,
                r.state,
                f"{r.connect_seconds:.2f}s" if r.connect_seconds is not None else "-",
                r.uname if r.state == "ok" else (f"{r.uname}: {r.error}" if r.uname else r.error),
            ]
            for r in rows
        ],
        painted=3,
        colours=[r.colour for r in rows],
    )
    out.line(_summary(out, rows, lease_error))
    return EXIT_OK if ok else EXIT_FAILED


def _summary(out: Printer, rows: list[HostCheck], lease_error: str) -> str:
    """``3 hosts: all ok (1 leased by another run)`` or ``3 hosts: 1 not ok (router1)``."""
    bad = [r.id for r in rows if not r.ok]
    leased = sum(1 for r in rows if r.lease is not None and r.ok)
    text = f"{len(rows)} host{'s' if len(rows) != 1 else ''}: "
    text += (
        out.paint("all ok", "green") if not bad else out.paint(f"{len(bad)} not ok ({', '.join(bad)})", "red")
    )
    if leased:
        text += f" ({leased} leased by another run)"
    if lease_error:
        text += "; " + out.paint("not ok: the lease store could not be read", "red")
    return text
