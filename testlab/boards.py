"""Virtual boards: QEMU (TCG) running Debian's U-Boot or Debian's Linux (:class:`Board`).

A board is one ``qemu-system-x86_64`` process, started frozen (``-S``: the power
switch is off) with

- its serial console on a **telnet** server, a **raw TCP** server, or a **pty**
  (``console=``), on loopback; the client attaches first and then switches the
  board on, so no output is missed;
- two QMP monitors on unix sockets: `qmp_path` is the lab's power switch (what a
  lab file's ``[hosts.X.power] qmp = "unix:..."`` names), `Board.qmp` uses its own,
  so the two never wait for each other.

``kind="linux"``: ``-M pc``, SeaBIOS, the PVH ``vmlinux`` and a busybox initramfs
with getty/login on ttyS0 (``login:`` about 2.5-4 s after power-on on TCG; attach at
any moment). ``kind="uboot"``: the 32-bit x86 U-Boot from ``u-boot-qemu`` with the
bzImage and initramfs on fw_cfg; at its ``=>`` prompt ``qfw load`` and ``zboot`` boot
Linux (`UBOOT_BOOT`). U-Boot busy-polls its UART (a core at 100%): `freeze` a board
nobody talks to.

Boards run TCG only: KVM on these machines is a PVM backend that cannot run stock
kernels (``../shared/boards/qemu-recipe.md``). At most `MAX_BOARDS` (env
``OTTO_BOARDS_MAX``, default 2) boards run at once on the machine, across processes:
`start` waits for a slot. `stop` (and interpreter exit) kills the process.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Self

from testlab._util import (
    LabError,
    ServerProcess,
    free_port,
    make_tempdir,
    register_for_cleanup,
    spawn,
    wait_listening,
)
from testlab.board_images import BOARD_USERS, BoardImages, ensure_images

__all__ = ["BOARD_USERS", "MAX_BOARDS", "UBOOT_BOOT", "Board", "qemu_available"]

QEMU = "/usr/bin/qemu-system-x86_64"
UBOOT_ROM = Path("/usr/lib/u-boot/qemu-x86/u-boot.rom")
#: What boots Linux from the x86 U-Boot prompt (its default boot targets have no qfw).
UBOOT_BOOT = (
    "qfw load ${kernel_addr_r} ${ramdisk_addr_r}; zboot ${kernel_addr_r} - ${ramdisk_addr_r} ${filesize}"
)
MAX_BOARDS = int(os.environ.get("OTTO_BOARDS_MAX", "2"))
_SLOTS_DIR = Path("/tmp/otto-board-slots")
CONSOLES = ("telnet", "tcp", "pty")
KINDS = ("linux", "uboot")


def qemu_available() -> str | None:
    """Why boards cannot run here (None when they can)."""
    if not os.path.exists(QEMU):
        return f"{QEMU} is missing: run scripts/install-system-deps"
    if not UBOOT_ROM.exists():
        return f"{UBOOT_ROM} is missing (package u-boot-qemu): run scripts/install-system-deps"
    try:
        ensure_images()
    except LabError as exc:
        return str(exc)
    return None


class _Slot:
    """One of `MAX_BOARDS` machine-wide slots (a flock on a file), held while a board runs."""

    def __init__(self) -> None:
        self._handle: Any = None

    def acquire(self, timeout: float) -> None:
        _SLOTS_DIR.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        while True:
            for index in range(MAX_BOARDS):
                handle = open(_SLOTS_DIR / f"slot{index}", "a+b")  # noqa: SIM115
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    handle.close()
                    continue
                self._handle = handle
                return
            if time.monotonic() > deadline:
                raise LabError(f"no board slot free after {timeout:.0f}s ({MAX_BOARDS} boards run already)")
            time.sleep(0.1)

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()


class Board(ServerProcess):
    """One QEMU board, frozen until switched on. See the module's docstring.

    `stop` (SIGTERM, then SIGKILL), `kill`, `remove`, ``with Board(...) as board:``,
    `running`, `pid`, `log` come from `ServerProcess`.
    """

    log_name = "qemu.log"

    def __init__(
        self,
        kind: str = "linux",
        *,
        console: str = "telnet",
        address: str = "127.0.0.1",
        memory: int = 256,
        append: str = "console=ttyS0 panic=-1 quiet no_timer_check",
        slot_timeout: float = 600.0,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if console not in CONSOLES:
            raise ValueError(f"console must be one of {CONSOLES}, not {console!r}")
        self.kind = kind
        self.console = console
        self.address = address
        self.port: int | None = None
        self.memory = memory
        self.append = append
        self.slot_timeout = slot_timeout
        self.images: BoardImages | None = None
        self._workdir = make_tempdir("board")
        self._proc: subprocess.Popen[bytes] | None = None
        self._slot = _Slot()
        self._device: Path | None = None
        register_for_cleanup(self)

    def __repr__(self) -> str:
        state = f"pid={self._proc.pid}" if self.running and self._proc else "stopped"
        return f"<Board {self.kind} console={self.console} {state}>"

    # -- where things are ------------------------------------------------------------------

    @property
    def qmp_path(self) -> Path:
        """The QMP socket the lab's power control uses (``qmp = "unix:<this>"``)."""
        return self._workdir / "power.qmp"

    @property
    def _own_qmp(self) -> Path:
        return self._workdir / "testlab.qmp"

    @property
    def device(self) -> Path:
        """The pty of a ``console="pty"`` board (a stable symlink in the work dir)."""
        if self._device is None:
            raise LabError(f"{self!r} has no pty console")
        return self._device

    @property
    def user(self) -> str:
        """The user the lab logs in as."""
        return "root"

    @property
    def password(self) -> str:
        """That user's password."""
        return BOARD_USERS["root"]

    # -- life ----------------------------------------------------------------------------

    def _argv(self, images: BoardImages) -> list[str]:
        argv = [QEMU, "-accel", "tcg", "-m", str(self.memory), "-smp", "1", "-no-user-config"]
        argv += ["-nodefaults", "-nographic", "-monitor", "none", "-nic", "none", "-S"]
        if self.kind == "linux":
            argv += ["-M", "pc", "-kernel", str(images.vmlinux)]
        else:
            argv += ["-M", "pc", "-bios", str(UBOOT_ROM), "-kernel", str(images.bzimage)]
        argv += ["-initrd", str(images.initramfs), "-append", self.append]
        if self.console == "pty":
            argv += ["-chardev", "pty,id=ser0"]
        else:
            telnet = "on" if self.console == "telnet" else "off"
            argv += [
                "-chardev",
                f"socket,id=ser0,host={self.address},port={self.port},server=on,wait=off,telnet={telnet}",
            ]
        argv += ["-serial", "chardev:ser0"]
        for path in (self.qmp_path, self._own_qmp):
            argv += ["-qmp", f"unix:{path},server=on,wait=off"]
        return argv

    def start(self, timeout: float = 20.0) -> Self:
        """Start QEMU frozen (power off) once a slot is free; bounded wait until it listens."""
        if self.running:
            return self
        self.images = ensure_images()
        self._slot.acquire(self.slot_timeout)
        try:
            for _attempt in range(5):
                if self._launch_qemu(timeout):
                    return self
            raise LabError(f"{self!r}: no free port for the console after 5 tries; log: {self._log_tail()}")
        except BaseException:
            self.stop()
            raise

    def _launch_qemu(self, timeout: float) -> bool:
        assert self.images is not None
        if self.console != "pty":
            self.port = free_port(self.address)
        for path in (self.qmp_path, self._own_qmp):
            path.unlink(missing_ok=True)
        self._proc = spawn(self._argv(self.images), log_path=self.log_path)
        deadline = time.monotonic() + timeout
        while not (self.qmp_path.exists() and self._own_qmp.exists()):
            if self._proc.poll() is not None:
                if "Address already in use" in self._log_tail():
                    return False
                raise LabError(f"qemu exited ({self._proc.returncode}) at start: {self._log_tail()}")
            if time.monotonic() > deadline:
                raise LabError(f"qemu made no QMP socket within {timeout:.0f}s: {self._log_tail()}")
            time.sleep(0.02)
        if self.console == "pty":
            self._link_pty()
        else:
            assert self.port is not None
            wait_listening([(self.address, self.port)], timeout=timeout, procs=[self._proc])
        return True

    def _link_pty(self) -> None:
        chardevs = self.qmp("query-chardev")
        pty = next(c["filename"] for c in chardevs if c["label"] == "ser0")
        link = self._workdir / "ttyBOARD"
        link.unlink(missing_ok=True)
        link.symlink_to(pty.removeprefix("pty:"))
        self._device = link

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-500:].strip()
        except OSError:
            return ""

    def _gone(self) -> None:
        """QEMU is gone (`stop`, `kill`): give its slot back."""
        self._slot.release()

    # -- QMP: the board's buttons ------------------------------------------------------------

    def qmp(self, command: str, timeout: float = 10.0) -> Any:
        """Run one QMP command on the testlab's own monitor; its ``return`` value.

        Through the library's client (`pytest_otto.power.qmp_execute`: the protocol lives
        in one place), on a loop of its own in a short-lived thread, so that sync code
        and async tests (whose loop runs in this thread) can both call it.
        """
        from pytest_otto.power import qmp_execute  # testlab's one use of the library

        exchange = qmp_execute(f"unix:{self._own_qmp}", command, timeout=timeout)
        with ThreadPoolExecutor(1, thread_name_prefix="testlab-qmp") as pool:
            (result,) = pool.submit(asyncio.run, exchange).result()
        return result

    def power_on(self) -> None:
        """Let the frozen board run (QMP ``cont``)."""
        self.qmp("cont")

    def freeze(self) -> None:
        """Stop the CPU where it is (QMP ``stop``): a hung board, or an idle U-Boot at 0% CPU."""
        self.qmp("stop")

    def status(self) -> str:
        """QMP ``query-status``: ``running``, ``paused``, ``prelaunch``, ..."""
        return str(self.qmp("query-status")["status"])


def wait_for_text(read: Any, pattern: str, timeout: float) -> str:
    """Read from ``read()`` (bytes, or b"" for nothing yet) until ``pattern`` is seen; bounded."""
    seen = b""
    deadline = time.monotonic() + timeout
    regex = re.compile(pattern.encode())
    while not regex.search(seen):
        if time.monotonic() > deadline:
            raise LabError(f"{pattern!r} not seen within {timeout:.0f}s; last: {seen[-300:]!r}")
        seen += read()
    return seen.decode(errors="replace")
