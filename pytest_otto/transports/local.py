"""A local ``bash`` on a pseudo-terminal.

A pty (not pipes) so that the shell is interactive with job control: every
command runs in its own process group, Ctrl-C reaches exactly that group, and the
shell itself survives. The master side is read without blocking on the otto loop.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import pty
import signal
import subprocess
import termios
from collections.abc import Mapping, Sequence

from .base import ByteSink, Transport, close_fd, write_to_fd

__all__ = ["LocalShellTransport", "kill_session_processes"]

DEFAULT_SHELL = ("bash", "--norc", "--noprofile", "--noediting", "-i")


def _take_controlling_tty() -> None:  # runs in the child between fork and exec
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def kill_session_processes(sid: int, sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to every process of session ``sid`` (leftover background jobs)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 3 and int(fields[3]) == sid:
            try:
                os.kill(int(entry), sig)
            except OSError:
                pass


class LocalShellTransport(Transport):
    """Spawns ``bash`` on a pty; the session is the process's own (``setsid``)."""

    can_kill_foreground = True

    def __init__(
        self,
        argv: Sequence[str] = DEFAULT_SHELL,
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> None:
        super().__init__()
        self.argv = list(argv)
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self._fd: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._writable: asyncio.Future[None] | None = None
        self._eof_sent = False

    async def open(self, sink: ByteSink) -> None:
        """Spawn the shell."""
        self.sink = sink
        master, slave = pty.openpty()
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("TERM", "dumb")
        env["TERM"] = "dumb"
        try:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                cwd=self.cwd,
                env=env,
                start_new_session=True,
                preexec_fn=_take_controlling_tty,
                close_fds=True,
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        self._fd = master
        asyncio.get_running_loop().add_reader(master, self._on_readable)

    def _on_readable(self) -> None:
        fd = self._fd
        if fd is None:
            return
        try:
            data = os.read(fd, 1 << 18)
        except BlockingIOError:
            return
        except OSError as exc:  # EIO: every slave fd closed, the shell is gone
            if exc.errno not in (errno.EIO, errno.EBADF):
                raise
            data = b""
        if data:
            assert self.sink is not None
            self.sink.feed(data)
            return
        asyncio.get_running_loop().remove_reader(fd)
        asyncio.get_running_loop().create_task(self._report_exit())

    async def _report_exit(self) -> None:
        proc = self._proc
        status: int | None = None
        if proc is not None:
            for _ in range(100):  # the shell closed the tty; it exits within moments
                status = proc.poll()
                if status is not None:
                    break
                await asyncio.sleep(0.01)
        if status is not None and status < 0:
            status = 128 - status
        if not self._eof_sent and self.sink is not None:
            self._eof_sent = True
            self.sink.feed_eof(status)

    async def write(self, data: bytes) -> None:
        """Write all of ``data``, waiting while the pty's input queue is full."""
        await write_to_fd(lambda: self._fd, data, "local shell")

    async def kill_foreground(self) -> bool:
        """SIGKILL the foreground process group of the pty, if it is not the shell."""
        if self._fd is None or self._proc is None:
            return False
        try:
            group = os.tcgetpgrp(self._fd)
        except OSError:
            return False
        if group <= 0 or group == self._proc.pid:
            return False
        try:
            os.killpg(group, signal.SIGKILL)
        except OSError:
            return False
        return True

    async def close(self) -> None:
        """Hang up the pty, kill the shell and whatever it left in its session."""
        fd, self._fd = self._fd, None
        if fd is not None:
            close_fd(fd)
        proc = self._proc
        if proc is not None:
            kill_session_processes(proc.pid)
            try:
                proc.kill()
            except OSError:
                pass
            for _ in range(200):
                if proc.poll() is not None:
                    break
                await asyncio.sleep(0.005)
