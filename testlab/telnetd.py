"""A real telnet daemon on loopback: BusyBox ``telnetd`` (:class:`TelnetServer`).

``login=True`` runs the real ``/bin/login`` on the session's pty, so the client
sees ``<hostname> login:`` and ``Password:`` prompts; ``login=False`` gives an
already-logged-in root ``bash --login`` at once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from testlab._util import (
    PASSWORD,
    PASSWORD_USER,
    ConsoleServerProcess,
    LabError,
    TcpServerProcess,
    descendants,
    ensure_password_user,
    spawn,
)

__all__ = ["PASSWORD", "PASSWORD_USER", "TelnetServer", "busybox_path"]

LOGIN = "/bin/login"
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_SHELL_WRAPPER = """#!/bin/sh
# testlab: an already-logged-in root shell for a telnet/serial session
cd /root 2>/dev/null || cd /
exec env -i TERM="${TERM:-vt100}" HOME=/root USER=root LOGNAME=root SHELL=/bin/bash \\
    PATH=%(path)s LANG=C.UTF-8 /bin/bash --login
"""

# /bin/login on its own pty. Input that arrives in the session's first 0.1 s (typed
# before the session existed; telnetd relays it when it sets the session up) is held
# and written once login has prompted and flushed its type-ahead; later input passes.
_LATE_TYPE_AHEAD_LOGIN = """#!%(python)s -IS
import os, pty, select, termios, time, tty
tty.setraw(0, termios.TCSANOW)  # the inner pty does the line discipline (echo, CR/NL)
pid, fd = pty.fork()
if pid == 0:
    os.execv("%(login)s", ["login"])
hold_until = time.monotonic() + 0.1
held, seen, prompted = b"", b"", False
while True:
    ready = select.select([0, fd], [], [])[0]
    if fd in ready:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        os.write(1, data)
        seen += b"" if prompted else data
        if not prompted and b"login: " in seen:
            prompted = True
            time.sleep(0.05)  # login flushes type-ahead right after printing its prompt
            os.write(fd, held)
    if 0 in ready:
        data = os.read(0, 4096)
        if not data:
            break
        if prompted or time.monotonic() > hold_until:
            os.write(fd, data)
        else:
            held += data
"""


def busybox_path() -> str:
    """Path of a busybox binary that has ``telnetd`` (busybox-static on Debian)."""
    for candidate in ("/bin/busybox", "/usr/bin/busybox", shutil.which("busybox") or ""):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise LabError("busybox not found: run scripts/install-system-deps (busybox-static)")


def write_shell_wrapper(path: Path) -> Path:
    """Write the login=False shell wrapper script to ``path`` (mode 0755); return it."""
    path.write_text(_SHELL_WRAPPER % {"path": _PATH})
    path.chmod(0o755)
    return path


class TelnetServer(ConsoleServerProcess, TcpServerProcess):
    """BusyBox ``telnetd -F -p PORT -b ADDRESS -l PROGRAM`` on loopback.

    ``login=True``: PROGRAM is ``/bin/login``; log in as :data:`PASSWORD_USER`
    with :data:`PASSWORD` (created lazily when root). A wrong password answers
    ``Login incorrect`` and a new ``login:`` prompt (after login's ~3 s fail delay).
    ``login=False``: PROGRAM is a wrapper that execs a root ``bash --login``.
    ``login_delay``: seconds the console stays silent, already taking input, before it
    prints its login prompt (a login slowed down by a busy console server).
    ``late_type_ahead``: input typed before ``login`` prompts reaches it only after its
    prompt and type-ahead flush (the real ``/bin/login`` on a relayed pty): what a busy
    telnetd does when it relays a newline typed before the session existed. ``login``
    reads that newline as an empty user name and fails it after its fail delay.
    ``program``: the text of a script telnetd runs for each connection instead (on its
    pty, as root): a device of the test's own making, a login dialogue then a shell.
    ``port=None`` picks a free port. Every connection gets its own pty and
    session; the session processes are children of the daemon, so
    :meth:`stop`/:meth:`kill` end them all.
    """

    log_name = "telnetd.log"
    daemon_name = "telnetd"

    def __init__(
        self,
        address: str = "127.0.0.20",
        port: int | None = None,
        *,
        login: bool = True,
        login_delay: float = 0.0,
        late_type_ahead: bool = False,
        program: str | None = None,
        startup_timeout: float = 10.0,
    ) -> None:
        self.program = program
        self.login = login
        self.login_delay = login_delay
        self.late_type_ahead = late_type_ahead
        self.startup_timeout = startup_timeout
        self._listen_on(address, port, "telnetd")

    def session_pids(self) -> list[int]:
        """PIDs of the processes of open telnet sessions (login, shells, commands)."""
        return descendants(self._proc.pid) if self.running else []  # type: ignore[union-attr]

    def __repr__(self) -> str:
        mode = "login" if self.login else "shell"
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"<TelnetServer {self._address}:{self._port} {mode} {state}>"

    def _program(self) -> str:
        if self.program is not None:  # a device of the test's making: its own script
            script = self._workdir / "device"
            script.write_text(self.program)
            script.chmod(0o755)
            return str(script)
        if self.login:
            if os.geteuid() == 0:
                ensure_password_user()
            if self.late_type_ahead:
                wrapper = self._workdir / "late-type-ahead-login"
                wrapper.write_text(_LATE_TYPE_AHEAD_LOGIN % {"python": sys.executable, "login": LOGIN})
                wrapper.chmod(0o755)
                return str(wrapper)
            if not self.login_delay:
                return LOGIN
            # Input typed during the delay waits for the prompt's read, as with a
            # login that took its terminal and has not prompted yet.
            wrapper = self._workdir / "slow-login"
            wrapper.write_text(
                f"#!/bin/sh\nsleep {self.login_delay}\nuser=\n"
                'while [ -z "$user" ]; do printf \'%s login: \' "$(hostname)"; read -r user || exit 1; done\n'
                f'exec {LOGIN} "$user"\n'
            )
            wrapper.chmod(0o755)
            return str(wrapper)
        return str(write_shell_wrapper(self._workdir / "shell"))

    def _launch(self) -> subprocess.Popen:
        env = {"PATH": _PATH, "HOME": "/root", "LANG": "C.UTF-8"}
        argv = [busybox_path(), "telnetd", "-F", "-p", str(self._port), "-b", self._address]
        argv += ["-l", self._program()]
        with self.log_path.open("a") as handle:
            handle.write(f"--- testlab: {' '.join(argv)} at {time.ctime()}\n")
        self._proc = spawn(argv, log_path=self.log_path, env=env, cwd="/")
        return self._proc
