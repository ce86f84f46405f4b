"""``otto check``: is every selected host reachable, and what is it?"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from ._app import EXIT_FAILED, EXIT_OK, Context, describe, each_host, endpoint, timed, verdict

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

    @property
    def ok(self) -> bool:
        """The host answered."""
        return self.state == "ok"


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
            f"misconfigured), connect time and the first line of `{PROBE}`. Exit 1 if any host is not ok."
        ),
    )
    parser.set_defaults(handler=run_check)


async def _check_host(context: Context, host: Host) -> HostCheck:
    config = context.config(host)
    row = HostCheck(
        host.id, config.transport if config else host.transport_name, endpoint(config), "", None, ""
    )
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


def run_check(context: Context) -> int:
    """Check the selected hosts; print the table (or JSON); exit 1 if one is not ok."""
    hosts = context.selected()
    rows = context.run(each_host(context.out, "checking", hosts, lambda h: _check_host(context, h)))
    out = context.out
    ok = all(r.ok for r in rows)
    out.document({"lab": context.lab.name, "ok": ok, "hosts": [asdict(r) for r in rows]})
    out.table(
        ["HOST", "TRANSPORT", "ENDPOINT", "STATE", "CONNECT", "UNAME / ERROR"],
        [
            [
                r.id,
                r.transport,
                r.endpoint,
                r.state,
                f"{r.connect_seconds:.2f}s" if r.connect_seconds is not None else "-",
                r.uname if r.ok else (f"{r.uname}: {r.error}" if r.uname else r.error),
            ]
            for r in rows
        ],
        painted=3,
        colours=[_STATE_COLOURS.get(r.state, "") for r in rows],
    )
    bad = [r.id for r in rows if not r.ok]
    out.line(
        f"{len(rows)} host{'s' if len(rows) != 1 else ''}: "
        + (
            out.paint("all ok", "green")
            if not bad
            else out.paint(f"{len(bad)} not ok ({', '.join(bad)})", "red")
        )
    )
    return EXIT_OK if ok else EXIT_FAILED
