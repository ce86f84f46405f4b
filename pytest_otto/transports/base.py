"""What every transport offers the shared shell framing.

A transport knows how to reach a shell (spawn it, open an SSH channel, dial a
console and log in) and how to move bytes. It knows nothing about markers, exit
codes or timeouts: that is `pytest_otto.session`, written once for all of them.
Differences that matter to the framing are declared as attributes, not coded as
branches inside the session.
"""

from __future__ import annotations

import asyncio
import math
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Protocol

__all__ = [
    "ByteSink",
    "Transport",
    "close_fd",
    "write_some",
    "write_to_fd",
    "TTY_LINE_LIMIT",
]

#: Longest line typed to a terminal unless the host says otherwise: a shell's line
#: editor on a tty may cut longer typed lines (BusyBox ash near 1 KiB, pitfall 12),
#: and what runs on the far end of a terminal is not known (``exec busybox sh``, a
#: device's shell). Longer commands go in acknowledged pieces; a shell on pipes
#: reads lines of any length.
TTY_LINE_LIMIT = 512


class ByteSink(Protocol):
    """Receives what the shell prints (implemented by the session)."""

    def feed(self, data: bytes) -> None:
        """Bytes arrived from the shell."""

    def feed_eof(self, exit_status: int | None, reason: str = "") -> None:
        """The shell's stream ended; ``exit_status`` when the transport knows it."""


class Transport(ABC):
    """Bytes to and from one shell.

    Subclasses call ``self.sink.feed()`` as data arrives and ``self.sink.feed_eof()``
    once when the stream ends, from the otto loop.
    """

    #: Longest line the far end accepts (tty or shell line editor); longer commands
    #: are sent in pieces by the session. ``None``: no limit.
    line_limit: int | None = None

    #: Whether ``kill_foreground`` can hard-kill the running command.
    can_kill_foreground: bool = False

    #: Whether the shell runs on a terminal. Without one there is no Ctrl-C:
    #: ``interrupt`` signals the shell's process group instead, so the session sets
    #: the shell up to survive SIGINT and to merge stderr into stdout itself.
    tty: bool = True

    def __init__(self) -> None:
        self.sink: ByteSink | None = None
        #: Nothing more may be sent (a lost lease: someone else has the device now):
        #: `close` hangs up without a word, no logout and no restoring the line.
        self.silent = False

    @property
    def restores_on_close(self) -> bool:
        """The shell outlives `close` (a console's line stays as it is, not logged out):
        the session then gives it back as it found it (prompt, echo, line editing)."""
        return False

    @abstractmethod
    async def open(self, sink: ByteSink) -> None:
        """Reach the shell (connect, spawn, log in); then feed ``sink`` until closed.

        The caller bounds this with the host's connect timeout.
        """

    def raw_io(self, on: bool) -> None:
        """The session hands the shell to ``send``/``expect`` (``on``), or takes it back.

        Under raw I/O the user drives whatever runs (a telnet client to a neighbour
        prints ``login:`` too); a transport that reads the session's end from the
        stream holds its judgement until the session takes the shell back.
        """
        return None

    def stall_hint(self) -> str:
        """Where `open` was stuck when its time ran out (``"; ..."``), or ``""``.

        "Connect timed out" alone does not tell a silent console from a hung jump
        host; the transport knows which step it was waiting on.
        """
        return ""

    @abstractmethod
    async def write(self, data: bytes) -> None:
        """Write ``data`` exactly (pacing is the transport's business)."""

    def write_nowait(self, data: bytes) -> int:
        """Write as much of ``data`` as goes without waiting; return how many bytes that was.

        The session calls this first and awaits `write` only for the rest: most
        writes never wait, and then no timeout has to be armed and cancelled.
        The default writes nothing.
        """
        return 0

    def read_pending(self) -> None:
        """Feed the sink what the shell has already written, without waiting.

        A local shell often answers within the write that sent its command (the
        kernel runs the woken reader at once): reading before going to sleep saves
        a trip through the event loop. The default does nothing; data then arrives
        through the transport's callbacks as usual.
        """
        return None

    async def interrupt(self) -> None:
        """Interrupt the foreground command (Ctrl-C on the shell's tty, by default)."""
        await self.write(b"\x03")

    async def kill_foreground(self, since: float = -math.inf) -> bool:
        """Hard-kill the foreground command if the transport can; True if it did.

        ``since`` is when (``time.monotonic()``) the command was sent: what started
        before it (jobs of earlier commands) is not part of it.
        """
        return False

    @abstractmethod
    async def close(self) -> None:
        """Hang up and release everything; must not raise and must not hang."""


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def write_some(fd: int | None, data: bytes | memoryview, what: str) -> int:
    """One write to a non-blocking fd: the bytes it took (0 while it is full).

    A closed (``None``) or failing fd is a ``ConnectionResetError`` naming ``what``.
    """
    if fd is None:
        raise ConnectionResetError(f"{what} is closed")
    try:
        return os.write(fd, data)
    except BlockingIOError:
        return 0
    except OSError as exc:
        raise ConnectionResetError(f"{what}: {exc.strerror}") from exc


async def write_to_fd(current_fd: Callable[[], int | None], data: bytes, what: str) -> None:
    """Write all of ``data`` to a non-blocking fd (a pty or a tty), waiting while it is full.

    ``current_fd`` is asked again after every wait, because the transport may be
    closed meanwhile; a closed or failing fd is a ``ConnectionResetError`` naming ``what``.
    """
    view = memoryview(data)
    loop = asyncio.get_running_loop()
    while view:
        fd = current_fd()
        view = view[write_some(fd, view, what) :]
        if view and fd is not None:  # a closed fd raised in write_some
            writable: asyncio.Future[None] = loop.create_future()
            loop.add_writer(fd, _set_done, writable)
            try:
                await writable
            finally:
                loop.remove_writer(fd)


def close_fd(fd: int) -> None:
    """Stop watching ``fd`` on the running loop and close it; never raises."""
    try:
        asyncio.get_running_loop().remove_reader(fd)
    except Exception:
        pass
    try:
        os.close(fd)
    except OSError:
        pass
