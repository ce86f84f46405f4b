"""A real (pty-based) serial console: :class:`SerialConsole`.

The client opens :attr:`SerialConsole.device` (a symlink ``<tmpdir>/ttyDUT0``
to a ``/dev/pts/N``, raw, no local echo) exactly as it would open
``/dev/ttyUSB0``. Behind it a relay process feeds a second pty that is the
"DUT console": ``login=True`` runs the real ``/bin/login`` (respawned after
every logout, like getty); ``login=False`` runs a root ``bash --login``
(respawned after every ``exit``). The client's own baud rate settings are accepted
and ignored; ``baud=115200`` makes the relay itself pace both directions at that
rate (10 bits a byte), as a lab's relay that throttles its lines does.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from testlab._util import (
    PASSWORD,
    PASSWORD_USER,
    ConsoleServerProcess,
    LabError,
    _signal_all,
    ensure_password_user,
    make_tempdir,
    register_for_cleanup,
    spawn,
)
from testlab.telnetd import write_shell_wrapper

__all__ = ["PASSWORD", "PASSWORD_USER", "SerialConsole"]

_RELAY = Path(__file__).with_name("_serial_relay.py")


class SerialConsole(ConsoleServerProcess):
    """A serial line on a pty pair with a respawning login (or shell) behind it.

    Only one client at a time is expected (like a real UART). Output the
    console produces while no client has the device open is discarded.
    """

    log_name = "relay.log"

    def __init__(
        self, *, login: bool = True, name: str = "ttyDUT0", startup_timeout: float = 10.0, baud: int = 0
    ) -> None:
        if baud < 0:
            raise LabError(f"serial console {name}: baud must be positive or 0 (unpaced), not {baud}")
        self.login = login
        #: The line's pace in bits a second (0: as fast as the ptys).
        self.baud = baud
        self.name = name
        self.startup_timeout = startup_timeout
        self._workdir = make_tempdir("serial")
        self._proc: subprocess.Popen | None = None
        register_for_cleanup(self)

    @property
    def device(self) -> Path:
        """Path the client opens (symlink to the client pty slave)."""
        return self._workdir / self.name

    def __repr__(self) -> str:
        mode = "login" if self.login else "shell"
        state = f"pid={self.pid}" if self.running else "stopped"
        pace = f" {self.baud} baud" if self.baud else ""
        return f"<SerialConsole {self.device} {mode}{pace} {state}>"

    def start(self) -> SerialConsole:
        """Start the relay and wait (bounded) until :attr:`device` exists. Returns self."""
        if self.running:
            raise LabError(f"{self!r} already running")
        if self.login and os.geteuid() == 0:
            ensure_password_user()
        wrapper = write_shell_wrapper(self._workdir / "shell")
        self.device.unlink(missing_ok=True)
        mode = "login" if self.login else "shell"
        argv = [sys.executable, "-u", str(_RELAY), str(self.device), mode, str(wrapper), str(self.baud)]
        self._proc = spawn(argv, log_path=self.log_path, cwd="/")
        deadline = time.monotonic() + self.startup_timeout
        while not ("READY" in self.log and self.device.exists()):
            if self._proc.poll() is not None:
                raise LabError(f"serial relay exited ({self._proc.returncode}):\n{self.log[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise LabError(f"serial device {self.device} not ready after {self.startup_timeout:.1f}s")
            time.sleep(0.01)
        return self

    @property
    def console_tty(self) -> Path | None:
        """The DUT side's pty (``/dev/pts/N``), from the relay's READY line."""
        match = re.search(r"^READY .* console (\S+)$", self.log, re.MULTILINE)
        return Path(match.group(1)) if match else None

    def shells(self) -> dict[int, str]:
        """The processes on the DUT's console other than the getty and login (pid: name).

        Non-empty between a login and its logout: a test that found some left over
        found the line logged in by someone before it.
        """
        tty = self.console_tty
        if tty is None:
            return {}
        try:
            rdev = tty.stat().st_rdev
        except OSError:
            return {}
        found: dict[int, str] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            end = stat.rindex(")")  # comm may hold spaces and parentheses
            comm, fields = stat[stat.index("(") + 1 : end], stat[end + 2 :].split()
            if int(fields[4]) == rdev and comm not in ("agetty", "login"):
                found[int(entry)] = comm
        return found

    def end_shells(self, timeout: float = 10.0) -> list[int]:
        """Kill whatever is logged in on the console (the getty respawns); return the pids."""
        pids = list(self.shells())
        for sig in (signal.SIGHUP, signal.SIGKILL):
            _signal_all(pids, sig)
            deadline = time.monotonic() + timeout / 2
            while self.shells() and time.monotonic() < deadline:
                time.sleep(0.05)
            if not self.shells():
                break
        return pids

    def _gone(self) -> None:
        """The line is dead: its device link goes too."""
        self.device.unlink(missing_ok=True)
