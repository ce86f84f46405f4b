"""``otto lease list`` (who holds the selected hosts' devices) and ``otto lease break``.

Both read the lab's lease store (``[lab] leases``, or ``$OTTO_LEASES``) with the
library's `pytest_otto.Lab.leases` and `pytest_otto.Lab.break_lease`; neither takes
a lease. Breaking one is deliberate: at a terminal otto asks first, elsewhere it
needs ``--yes``.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from ..leases import OTTO_LEASES_ENV, LeaseInfo, LeaseStoreError, host_devices, lease_settings
from ..leases.store import shown_url
from ._app import EXIT_FAILED, EXIT_OK, Context, UsageError
from .leasing import holder_json, holder_short, read_holders

__all__ = ["add_parser"]


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``otto lease list`` and ``otto lease break``."""
    lease = commands.add_parser(
        "lease", help="who holds which device; break a stuck lease", description="Device leases."
    )
    sub = lease.add_subparsers(dest="lease_command", metavar="{list,break}", required=True)
    listing = sub.add_parser(
        "list",
        parents=[common],
        help="the leases of the selected hosts' devices: holder, since when, CI job",
        description=(
            "The devices of the selected hosts, free or leased: by whom (user, machine, pid), "
            "since when, for how long, and the CI job when the holder runs in one."
        ),
    )
    listing.add_argument(
        "--all", action="store_true", help="also every other lease in the store (other labs' devices)"
    )
    listing.set_defaults(handler=run_list)
    breaking = sub.add_parser(
        "break",
        parents=[common],
        help="break a stuck lease (asks first; --yes when not at a terminal)",
        description=(
            "Remove the lease on a device (a host id names its device), whoever holds it. The holder "
            "finds it lost at its next renewal and sends nothing more to the device. Asks at a "
            "terminal; elsewhere, refuses unless --yes."
        ),
    )
    breaking.add_argument("target", metavar="HOST|DEVICE")
    breaking.add_argument("-y", "--yes", action="store_true", help="break without asking")
    breaking.set_defaults(handler=run_break)


@dataclass
class _Device:
    """One device of the listing: the hosts leased as it, and its lease (None: free)."""

    name: str
    hosts: list[str] = field(default_factory=list)
    lease: LeaseInfo | None = None

    def to_json(self) -> dict[str, Any]:
        lease = self.lease
        return {
            "device": self.name,
            "hosts": self.hosts,
            "state": "free" if lease is None else "leased",
            "holder": None if lease is None else holder_json(lease.holder),
            "expires_in": None if lease is None or lease.expires_in is None else round(lease.expires_in, 1),
        }

    def cells(self) -> list[str]:
        lease = self.lease
        hosts = ", ".join(self.hosts) or "-"
        if lease is None:
            return [self.name, hosts, "free", "", "", "", ""]
        shown = holder_json(lease.holder)
        who = holder_short(lease.holder).split(" (", 1)[0] if lease.holder.known else "?"
        return [
            self.name,
            hosts,
            f"leased by {who}",
            str(shown["pid"] or "?"),
            (shown["started"] or "?").replace("T", " ").replace("Z", " UTC"),
            _age(shown["age_seconds"]),
            lease.holder.job or "-",
        ]


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _holders(context: Context) -> dict[str, LeaseInfo]:
    try:
        return read_holders(context)
    except LeaseStoreError as exc:
        raise UsageError(str(exc)) from None


def _store(context: Context) -> str:
    try:
        return shown_url(lease_settings(context.lab.config).store)
    except Exception as exc:  # a bad $OTTO_LEASES: the lab loaded, the store is named on use
        raise UsageError(str(exc)) from None


def _off_by() -> str:
    """What turned leasing off: the environment (which wins) or the lab file."""
    return f"${OTTO_LEASES_ENV}=off" if os.environ.get(OTTO_LEASES_ENV) else 'leases = "off"'


