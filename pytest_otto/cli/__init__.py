"""The ``otto`` command: look at a lab from a terminal, over the same library and lab file.

``otto [--lab PATH] [-p REGEX] [--tags T,...] [--json] COMMAND ...`` with the commands
``check``, ``run``, ``put``, ``get``, ``console``, ``power``, ``reboot``,
``lease list|break`` and ``lab show|check-file``; one
module per command family, each a thin layer over the library's public API. Exit
codes are pytest's: 0 all good, 1 a host or a command failed, 2 interrupted,
4 usage error (bad lab file, bad pattern, no host selected).

The standard library's ``argparse`` is enough for this shape (a few subcommands with
common options), and a table needs no more than padding: click or rich would add a
dependency to every install of a pytest plugin for little gain.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from typing import NoReturn

from ..selection import HOST_PATTERN_HELP, TAGS_HELP
from ._app import EXIT_FAILED, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE, Context, UsageError
from ._output import Masker, Printer

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake exits 4 (pytest's usage error), not 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise UsageError(message)


def _common_options(*, defaults: bool) -> argparse.ArgumentParser:
    """The options every command takes, before or after the command name.

    The copy on the subcommands has no defaults (``SUPPRESS``), so an option given
    before the command is not reset by the subcommand's parser.
    """
    parser = _Parser(add_help=False)
    default = None if defaults else argparse.SUPPRESS
    group = parser.add_argument_group("lab selection and output")
    group.add_argument(
        "--lab",
        metavar="PATH",
        default=default,
        help="lab file (else $OTTO_LAB, else otto_lab of the pytest ini file, else the local host)",
    )
    group.add_argument(
        "-p",
        "--host-pattern",
        metavar="REGEX",
        default=default,
        help=HOST_PATTERN_HELP,
    )
    group.add_argument(
        "--tags",
        metavar="T,...",
        default=default,
        action="append",
        help=TAGS_HELP,
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=False if defaults else argparse.SUPPRESS,
        help="print one JSON document instead of text",
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    from . import board, check, console, copy, labfile, lease, run

    parser = _Parser(
        prog="otto",
        parents=[_common_options(defaults=True)],
        description="Look at a pytest-otto lab from a terminal: check, run, copy, console, leases.",
        epilog="Exit codes: 0 all good, 1 a host or command failed, 2 interrupted, 4 usage error.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)
    common = _common_options(defaults=False)
    for module in (check, run, copy, console, board, lease, labfile):
        module.add_parser(commands, common)
    return parser


def _wants_json(argv: Sequence[str]) -> bool:
    """``--json`` among otto's own options (not in a command after ``--``)."""
    words = list(argv)
    return "--json" in (words[: words.index("--")] if "--" in words else words)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``otto`` with ``argv`` (default: the process's arguments); the exit code.

    With ``--json``, a usage error or an interruption is a JSON document too
    (``{"ok": false, "exit_code": 4, "error": ...}``), so a script always gets one.
    """
    words = list(sys.argv[1:] if argv is None else argv)
    out = Printer(Masker(None), json_mode=_wants_json(words))
    # A dependency's import-time deprecation (asyncssh importing DSA from cryptography)
    # is not the user's business at a terminal.
    warnings.filterwarnings("ignore", module=r"asyncssh(\.|$)")
    try:
        args = build_parser().parse_args(words)
        if getattr(args, "needs_lab", True):
            return int(args.handler(Context.load(args)))
        return int(args.handler(None, args))
    except UsageError as exc:
        return _failed(out, str(exc), EXIT_USAGE)
    except KeyboardInterrupt as exc:  # Ctrl-C; SIGTERM or SIGHUP while leases are held (``by SIGTERM``)
        return _failed(out, f"interrupted {exc}" if str(exc) else "interrupted", EXIT_INTERRUPTED)
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_FAILED
    except Exception as exc:  # a bug of ours: say so, with the traceback, like pytest's INTERNALERROR
        import traceback

        traceback.print_exc()
        return _failed(out, f"internal error: {type(exc).__name__}: {exc}", EXIT_INTERNAL)


def _failed(out: Printer, message: str, code: int) -> int:
    out.error(message)
    out.document({"ok": False, "exit_code": code, "error": message})
    return code


def console_main() -> NoReturn:
    """The console script's entry point."""
    sys.exit(main())
