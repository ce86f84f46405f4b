"""``otto run -- CMD``: one command on every selected host at once, output per host."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..result import CommandStatus
from ._app import (
    EXIT_FAILED,
    EXIT_OK,
    Context,
    HostResult,
    UsageError,
    describe,
    each_host,
    seconds_arg,
    timed,
    verdict,
)
from .leasing import add_lease_options, holding

if TYPE_CHECKING:
    from ..hosts.base import Host

__all__ = ["add_parser"]


@dataclass
class HostRun(HostResult):
    """What one host made of the command: its exit code and output."""

    retcode: int | None
    output: str
    seconds: float


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``otto run``."""
    parser = commands.add_parser(
        "run",
        parents=[common],
        help="run a command on every selected host at once",
        description=(
            "Run CMD on every selected host at once (in its persistent shell, or with --oneshot in a "
            "fresh process) and print each host's output with its status and exit code. Put CMD "
            "after -- when it has options of its own: otto run -- ls -l /tmp. Exit 1 if any failed."
        ),
    )
    parser.add_argument(
        "--timeout",
        type=seconds_arg,
        default=None,
        metavar="S",
        help="bound on the command, in seconds (default: the lab's command_timeout)",
    )
    parser.add_argument(
        "--oneshot",
        action="store_true",
        help="run in a fresh process (no shell state, empty stdin) instead of the shell",
    )
    add_lease_options(parser)
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="CMD", help="the command line")
    parser.set_defaults(handler=run_command)


def command_line(words: list[str]) -> str:
    """The words after ``--`` joined by spaces into one shell command line, as ``ssh`` does.

    The host's shell expands it: ``otto run -- echo '$HOME'`` prints the host's home.
    """
    if words and words[0] == "--":
        words = words[1:]
    if not words:
        raise UsageError("otto run needs a command: otto run -- CMD")
    return " ".join(words)


async def _run_host(
    context: Context, host: Host, command: str, oneshot: bool, timeout: float | None
) -> HostRun:
    kwargs: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
    try:
        context.usable(host)
        if oneshot:
            status, seconds = await timed(lambda: host.oneshot(command, **kwargs))
        else:
            result, seconds = await timed(lambda: host.run(command, **kwargs))
            status = result.only
    except Exception as exc:
        return HostRun(host.id, verdict(exc), None, describe(exc), 0.0)
    assert isinstance(status, CommandStatus)
    lost = context.lease_error(host)  # broken while it ran: the shell was closed under it
    if lost is not None:
        return HostRun(host.id, verdict(lost), None, f"{describe(lost)}\n{status.output}".strip(), 0.0)
    return HostRun(host.id, status.status.name, status.retcode, str(status.output), round(seconds, 3))


def run_command(context: Context) -> int:
    """Run the command everywhere; print a block per host (or JSON); exit 1 if one failed."""
    args = context.args
    command = command_line(list(args.command))
    hosts = context.selected()

    with holding(context, hosts):
        results = context.run(
            each_host(
                context.out,
                "running",
                hosts,
                lambda h: _run_host(context, h, command, args.oneshot, args.timeout),
            )
        )
    ok = all(r.ok for r in results)
    out = context.out
    out.document(
        {"lab": context.lab.name, "command": command, "ok": ok, "hosts": [asdict(r) for r in results]}
    )
    for r in results:
        colour = "green" if r.ok else "red"
        code = f"exit {r.retcode}" if r.retcode is not None else "no exit code"
        took = f", {r.seconds:.2f}s" if r.retcode is not None else ""
        out.line(out.paint(f"== {r.id}: {r.status} ({code}{took})", colour))
        if r.output:
            out.line(r.output)
    bad = [r.id for r in results if not r.ok]
    out.line(
        f"{len(results) - len(bad)}/{len(results)} hosts ok" + (f"; not ok: {', '.join(bad)}" if bad else "")
    )
    return EXIT_OK if ok else EXIT_FAILED
