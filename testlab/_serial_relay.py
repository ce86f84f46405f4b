"""Serial line emulator process (run as a script by :class:`testlab.serial.SerialConsole`).

Two pty pairs joined by this relay::

    client --open--> LINK -> /dev/pts/A (raw, no echo)   [the "serial port"]
                     master A  <==relay==>  master B
                     /dev/pts/B (cooked, echo, CRLF)      [the DUT's console]
                     <-- login / shell, respawned after each exit

Output produced while no client has the device open is discarded (like a real
UART with nobody listening). While a client has it open, the line behaves as if it
had hardware flow control: a slow reader pauses the console instead of losing bytes.
With a baud rate (``BAUD`` > 0) the relay paces both directions as a UART would:
each byte takes 10 bit times (start bit, 8 data bits, stop bit), so 115200 baud
carries 11520 bytes a second each way (`Pacer`). Without one the line is as fast
as the ptys. Stand-alone on purpose: it imports nothing from ``testlab``.
Usage: ``python _serial_relay.py LINK login|shell SHELL_WRAPPER [BAUD]``.
"""

from __future__ import annotations

import errno
import os
import select
import signal
import sys
import termios
import time
import tty

RESPAWN_DELAY = 0.2
PRESENCE_POLL = 0.05
#: Bit times per byte on the wire: start bit, 8 data bits, stop bit (8N1).
BITS_PER_BYTE = 10


class Pacer:
    """One direction of a line at a fixed byte rate (``rate`` 0: unpaced).

    Bytes queued on an idle line start crossing it at once, one byte time each, and
    bytes queued behind them follow without a gap. A byte is released only once its
    last bit would have left the wire, so the far end never gets it earlier than on a
    real UART. The clock is passed in, so the arithmetic is checked without one
    (``tests/test_testlab.py``).
    """

    #: Bytes released together at most, as a USB serial adapter's buffer fills before
    #: it is read: the relay wakes once per this many bytes instead of once per byte.
    #: The last bytes of a burst leave as soon as they have crossed.
    FIFO = 64

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._start: float | None = None  # when the current burst began to cross
        self._sent = 0  # bytes of that burst released so far

    def allowance(self, now: float, pending: int) -> int:
        """How many of ``pending`` queued bytes (oldest first) have crossed by ``now``."""
        if not self.rate or not pending:
            return pending
        if self._start is None:
            self._start = now
        crossed = int((now - self._start) * self.rate + 1e-6) - self._sent
        return max(0, min(pending, crossed))

    def sent(self, count: int, left: int) -> None:
        """``count`` bytes were passed on and ``left`` are still queued."""
        self._sent += count
        if not left:
            self._start, self._sent = None, 0  # the line is idle: no credit is saved

    def wait(self, now: float, pending: int) -> float | None:
        """Seconds until the next `FIFO` bytes of ``pending`` have crossed (None: no wait)."""
        if not self.rate or not pending:
            return None
        start = now if self._start is None else self._start
        return max(0.0, start + (self._sent + min(pending, self.FIFO)) / self.rate - now)


def _spawn_console(tty_name: str, argv: list[str], saved_attrs: list) -> int:
    pid = os.fork()
    if pid == 0:  # child: new session, the console pty becomes its controlling tty
        try:
            os.setsid()
            fd = os.open(tty_name, os.O_RDWR)
            termios.tcsetattr(fd, termios.TCSANOW, saved_attrs)
            for target in (0, 1, 2):
                os.dup2(fd, target)
            os.closerange(3, 65536)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            env = {
                "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM": "vt100",
                "LANG": "C.UTF-8",
            }
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    return pid


def _kill_session(pid: int) -> None:
    for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGCONT):
        try:
            os.killpg(pid, sig)
        except OSError:
            pass


