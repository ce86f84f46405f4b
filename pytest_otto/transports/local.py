"""A local ``bash``: on pipes (the default) or on a pseudo-terminal (``pty=True``).

Either way the shell leads a session of its own (``setsid``), so nothing sent to
it reaches pytest, and closing kills every process left in that session; so does
the end of this process, however it ends (`pytest_otto.transports.reaper`).

**Pipes** (the default): a non-interactive ``bash --norc --noprofile`` reading
its commands from a pipe, with stdout and stderr on one pipe, the way ``ssh host
cmd`` runs a shell (and the SSH transport's default). No terminal means no line
discipline and no job control: output comes in pipe-sized reads (100 MB runs at
several times a pty's rate) and a shell opens in a few milliseconds; a short
command costs about what it does on a pty, as bash reads a pipe one byte at a
time. A timeout sends SIGINT to the shell's process
group: the command and its children get it, the shell runs a no-op ``trap : INT``
(see `pytest_otto.session`) and lives on, and background jobs, which a shell
without job control starts with SIGINT ignored, are left alone, as with Ctrl-C
on a terminal. A command that ignores SIGINT is then hard-killed: every process
of the shell's session that started after the command was sent (its children,
grandchildren, its own background jobs), never the shell and never jobs that
earlier commands left running.

**Pty** (``pty=True``): an interactive ``bash`` on a pty with job control, for
programs that want a terminal. Every command runs in its own process group, Ctrl-C
reaches exactly that group, the hard kill is SIGKILL to the pty's foreground group.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import fcntl
import math
import os
import pty
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

from .base import ByteSink, Transport, close_fd, write_some, write_to_fd
from .reaper import forget_session, watch_session

__all__ = [
    "DEFAULT_PTY_SHELL",
    "DEFAULT_SHELL",
    "LocalShellTransport",
    "SessionProcess",
    "kill_session_processes",
    "session_processes",
    "spawn_on_pty",
]

#: The shell on pipes: non-interactive, no start-up files.
DEFAULT_SHELL = ("bash", "--norc", "--noprofile")
#: The shell on a pty: interactive (job control), no start-up files, no readline.
DEFAULT_PTY_SHELL = ("bash", "--norc", "--noprofile", "--noediting", "-i")

#: Pipe capacity asked for the shell's output (the kernel's default is 64 KiB).
OUTPUT_PIPE_SIZE = 1 << 20
#: Bytes asked per read. Small on purpose: ``os.read`` allocates the whole size
#: first, and with glibc a buffer of 256 KiB or more costs about 15 us per call,
#: several times a short command's own cost. Bulk output is read in a loop.
READ_SIZE = 1 << 16
#: Reads per wake-up at most, so bulk output reaches the session in large steps.
READS_PER_WAKEUP = 16
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _take_controlling_tty() -> None:  # runs in the child between fork and exec
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def spawn_on_pty(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None,
    cwd: str | None,
    size: tuple[int, int] | None = None,
) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``argv`` on a new pty, leading a session of its own with the pty as its terminal.

    ``size`` is ``(columns, rows)`` (none: the kernel's 0x0). Returns the process and
    the pty's master side, non-blocking.
    """
    master, slave = pty.openpty()
    try:
        if size is not None:
            columns, rows = size
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        proc = subprocess.Popen(
            list(argv),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
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
    return proc, master


class SessionProcess(NamedTuple):
    """One process of a session, as /proc shows it."""

    pid: int
    ppid: int
    #: start time in clock ticks since boot
    started: int


def session_processes(sid: int) -> list[SessionProcess]:
    """Every process of session ``sid``."""
    found: list[SessionProcess] = []
    try:
        entries = os.listdir("/proc")
    except OSError:  # no procfs: nothing can be found
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 19 and int(fields[3]) == sid:
            found.append(SessionProcess(int(entry), int(fields[1]), int(fields[19])))
    return found


def kill_session_processes(sid: int, sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to every process of session ``sid`` (leftover background jobs)."""
    for proc in session_processes(sid):
        try:
            os.kill(proc.pid, sig)
        except OSError:
            pass


def _boot_ticks(monotonic: float) -> int:
    """A ``time.monotonic()`` instant in /proc's start-time unit (clock ticks since boot)."""
    if math.isinf(monotonic):
        return -1 if monotonic < 0 else 1 << 62
    boot = time.clock_gettime(time.CLOCK_BOOTTIME) - (time.monotonic() - monotonic)
    return math.floor(boot * _CLOCK_TICKS)


class _PidMarks:
    """The last PID the kernel handed out, noted at each write to the shell.

    Start times in /proc count 10 ms ticks: a job started by one command and the
    next command, sent a millisecond later, share a tick. PIDs are handed out in
    order, so "created after the command was sent" is "PID above the last PID
    handed out before it" (one wrap-around of the PID counter is accounted for).
    Reading the kernel's counter costs about a microsecond per write.
    """

    def __init__(self) -> None:
        try:
            self._fd: int | None = os.open("/proc/sys/kernel/ns_last_pid", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self._fd = None
        self._marks: collections.deque[tuple[float, int]] = collections.deque(maxlen=16)

    def last_pid(self) -> int | None:
        """The PID most recently handed out, if the kernel says."""
        if self._fd is None:
            return None
        try:
            return int(os.pread(self._fd, 32, 0))
        except (OSError, ValueError):
            return None

    def note(self) -> None:
        """Remember the counter now (before a write)."""
        if self._fd is not None and (pid := self.last_pid()) is not None:
            self._marks.append((time.monotonic(), pid))

    def since(self, moment: float) -> Callable[[SessionProcess], bool] | None:
        """A test for "created at or after ``moment``", or None if no mark reaches back."""
        mark = next((pid for at, pid in self._marks if at >= moment), None)
        now = self.last_pid()
        if mark is None or now is None or not self._marks or self._marks[0][0] > moment:
            return None
        if now >= mark:
            return lambda proc: mark < proc.pid <= now
        return lambda proc: proc.pid > mark or proc.pid <= now  # the counter wrapped

    def close(self) -> None:
        """Release the counter's file."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


class LocalShellTransport(Transport):
    """Spawns the shell on pipes, or on a pty with ``pty=True``, in a session of its own."""

    can_kill_foreground = True

    def __init__(
        self,
        argv: Sequence[str] | None = None,
        *,
        pty: bool = False,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> None:
        super().__init__()
        self.tty = pty
        self.argv = list(argv) if argv is not None else list(DEFAULT_PTY_SHELL if pty else DEFAULT_SHELL)
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self._fd: int | None = None  # what we read: the pty master, or the output pipe
        self._stdin: int | None = None  # what we write on pipes (on a pty: ``_fd``)
        self._pidfd: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._pid_marks: _PidMarks | None = None  # on pipes
        self._end_reporter: asyncio.Task[None] | None = None  # held: the loop keeps only weak refs
        self._eof_sent = False

    async def open(self, sink: ByteSink) -> None:
        """Spawn the shell."""
        self.sink = sink
        env = dict(os.environ if self.env is None else self.env)
        env["TERM"] = "dumb"
        if self.tty:
            self._spawn_on_pty(env)
        else:
            self._spawn_on_pipes(env)
        assert self._fd is not None and self._proc is not None
        watch_session(self._proc.pid)  # dies with this process, even one ended by os._exit
        loop = asyncio.get_running_loop()
        loop.add_reader(self._fd, self._on_readable)
        try:  # the shell's exit is the end even while a background job holds its output open
            self._pidfd = os.pidfd_open(self._proc.pid)
        except (AttributeError, OSError):
            self._pidfd = None
        else:
            loop.add_reader(self._pidfd, self._on_exit)

    def _spawn_on_pty(self, env: dict[str, str]) -> None:
        self._proc, master = spawn_on_pty(self.argv, env=env, cwd=self.cwd)
        self._fd = self._stdin = master

    def _spawn_on_pipes(self, env: dict[str, str]) -> None:
        in_read, in_write = os.pipe2(os.O_CLOEXEC)
        out_read, out_write = os.pipe2(os.O_CLOEXEC)
        try:
            fcntl.fcntl(out_read, _F_SETPIPE_SZ, OUTPUT_PIPE_SIZE)
        except OSError:
            pass  # above /proc/sys/fs/pipe-max-size: the default size works too
        try:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=in_read,
                stdout=out_write,
                stderr=out_write,  # one stream, in arrival order, as on a terminal
                cwd=self.cwd,
                env=env,
                start_new_session=True,  # its own process group: SIGINT to it never reaches pytest
                close_fds=True,
            )
        except BaseException:
            os.close(in_write)
            os.close(out_read)
            raise
        finally:
            os.close(in_read)
            os.close(out_write)
        os.set_blocking(in_write, False)
        os.set_blocking(out_read, False)
        self._fd, self._stdin = out_read, in_write
        self._pid_marks = _PidMarks()

    def _read(self) -> bytes | None:
        """One non-blocking read: data, ``b""`` at the end, ``None`` if nothing is there yet."""
        fd = self._fd
        if fd is None:
            return b""
        try:
            return os.read(fd, READ_SIZE)
        except BlockingIOError:
            return None
        except OSError as exc:  # EIO: every slave fd closed, the shell is gone
            if exc.errno not in (errno.EIO, errno.EBADF):
                raise
            return b""

    def _on_readable(self) -> None:
        for _ in range(READS_PER_WAKEUP):
            data = self._read()
            if data is None:
                return
            if not data:
                break
            assert self.sink is not None
            self.sink.feed(data)
            if len(data) < READ_SIZE:
                return  # drained (a full read may have more behind it)
        else:
            return
        self._stop_watching()
        self._end_reporter = asyncio.get_running_loop().create_task(self._report_exit())

    def _on_exit(self) -> None:
        """The shell exited: hand on what it printed last, then the end."""
        for _ in range(64):  # bounded: a background job may still be writing
            data = self._read()
            if not data or self.sink is None:
                break
            self.sink.feed(data)
        self._stop_watching()
        self._end_reporter = asyncio.get_running_loop().create_task(self._report_exit())

    def _stop_watching(self) -> None:
        loop = asyncio.get_running_loop()
        if self._fd is not None:
            loop.remove_reader(self._fd)
        pidfd, self._pidfd = self._pidfd, None
        if pidfd is not None:
            close_fd(pidfd)

    async def _report_exit(self) -> None:
        proc = self._proc
        status: int | None = None
        if proc is not None:
            for _ in range(100):  # the shell closed its output; it exits within moments
                status = proc.poll()
                if status is not None:
                    break
                await asyncio.sleep(0.01)
        if status is not None and status < 0:
            status = 128 - status
        if not self._eof_sent and self.sink is not None:
            self._eof_sent = True
            self.sink.feed_eof(status)

    def write_nowait(self, data: bytes) -> int:
        """Write what the pty or the pipe takes now."""
        if self._pid_marks is not None:
            self._pid_marks.note()
        return write_some(self._stdin, data, "local shell")

    def read_pending(self) -> None:
        """Read what the shell already printed (see `Transport.read_pending`)."""
        if self._fd is not None and self._end_reporter is None:
            self._on_readable()

    async def write(self, data: bytes) -> None:
        """Write all of ``data``, waiting while the pty's or the pipe's buffer is full."""
        if self._pid_marks is not None:
            self._pid_marks.note()
        await write_to_fd(lambda: self._stdin, data, "local shell")

    async def interrupt(self) -> None:
        """Ctrl-C on a pty; on pipes, SIGINT to the shell's process group."""
        if self.tty:
            await super().interrupt()
            return
        if self._proc is None or self._stdin is None:
            raise ConnectionResetError("local shell is closed")
        try:
            os.killpg(self._proc.pid, signal.SIGINT)
        except ProcessLookupError:
            raise ConnectionResetError("local shell is gone") from None

    async def kill_foreground(self, since: float = -math.inf) -> bool:
        """SIGKILL the running command, never the shell; True if something was killed.

        On a pty: the pty's foreground process group, if it is not the shell's.

        On pipes there is no foreground group; the command is every process of the
        shell's session created after it was sent (``since``), except the shell and
        except what descends from an older process. So jobs that earlier commands
        left running, and the children they start meanwhile, survive, as they would
        on a terminal; the command's own background jobs go with it. Creation order
        is the kernel's PID counter noted at each write (`_PidMarks`), or /proc's
        start times (10 ms ticks) when no note reaches back that far.
        """
        proc = self._proc
        if proc is None or self._fd is None:
            return False
        if not self.tty:
            return self._kill_created_since(proc.pid, since)
        try:
            group = os.tcgetpgrp(self._fd)
        except OSError:
            return False
        if group <= 0 or group == proc.pid:
            return False
        try:
            os.killpg(group, signal.SIGKILL)
        except OSError:
            return False
        return True

    def _kill_created_since(self, shell: int, since: float) -> bool:
        procs = {p.pid: p for p in session_processes(shell)}
        is_new = self._pid_marks.since(since) if self._pid_marks is not None else None
        if is_new is None:
            after = _boot_ticks(since)
            is_new = lambda p: p.started >= after  # noqa: E731

        def of_the_command(p: SessionProcess) -> bool:
            while p.pid != shell:
                if not is_new(p):
                    return False
                parent = procs.get(p.ppid)
                if parent is None:  # orphaned (re-parented outside the session)
                    return True
                p = parent
            return True

        killed = False
        for p in procs.values():
            if p.pid != shell and of_the_command(p):
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except OSError:
                    continue
                killed = True
        return killed

    async def close(self) -> None:
        """Hang up, kill the shell and whatever it left in its session."""
        if self._fd is not None:
            self._stop_watching()
        fd, self._fd = self._fd, None
        stdin, self._stdin = self._stdin, None
        if fd is not None:
            close_fd(fd)
        if stdin is not None and stdin != fd:
            close_fd(stdin)
        marks, self._pid_marks = self._pid_marks, None
        if marks is not None:
            marks.close()
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
            forget_session(proc.pid)