def run_list(context: Context) -> int:
    """Print the selected hosts' devices, free or by whom they are leased."""
    hosts = context.selected()
    out = context.out
    store = _store(context)
    devices: dict[str, _Device] = {}
    not_leased: list[str] = []
    for host_id, name in host_devices(context.lab, hosts).items():
        if name is None:
            not_leased.append(host_id)
        else:
            devices.setdefault(name, _Device(name)).hosts.append(host_id)
    holders = {} if store == "off" else _holders(context)
    for name, info in holders.items():
        if name in devices:
            devices[name].lease = info
        elif context.args.all:
            devices[name] = _Device(name, [], info)
    shown = [devices[name] for name in sorted(devices)]
    out.document(
        {
            "lab": context.lab.name,
            "store": store,
            "devices": [d.to_json() for d in shown],
            "not_leased": not_leased,
        }
    )
    if store == "off":
        out.line(f"leases are off for lab {context.lab.name!r} ({_off_by()}): nothing is leased")
        return EXIT_OK
    if shown:
        out.table(
            ["DEVICE", "HOSTS", "STATE", "PID", "SINCE", "AGE", "JOB"],
            [d.cells() for d in shown],
            painted=2,
            colours=["green" if d.lease is None else "yellow" for d in shown],
        )
    held = sum(1 for d in shown if d.lease is not None)
    summary = f"{len(shown)} device{'s' if len(shown) != 1 else ''}: {held} leased, {len(shown) - held} free"
    out.line(f"{summary} (store {store})")
    if not_leased:
        out.line(f"not leased: {', '.join(not_leased)}")
    return EXIT_OK


def _target(context: Context, target: str, holders: dict[str, LeaseInfo]) -> tuple[str, list[str]]:
    """The device ``target`` names (a host id, or a device) and the lab's hosts leased as it."""
    devices = host_devices(context.lab)
    if target in devices:
        device = devices[target]
        if device is None:
            raise UsageError(
                f"host {target!r} is not leased (a local host, or lease = false): nothing to break"
            )
    elif target in devices.values() or target in holders:
        device = target
    else:
        known = sorted({d for d in devices.values() if d is not None} | set(holders))
        raise UsageError(
            f"{target!r} is neither a host of lab {context.lab.name!r} nor a leased device; "
            f"its devices: {', '.join(known) or '(none)'}"
        )
    return device, [h for h, d in devices.items() if d == device]


def _ask(question: str) -> bool:
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def run_break(context: Context) -> int:
    """Break the lease on one device, saying whose it was; asks first at a terminal."""
    out = context.out
    store = _store(context)
    if store == "off":
        raise UsageError(f"leases are off for lab {context.lab.name!r} ({_off_by()}): nothing to break")
    holders = _holders(context)
    device, hosts = _target(context, context.args.target, holders)
    named = f"{device} ({', '.join(hosts)})" if hosts and hosts != [device] else device
    found = holders.get(device)
    document: dict[str, Any] = {"lab": context.lab.name, "store": store, "device": device, "hosts": hosts}
    if found is None:
        out.document({**document, "broken": False, "holder": None})
        out.line(f"{named} is free: no lease to break")
        return EXIT_OK
    if not context.args.yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"{named} is leased by {found.holder.describe()}; not broken: "
                "pass --yes to break it when not at a terminal"
            )
        if not _ask(f"Break the lease on {named}, held by {found.holder.describe()}?"):
            out.document({**document, "broken": False, "holder": holder_json(found.holder)})
            out.line(f"{named}: not broken")
            return EXIT_FAILED
        now = _holders(context).get(device)
        if now is None or now.holder.token != found.holder.token:
            who = f"now held by {now.holder.describe()}" if now is not None else "now free"
            out.document(
                {**document, "broken": False, "holder": None if now is None else holder_json(now.holder)}
            )
            out.line(f"{named} changed hands while you answered ({who}): not broken")
            return EXIT_FAILED
    try:
        broken = context.lab.break_lease_sync(device)
    except LeaseStoreError as exc:
        raise UsageError(str(exc)) from None
    out.document(
        {**document, "broken": broken is not None, "holder": None if broken is None else holder_json(broken)}
    )
    if broken is None:
        out.line(f"{named} was free by then: no lease to break")
        return EXIT_OK
    out.line(f"broke the lease on {named} held by {broken.describe()}")
    out.line("that run finds its lease lost at its next renewal and sends nothing more to the device")
    return EXIT_OK
