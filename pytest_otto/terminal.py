"""A raw terminal on a host, for a person at a keyboard (``otto console``).

Tests talk to a host through framed shell sessions; a person wants the plain byte
stream instead: every key to the host, every byte back, prompts and all. `open_terminal`
gives that stream for each kind of host, reached the same way the host's own
sessions reach it (the lab's address, credentials, hop, known_hosts, line lock):

- local: the user's ``$SHELL`` on a new pseudo-terminal of the requested size;
- ssh: an interactive shell on a pty channel of the host's connection (window size
  passed on, and again on every resize);
- telnet, serial (and any other console transport): the line itself, with no login
  by pytest-otto: the person answers the prompts. Telnet passes the window size on
  (NAWS, when the server asks for it); a serial line has none.

Everything here runs on the otto loop (`pytest_otto.loop`), where hosts live.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import signal
import struct
import subprocess
import termios
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .transports.base import close_fd, write_to_fd
from .transports.local import spawn_on_pty

if TYPE_CHECKING:
    from .hosts.base import Host
    from .transports.console import ConsoleTransport
    from .transports.ssh import Channel

__all__ = ["Terminal", "WindowSize", "open_terminal"]

#: ``(columns, rows)`` of a terminal window.
WindowSize = tuple[int, int]

#: Called with each chunk of bytes the host sends.
DataCallback = Callable[[bytes], None]


class Terminal(ABC):
    """One raw byte stream to a host; `closed` is set when it ends, `reason` says why."""

    def __init__(self, host: Host, on_data: DataCallback) -> None:
        self.host = host
        self.on_data = on_data
        self.closed = asyncio.Event()
        self.reason = ""

    @abstractmethod
    async def _open(self, size: WindowSize) -> None:
        """Reach the host and start calling `on_data`."""

    @abstractmethod
    async def write(self, data: bytes) -> None:
        """Send keystrokes exactly as typed."""

    def resize(self, size: WindowSize) -> None:
        """Tell the far end the window's new size (a line with no such notion ignores it)."""
        return None

    @abstractmethod
    async def close(self) -> None:
        """Hang up; never raises."""

    def describe(self) -> str:
        """What this terminal is connected to, for the banner."""
        return self.host.id

    def _ended(self, reason: str) -> None:
        if not self.closed.is_set():
            self.reason = reason
            self.closed.set()

    # sink protocol of console transports (`pytest_otto.transports.base.ByteSink`)
    def feed(self, data: bytes) -> None:
        """Bytes from the host."""
        self.on_data(data)

    def feed_eof(self, exit_status: int | None, reason: str = "") -> None:
        """The stream ended."""
        self._ended(reason or "the connection ended")


async def open_terminal(host: Host, on_data: DataCallback, size: WindowSize) -> Terminal:
    """Open a raw terminal on ``host``, bounded by its ``connect_timeout``.

    Raises ``TypeError`` for a kind of host that has no terminal, and the host's own
    connection errors (`pytest_otto.HostConnectionError`, ``OSError``, ``TimeoutError``).
    """
    terminal = _terminal_class(host)(host, on_data)
    try:
        await asyncio.wait_for(terminal._open(size), host.connect_timeout)
    except BaseException:
        await terminal.close()
        raise
    return terminal


def _terminal_class(host: Host) -> type[Terminal]:
    from .hosts.local import LocalHost

    if isinstance(host, LocalHost):
        return LocalTerminal
    from .hosts.console import ConsoleHost

    if isinstance(host, ConsoleHost):
        return ConsoleTerminal
    from .hosts.ssh import RemoteHost

    if isinstance(host, RemoteHost):
        return SshTerminal
    raise TypeError(f"{host.id}: a {type(host).__name__} has no interactive terminal")


def _winsize(size: WindowSize) -> bytes:
    columns, rows = size
    return struct.pack("HHHH", rows, columns, 0, 0)


