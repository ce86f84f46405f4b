"""``otto power HOST on|off|cycle|status`` and ``otto reboot HOST``: boards with power control."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from ._app import EXIT_FAILED, EXIT_OK, Context, describe, seconds_arg
from .leasing import add_lease_options, holding

if TYPE_CHECKING:
    from ..hosts.base import Host

__all__ = ["add_parser"]

_STATES = {True: "on", False: "off", None: "unknown (the switch cannot tell)"}


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``otto power`` and ``otto reboot``."""
    power = commands.add_parser(
        "power",
        parents=[common],
        help="switch a host's power on, off, cycle it, or ask its state",
        description="Power control of HOST through its [hosts.HOST.power] (commands or QEMU's QMP).",
    )
    add_lease_options(power)
    power.add_argument("host_id", metavar="HOST")
    power.add_argument("action", choices=["on", "off", "cycle", "status"])
    power.set_defaults(handler=run_power)
    reboot = commands.add_parser(
        "reboot",
        parents=[common],
        help="reboot a host and wait until its shell answers again",
        description=(
            "Reboot HOST: its reboot command on its shell, or with --hard a power cycle; then wait "
            "until a shell of the new boot answers (unless --no-wait)."
        ),
    )
    add_lease_options(reboot)
    reboot.add_argument("host_id", metavar="HOST")
    reboot.add_argument("--hard", action="store_true", help="power-cycle instead of rebooting from the shell")
    reboot.add_argument("--no-wait", action="store_true", help="return once the reboot is under way")
    reboot.add_argument(
        "--timeout",
        type=seconds_arg,
        default=None,
        metavar="S",
        help="bound on the wait (default: boot_timeout)",
    )
    reboot.set_defaults(handler=run_reboot)


async def _power(context: Context, host: Host, action: str) -> str:
    context.usable(host)
    if action == "status":
        return _STATES[await host.power_status()]
    await host.power(action)
    return {"on": "on", "off": "off", "cycle": "cycled"}[action]


def run_power(context: Context) -> int:
    """Switch or query one host's power, holding its lease; exit 1 when the switch failed."""
    host = context.host(context.args.host_id)
    with holding(context, [host]):
        return _switch(context, host, context.args.action)


def _switch(context: Context, host: Host, action: str) -> int:
    out = context.out
    try:
        state = context.run(_power(context, host, action))
    except Exception as exc:
        out.document({"host": host.id, "action": action, "ok": False, "error": describe(exc)})
        out.line(f"{host.id}: {out.paint('power ' + action + ' failed', 'red')}: {describe(exc)}")
        return EXIT_FAILED
    out.document({"host": host.id, "action": action, "ok": True, "state": state})
    out.line(
        f"{host.id}: power {state}"
        if action == "status"
        else f"{host.id}: power {action}: {out.paint('ok', 'green')}"
    )
    return EXIT_OK


def run_reboot(context: Context) -> int:
    """Reboot one host (and wait for it), holding its lease; exit 1 when it did not come back in time."""
    host = context.host(context.args.host_id)
    with holding(context, [host]):
        return _reboot(context, host)


def _reboot(context: Context, host: Host) -> int:
    args = context.args
    kwargs: dict[str, Any] = {"hard": args.hard, "wait": not args.no_wait}
    if args.timeout is not None:
        kwargs["timeout"] = args.timeout
    out = context.out
    how = "hard (power cycle)" if args.hard else "soft"
    start = time.monotonic()
    try:
        context.usable(host)
        context.run(host.reboot(**kwargs))
    except Exception as exc:
        out.document({"host": host.id, "hard": args.hard, "ok": False, "error": describe(exc)})
        out.line(f"{host.id}: {out.paint('reboot failed', 'red')}: {describe(exc)}")
        return EXIT_FAILED
    took = time.monotonic() - start
    out.document(
        {
            "host": host.id,
            "hard": args.hard,
            "waited": not args.no_wait,
            "ok": True,
            "seconds": round(took, 3),
        }
    )
    done = "under way" if args.no_wait else f"up again after {took:.1f}s"
    out.line(f"{host.id}: {how} reboot {out.paint(done, 'green')}")
    return EXIT_OK