def main() -> int:
    link, mode, wrapper = sys.argv[1], sys.argv[2], sys.argv[3]
    baud = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    argv = [wrapper]

    client_master, client_slave = os.openpty()
    client_name = os.ttyname(client_slave)
    tty.setraw(client_slave)  # raw, no echo, no CRLF mangling: a plain UART
    console_master, console_slave = os.openpty()
    console_name = os.ttyname(console_slave)
    attrs = termios.tcgetattr(console_slave)
    attrs[0] |= termios.ICRNL | termios.IXON  # sane cooked console
    attrs[1] |= termios.OPOST | termios.ONLCR
    attrs[3] |= termios.ECHO | termios.ECHOE | termios.ECHOK | termios.ICANON | termios.ISIG | termios.IEXTEN
    termios.tcsetattr(console_slave, termios.TCSANOW, attrs)
    os.close(client_slave)  # keep only the master: EIO on read == no client attached
    for fd in (client_master, console_master):
        os.set_blocking(fd, False)

    tmp_link = f"{link}.tmp{os.getpid()}"
    os.symlink(client_name, tmp_link)
    os.replace(tmp_link, link)

    stopping = False

    def on_term(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    signal.signal(signal.SIGINT, on_term)

    if mode == "login":
        # real getty: issue + "<host> login: ", re-prompts on an empty line, then /bin/login
        argv = ["/sbin/agetty", "--noclear", "-8", "-L", console_name[len("/dev/") :], "vt100"]
    print(f"READY {link} -> {client_name} console {console_name}", flush=True)
    child = 0
    next_spawn = 0.0
    client_present = False
    last_presence_check = 0.0
    # Console output the client has not taken yet. While it is pending the relay stops
    # reading the console, so the console blocks instead of losing bytes: the line has
    # hardware flow control (RTS/CTS), so tests do not depend on the reader's speed.
    pending = bytearray()
    # Input from the client not yet across the line (paced at the baud rate).
    inbound = bytearray()
    to_client, to_console = Pacer(baud / BITS_PER_BYTE), Pacer(baud / BITS_PER_BYTE)
    try:
        while not stopping:
            now = time.monotonic()
            if child:
                done, _status = os.waitpid(child, os.WNOHANG)
                if done:
                    child = 0
                    next_spawn = now + RESPAWN_DELAY
            if not child and now >= next_spawn:
                child = _spawn_console(console_name, argv, attrs)
            if not client_present and now - last_presence_check >= PRESENCE_POLL:
                last_presence_check = now
                try:
                    inbound += os.read(client_master, 4096)
                    client_present = True
                except BlockingIOError:
                    client_present = True
                except OSError as exc:
                    if exc.errno != errno.EIO:
                        raise
            if pending and not client_present:
                pending.clear()  # nobody has the device open: output is lost, as on a real line
                to_client.sent(0, 0)
            out_ok = to_client.allowance(now, len(pending))
            if out_ok:  # a pty master is nearly always writable: try before asking select
                try:
                    written = os.write(client_master, pending[:out_ok])
                    del pending[:written]
                    to_client.sent(written, len(pending))
                    out_ok -= written
                except BlockingIOError:
                    pass
                except OSError:
                    client_present = False
                    out_ok = 0
            in_ok = to_console.allowance(now, len(inbound))
            console_full = False
            if in_ok:
                try:
                    written = os.write(console_master, inbound[:in_ok])
                except (BlockingIOError, InterruptedError):
                    written = 0
                except OSError:  # EIO: no console between two sessions; the input is lost
                    written = len(inbound)
                console_full = written < in_ok
                del inbound[:written]
                to_console.sent(written, len(inbound))
            readers = ([] if pending else [console_master]) + (
                [client_master] if client_present and len(inbound) < 4096 else []
            )
            # A client that takes output again wakes the relay for output already across
            # the line; otherwise the pacers say when the next bytes will be.
            writers = [client_master] if out_ok else []
            waits = [PRESENCE_POLL]
            if pending and not out_ok:
                waits.append(to_client.wait(now, len(pending)) or 0.0)
            if inbound:  # the console's input is full (try again soon), or paced
                waits.append(0.001 if console_full else to_console.wait(now, len(inbound)) or 0.0)
            try:
                ready, writable, _ = select.select(readers, writers, [], min(waits))
            except InterruptedError:
                continue
            if out_ok and client_master in writable:
                try:
                    written = os.write(client_master, pending[:out_ok])
                    del pending[:written]
                    to_client.sent(written, len(pending))
                except BlockingIOError:
                    pass
                except OSError:
                    client_present = False
            if console_master in ready:
                try:
                    data = os.read(console_master, 4096)
                except (BlockingIOError, InterruptedError):
                    data = b""
                except OSError:  # EIO: console slave closed between sessions
                    data = b""
                if data and client_present:
                    pending += data
            if client_present and client_master in ready:
                try:
                    inbound += os.read(client_master, 4096)
                except BlockingIOError:
                    pass
                except OSError as exc:
                    if exc.errno != errno.EIO:
                        raise
                    client_present = False  # client closed the device
    finally:
        if child:
            _kill_session(child)
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                done, _status = os.waitpid(child, os.WNOHANG)
                if done:
                    break
                time.sleep(0.02)
            else:
                os.killpg(child, signal.SIGKILL)
        try:
            if os.readlink(link) == client_name:
                os.unlink(link)
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