class LocalTerminal(Terminal):
    """The user's ``$SHELL`` on a pseudo-terminal of its own, in a session of its own."""

    _master: int | None = None
    _proc: subprocess.Popen[bytes] | None = None

    def describe(self) -> str:
        """``local $SHELL``."""
        return f"{self.host.id} (local {self._shell()})"

    @staticmethod
    def _shell() -> str:
        return os.environ.get("SHELL") or "/bin/sh"

    async def _open(self, size: WindowSize) -> None:
        host: Any = self.host
        self._proc, self._master = spawn_on_pty(
            [self._shell()], env=getattr(host, "env", None), cwd=getattr(host, "cwd", None), size=size
        )
        asyncio.get_running_loop().add_reader(self._master, self._on_readable)

    def _on_readable(self) -> None:
        try:
            data = os.read(self._master, 1 << 16) if self._master is not None else b""
        except BlockingIOError:
            return
        except OSError as exc:  # EIO: the shell and everything on its pty are gone
            if exc.errno not in (errno.EIO, errno.EBADF):
                raise
            data = b""
        if data:
            self.on_data(data)
            return
        if self._master is not None:
            asyncio.get_running_loop().remove_reader(self._master)
        status = self._proc.poll() if self._proc is not None else None
        self._ended(f"the shell exited{'' if status is None else f' with status {status}'}")

    async def write(self, data: bytes) -> None:
        """Type ``data`` into the pty."""
        await write_to_fd(lambda: self._master, data, f"{self.host.id}: local pty")

    def resize(self, size: WindowSize) -> None:
        """Set the pty's size: the kernel sends the shell's foreground job SIGWINCH."""
        if self._master is not None:
            fcntl.ioctl(self._master, termios.TIOCSWINSZ, _winsize(size))

    async def close(self) -> None:
        """Hang up the pty (SIGHUP to its session) and reap the shell."""
        master, self._master = self._master, None
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGHUP)
            except ProcessLookupError:
                pass
        if master is not None:
            close_fd(master)
        if proc is not None:
            deadline = time.monotonic() + 2.0
            while proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            if proc.poll() is None:
                proc.kill()
                await asyncio.to_thread(proc.wait)
        self._ended("closed")


class SshTerminal(Terminal):
    """An interactive login shell on a pty channel of the host's SSH connection."""

    _channel: Channel | None = None

    def describe(self) -> str:
        """``ssh user@address:port``."""
        host: Any = self.host
        user = f"{host.user}@" if host.user else ""
        return f"{host.id} (ssh {user}{host.address}:{host.port})"

    async def _open(self, size: WindowSize) -> None:
        import asyncssh

        terminal = self

        class _Session(asyncssh.SSHClientSession[bytes]):
            def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
                terminal.on_data(data)

            def exit_status_received(self, status: int) -> None:
                terminal.reason = f"the shell exited with status {status}"

            def connection_lost(self, exc: Exception | None) -> None:
                terminal._ended(f"connection lost: {exc}" if exc else terminal.reason or "channel closed")

        host: Any = self.host
        self._channel = await host._ssh.open_channel(
            _Session,
            encoding=None,
            lasting=True,
            term_type=os.environ.get("TERM") or "xterm",
            term_size=size,
        )

    async def write(self, data: bytes) -> None:
        """Send ``data`` on the channel."""
        channel = self._channel
        if channel is None or channel.chan is None or self.closed.is_set():
            raise ConnectionResetError(f"{self.host.id}: the SSH channel is closed")
        channel.chan.write(data)

    def resize(self, size: WindowSize) -> None:
        """Send a window-change request."""
        channel = self._channel
        if channel is not None and channel.chan is not None and not self.closed.is_set():
            channel.chan.change_terminal_size(*size)

    async def close(self) -> None:
        """Close the channel (the connection stays with the host)."""
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()
        self._ended("closed")


class ConsoleTerminal(Terminal):
    """The console line itself (telnet, serial, ...): bytes both ways, no login by us."""

    _transport: ConsoleTransport | None = None

    def describe(self) -> str:
        """``telnet address:port``, ``serial /dev/ttyX``, ..."""
        transport = self._transport
        return f"{self.host.id} ({transport.describe()})" if transport is not None else self.host.id

    async def _open(self, size: WindowSize) -> None:
        host: Any = self.host
        self._transport = host._make_shell_transport()
        assert self._transport is not None
        self.resize(size)  # before connecting: a telnet server asks for it in its greeting
        await self._transport.open_raw(self)

    async def write(self, data: bytes) -> None:
        """Write to the line (paced by the host's ``write_delay``)."""
        if self._transport is None or self.closed.is_set():
            raise ConnectionResetError(f"{self.host.id}: the console is closed")
        await self._transport.write(data)

    def resize(self, size: WindowSize) -> None:
        """Pass the size on where the transport can (telnet NAWS); a UART cannot."""
        set_size = getattr(self._transport, "set_window_size", None)
        if set_size is not None:
            set_size(size)

    async def close(self) -> None:
        """Hang up and give the line back."""
        transport, self._transport = self._transport, None
        if transport is not None:
            await transport.close()
        self._ended("closed")
