"""A serial port opened with the standard library's ``termios`` (no pyserial).

A console needs little of a serial library: open the device without making it
our controlling tty, put it in raw mode at a baud rate, read it without blocking
on the event loop, write with back-pressure. ``os``, ``termios`` and
``loop.add_reader`` do all of it on any POSIX system, so pytest-otto does not
depend on pyserial (which would add a thread per port or its own polling).

The device is locked with ``flock`` while open, so two pytest-otto users of the
same machine cannot both type into one console. Login, hand-over and the
detection of a shell that ended (the line itself never closes) are
`ConsoleTransport`'s.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import termios
from pathlib import Path

from ..errors import LineHeld
from .base import close_fd, write_to_fd
from .console import ConsoleTransport

__all__ = ["FLOW_CONTROLS", "SerialTransport", "baud_constant"]

#: ``flow_control`` values: none, hardware (RTS/CTS lines), software (XON/XOFF bytes).
FLOW_CONTROLS = ("none", "rtscts", "xonxoff")


def baud_constant(baud: int) -> int:
    """The ``termios.B<baud>`` constant for ``baud``; ValueError for an unknown rate."""
    value = getattr(termios, f"B{int(baud)}", None)
    if not isinstance(value, int):
        raise ValueError(f"unsupported baud rate {baud!r}")
    return value


class SerialTransport(ConsoleTransport):
    """A tty device (``/dev/ttyUSB0``, ``/dev/ttyS0``, a pty) with the console login on top."""

    logout_on_close = True

    def __init__(
        self,
        host_id: str,
        device: str | os.PathLike[str],
        baud: int = 115200,
        flow_control: str = "none",
        **login: object,
    ) -> None:
        super().__init__(host_id, **login)  # type: ignore[arg-type]
        if flow_control not in FLOW_CONTROLS:
            raise ValueError(f"flow_control must be one of {', '.join(FLOW_CONTROLS)}, not {flow_control!r}")
        self.device = Path(device)
        self.baud = baud
        self.flow_control = flow_control
        self._speed = baud_constant(baud)
        self._fd: int | None = None

    def describe(self) -> str:
        """``serial /dev/ttyX``."""
        return f"serial {self.device}"

    @property
    def holds_line(self) -> bool:
        """True while the device is open by this transport."""
        return self._fd is not None

    async def _connect(self) -> None:
        fd = os.open(self.device, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LineHeld(
                    self.host_id, f"{self.describe()}: {self.device} is in use by another process (locked)"
                ) from None
            self._configure_tty(fd)
            termios.tcflush(fd, termios.TCIFLUSH)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._reached = True
        asyncio.get_running_loop().add_reader(fd, self._on_readable)

    def _configure_tty(self, fd: int) -> None:
        """Raw 8N1 at the baud rate, modem lines ignored, with the chosen flow control.

        ``rtscts``: the UART holds its output while CTS is low and lowers RTS when
        its input buffer fills. ``xonxoff``: the tty driver stops our output at an
        XOFF (Ctrl-S) from the device until XON (Ctrl-Q), and sends them itself.
        """
        try:
            attrs = termios.tcgetattr(fd)
        except termios.error as exc:  # /dev/null, a plain file: not an OSError, say what it means
            code, why = exc.args if len(exc.args) == 2 else (errno.ENOTTY, str(exc))
            raise OSError(code, f"{self.device} is not a serial device ({why})") from None
        attrs[0] = 0  # iflag: no ICRNL/IXON/...: bytes as they come
        attrs[1] = 0  # oflag: no OPOST
        attrs[2] = termios.CS8 | termios.CREAD | termios.CLOCAL  # cflag
        if self.flow_control == "rtscts":
            attrs[2] |= termios.CRTSCTS
        elif self.flow_control == "xonxoff":
            attrs[0] |= termios.IXON | termios.IXOFF
        attrs[3] = 0  # lflag: no echo, no canonical mode, no signals
        attrs[4] = attrs[5] = self._speed
        attrs[6][termios.VMIN] = 1
        attrs[6][termios.VTIME] = 0
        try:
            termios.tcsetattr(fd, termios.TCSANOW, attrs)
        except termios.error as exc:
            code, why = exc.args if len(exc.args) == 2 else (errno.EINVAL, str(exc))
            raise OSError(code, f"cannot set {self.device} to raw 8N1 at {self.baud} baud ({why})") from None

    def _on_readable(self) -> None:
        fd = self._fd
        if fd is None:
            return
        try:
            data = os.read(fd, 1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # EIO: the other side of the line is gone
            self._stop_reading()
            self._lost(f"{self.describe()} hung up ({exc.strerror})")
            return
        if not data:
            self._stop_reading()
            self._lost(f"{self.describe()} hung up")
            return
        self._received(data)

    def _stop_reading(self) -> None:
        if self._fd is not None:
            try:
                asyncio.get_running_loop().remove_reader(self._fd)
            except Exception:
                pass

    async def _send(self, data: bytes) -> None:
        await write_to_fd(lambda: self._fd, data, self.describe())

    async def _hangup(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            close_fd(fd)  # closing also drops the flock
