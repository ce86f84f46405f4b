"""``otto put SRC... DEST_DIR`` (every selected host) and ``otto get HOST SRC... DEST_DIR``."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from ._app import EXIT_FAILED, EXIT_OK, Context, HostResult, UsageError, describe, each_host, verdict
from .leasing import add_lease_options, holding

if TYPE_CHECKING:
    from ..hosts.base import Host

__all__ = ["add_parser"]


@dataclass
class HostCopy(HostResult):
    """How one host's transfer went: the message names the file that did not arrive."""

    message: str


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``otto put`` and ``otto get``."""
    put = commands.add_parser(
        "put",
        parents=[common],
        help="copy local files to a folder on every selected host",
        description="Copy local files into DEST_DIR on every selected host. Exit 1 if any failed.",
    )
    add_lease_options(put)
    put.add_argument("paths", nargs="+", metavar="SRC... DEST_DIR")
    put.set_defaults(handler=run_put)
    get = commands.add_parser(
        "get",
        parents=[common],
        help="copy files from one host to a local folder",
        description="Copy files from HOST into the local folder DEST_DIR, byte-identical. Exit 1 on failure.",
    )
    add_lease_options(get)
    get.add_argument("host_id", metavar="HOST")
    get.add_argument("paths", nargs="+", metavar="SRC... DEST_DIR")
    get.set_defaults(handler=run_get)


def _split(paths: list[str], verb: str) -> tuple[list[str], str]:
    if len(paths) < 2:
        raise UsageError(f"otto {verb} needs at least one SRC and a DEST_DIR")
    return paths[:-1], paths[-1]


async def _copy(context: Context, host: Host, verb: str, sources: list[str], dest: str) -> HostCopy:
    try:
        context.usable(host)
        if verb == "put":
            status, message = await host.put(sources, dest)
        else:
            status, message = await host.get(sources, dest)
    except Exception as exc:
        return HostCopy(host.id, verdict(exc), describe(exc))
    lost = context.lease_error(host)  # broken while it copied
    if lost is not None:
        return HostCopy(host.id, verdict(lost), describe(lost))
    return HostCopy(host.id, status.name, message)


def _report(context: Context, verb: str, sources: list[str], dest: str, results: list[HostCopy]) -> int:
    out = context.out
    ok = all(r.ok for r in results)
    out.document(
        {
            "lab": context.lab.name,
            verb: sources,
            "dest_dir": dest,
            "ok": ok,
            "hosts": [asdict(r) for r in results],
        }
    )
    arrow = f"{' '.join(sources)} -> {dest}"
    for r in results:
        if r.ok:
            out.line(f"{r.id}: {out.paint('ok', 'green')}: {verb} {arrow}")
        else:
            out.line(f"{r.id}: {out.paint(r.status, 'red')}: {r.message}")
    return EXIT_OK if ok else EXIT_FAILED


def run_put(context: Context) -> int:
    """Put the files on every selected host at once."""
    sources, dest = _split(context.args.paths, "put")
    hosts = context.selected()

    with holding(context, hosts):
        results = context.run(
            each_host(context.out, "copying", hosts, lambda h: _copy(context, h, "put", sources, dest))
        )
    return _report(context, "put", sources, dest, results)


def run_get(context: Context) -> int:
    """Get the files from one host."""
    sources, dest = _split(context.args.paths, "get")
    host = context.host(context.args.host_id)
    with holding(context, [host]):
        result = context.run(_copy(context, host, "get", sources, dest))
    return _report(context, "get", sources, dest, [result])
