"""``otto lab show`` (the lab as resolved) and ``otto lab check-file`` (validation, no connecting)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import tomli_w

from ..config import HostConfig, LabConfig, LabError, Secret
from ..selection import LabChoice, open_lab
from ..transcript import MASK
from ._app import EXIT_OK, EXIT_USAGE, Context, UsageError, lab_choice
from ._output import Masker, Printer

__all__ = ["add_parser"]


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``otto lab show`` and ``otto lab check-file``."""
    lab = commands.add_parser("lab", help="show or check the lab file", description="The lab file.")
    sub = lab.add_subparsers(dest="lab_command", metavar="{show,check-file}", required=True)
    show = sub.add_parser(
        "show",
        parents=[common],
        help="the lab as resolved: defaults merged, secrets masked",
        description="The selected hosts as resolved: [defaults] merged, paths resolved, secrets masked.",
    )
    show.set_defaults(handler=run_show)
    check = sub.add_parser(
        "check-file",
        parents=[common],
        help="validate a lab file without connecting (exit 4 on an error)",
        description=(
            "Validate a lab file (default: the one --lab, $OTTO_LAB or ini otto_lab names) "
            "without connecting to anything. Exit 4 on an error; warnings (an unset password "
            "variable, a missing key file or device) keep exit 0."
        ),
    )
    check.add_argument("file", nargs="?", metavar="PATH", help="the lab file to check")
    check.set_defaults(handler=run_check_file, needs_lab=False)


def _shown(value: Any) -> Any:
    if isinstance(value, Secret):
        if value.env is None:
            return MASK
        state = "set" if os.environ.get(value.env) is not None else "NOT SET"
        return f"{MASK} (from ${value.env}, {state})"
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def resolved(config: HostConfig) -> dict[str, Any]:
    """Every setting of a host, defaults merged, secrets masked (unset ones left out)."""
    table: dict[str, Any] = {"transport": config.transport}
    for key in config.lab_keys():
        value = getattr(config, key, None)
        if key == "transport" or value is None or value in ({}, ()):
            continue
        table[key] = _shown(value)
    return table


def run_show(context: Context) -> int:
    """Print the selected hosts' resolved settings as TOML (or JSON)."""
    hosts = context.selected()
    config = context.lab.config
    assert config is not None  # every lab here comes from a LabConfig
    data = {
        "lab": {
            "name": context.lab.name,
            "file": str(context.lab.path) if context.lab.path else "(none: one local host)",
            "given_by": context.choice.source,
        },
        "hosts": {h.id: resolved(config.host(h.id)) for h in hosts},
    }
    out = context.out
    out.document(data)
    if not out.json_mode:
        for line in tomli_w.dumps(data).rstrip("\n").splitlines():
            out.line(line)
    return EXIT_OK


def _warnings(config: LabConfig) -> list[str]:
    """What will fail at connect time although the file is valid."""
    found = []
    for host in config.hosts:
        password = getattr(host, "password", None)
        if isinstance(password, Secret) and password.env and password.env not in os.environ:
            found.append(
                f"host {host.id!r}: key 'password': environment variable {password.env!r} is not set"
            )
        for key in ("key", "device"):
            path = getattr(host, key, None)
            if isinstance(path, Path) and not path.exists():
                found.append(f"host {host.id!r}: key {key!r}: {path} does not exist")
    return found


def run_check_file(context: Context | None, args: argparse.Namespace) -> int:
    """Load and build the lab file without connecting; exit 4 on an error."""
    if args.file:
        path = Path(args.file)
        source = "the command line"
    else:
        choice = lab_choice(args.lab)
        if choice.path is None:
            raise UsageError("no lab file to check: give PATH, --lab, $OTTO_LAB or ini otto_lab")
        path, source = choice.path, choice.source
    out = Printer(Masker(None), json_mode=args.json)
    try:
        lab = open_lab(LabChoice(path, source))
    except LabError as exc:
        out.document({"file": str(path), "ok": False, "error": str(exc), "warnings": []})
        out.error(str(exc))
        return EXIT_USAGE
    out = Printer(Masker(lab), json_mode=args.json)
    assert lab.config is not None
    warnings = _warnings(lab.config)
    kinds: dict[str, int] = {}
    for cfg in lab.config.hosts:
        kinds[cfg.transport] = kinds.get(cfg.transport, 0) + 1
    counts = ", ".join(f"{n} {kind}" for kind, n in kinds.items()) or "no hosts"
    out.document(
        {
            "file": str(path),
            "ok": True,
            "lab": lab.name,
            "hosts": {cfg.id: cfg.transport for cfg in lab.config.hosts},
            "warnings": warnings,
        }
    )
    out.line(f"{path}: ok: lab {lab.name!r}, {len(lab)} host{'s' if len(lab) != 1 else ''} ({counts})")
    for warning in warnings:
        out.line(f"warning: {warning}")
    return EXIT_OK
