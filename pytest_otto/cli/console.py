"""``otto console HOST``: sit at a host's shell or console line from this terminal.

The local terminal goes raw (every key goes to the host, Ctrl-C too), the window
size follows the local one, and ``Ctrl-]`` then ``q`` leaves. The terminal's
settings are put back on every way out: leaving, the far end hanging up, an error,
SIGTERM or SIGHUP. The stream itself is `pytest_otto.terminal`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
import termios
import tty
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

from .. import loop
from ..terminal import Terminal, WindowSize, open_terminal
from ._app import EXIT_FAILED, EXIT_OK, Context, UsageError, describe, verdict
from .leasing import add_lease_options, holding

if TYPE_CHECKING:
    from ..hosts.base import Host

__all__ = ["ESCAPE", "add_parser"]

#: Ctrl-]: the escape key, as in telnet.
ESCAPE = b"\x1d"
_HELP = b"\r\n[otto: Ctrl-] q leaves; Ctrl-] Ctrl-] sends Ctrl-]]\r\n"


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``otto console``."""
    parser = commands.add_parser(
        "console",
        parents=[common],
        help="an interactive terminal on a host (Ctrl-] then q leaves)",
        description=(
            "An interactive terminal on HOST: its shell (local, ssh) or its console line (telnet, serial, "
            "tcp), where you answer the login yourself. Ctrl-] then q leaves; Ctrl-] Ctrl-] sends Ctrl-]."
        ),
    )
    add_lease_options(parser)
    parser.add_argument("host_id", metavar="HOST")
    parser.set_defaults(handler=run_console)


def window_size(fd: int) -> WindowSize:
    """``(columns, rows)`` of the terminal on ``fd`` (80x24 when it cannot tell)."""
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        size = shutil.get_terminal_size()
    return size.columns, size.lines


class _Hangup(Exception):
    """SIGTERM or SIGHUP arrived: leave the way Ctrl-] q does, restoring the terminal."""


@contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    """The terminal on ``fd`` in raw mode, its settings restored however the block ends."""
    saved = termios.tcgetattr(fd)

    def hang_up(signum: int, frame: FrameType | None) -> None:
        raise _Hangup(signal.Signals(signum).name)

    handlers = {sig: signal.signal(sig, hang_up) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSAFLUSH, saved)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


class _Keys:
    """Turns keystrokes into bytes for the host, watching for Ctrl-] q."""

    def __init__(self) -> None:
        self.escaped = False
        self.leave = False

    def translate(self, data: bytes) -> tuple[bytes, bytes]:
        """``(bytes for the host, bytes to show locally)``; sets `leave` on Ctrl-] q."""
        send = bytearray()
        show = b""
        for byte in data:
            key = bytes((byte,))
            if self.escaped:
                self.escaped = False
                if key in (b"q", b"Q"):
                    self.leave = True
                    break
                if key == ESCAPE:
                    send += ESCAPE
                else:
                    show = _HELP
            elif key == ESCAPE:
                self.escaped = True
            else:
                send += key
        return bytes(send), show


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _Relay:
    """Moves bytes between the local terminal and the host until one side ends."""

    def __init__(self, host: Host, stdin: int, stdout: int) -> None:
        self.host = host
        self.stdin = stdin
        self.stdout = stdout
        self.keys = _Keys()
        self.terminal: Terminal | None = None

    def resize(self) -> None:
        """The local window changed: pass its size on (runs on the otto loop)."""
        if self.terminal is not None:
            self.terminal.resize(window_size(self.stdin))

    async def run(self) -> str:
        """Relay until the user leaves or the host hangs up; why it ended."""
        early: list[bytes] = []  # what the host says before the banner is shown (a login prompt)
        terminal = self.terminal = await open_terminal(self.host, early.append, window_size(self.stdin))
        _write_all(self.stdout, f"[otto: connected to {terminal.describe()}; Ctrl-] q leaves]\r\n".encode())
        _write_all(self.stdout, b"".join(early))
        terminal.on_data = lambda data: _write_all(self.stdout, data)
        typed: asyncio.Queue[bytes] = asyncio.Queue()
        aio = asyncio.get_running_loop()
        aio.add_reader(self.stdin, self._on_key, typed)
        pump = asyncio.ensure_future(self._forward(terminal, typed))
        ended = asyncio.ensure_future(terminal.closed.wait())
        try:
            await asyncio.wait([pump, ended], return_when=asyncio.FIRST_COMPLETED)
            if pump.done() and not pump.cancelled() and pump.exception() is not None:
                return f"writing to the host failed: {describe(pump.exception())}"  # type: ignore[arg-type]
            return "you left" if self.keys.leave else terminal.reason or "the connection ended"
        finally:
            aio.remove_reader(self.stdin)
            pump.cancel()
            ended.cancel()
            self.terminal = None
            await terminal.close()

    def _on_key(self, typed: asyncio.Queue[bytes]) -> None:
        try:
            data = os.read(self.stdin, 4096)
        except BlockingIOError:
            return
        typed.put_nowait(data)  # b"": the terminal went away

    async def _forward(self, terminal: Terminal, typed: asyncio.Queue[bytes]) -> None:
        while True:
            data = await typed.get()
            if not data:
                self.keys.leave = True
                return
            send, show = self.keys.translate(data)
            if send:
                await terminal.write(send)
            if show:
                _write_all(self.stdout, show)
            if self.keys.leave:
                return


def run_console(context: Context) -> int:
    """Attach this terminal to the host, holding its lease; exit 0 when the session ends,
    1 when it cannot start."""
    host = context.host(context.args.host_id)
    stdin = sys.stdin.fileno()
    if not os.isatty(stdin):
        raise UsageError("otto console needs a terminal on stdin (run it from an interactive shell)")
    context.out.json_mode = False
    with holding(context, [host]):
        try:
            context.usable(host)
        except Exception as exc:
            context.out.error(f"{host.id}: {verdict(exc)}: {describe(exc)}")
            return EXIT_FAILED
        return _attach(context, host, stdin, sys.stdout.fileno())


def _attach(context: Context, host: Host, stdin: int, stdout: int) -> int:
    relay = _Relay(host, stdin, stdout)
    otto = loop.get_loop()
    previous = signal.signal(signal.SIGWINCH, lambda signum, frame: otto.call_soon_threadsafe(relay.resize))
    try:
        with raw_terminal(stdin):
            reason = context.run(relay.run())
    except _Hangup as exc:
        context.out.error(f"{host.id}: console closed by {exc}")
        return EXIT_FAILED
    except Exception as exc:
        context.out.error(f"{host.id}: {verdict(exc)}: {describe(exc)}")
        return EXIT_FAILED
    finally:
        signal.signal(signal.SIGWINCH, previous)
    context.out.error(f"{host.id}: console closed ({reason})")
    return EXIT_OK
