"""Shared helpers for the test lab: ports, process trees, temp dirs, users.

Everything here is bounded: every wait takes a timeout and raises
:class:`LabError` when it expires.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Self

#: Password of :data:`PASSWORD_USER`; known to every test that needs it.
PASSWORD = "otto-Secret-42"
#: Name of the unprivileged test user (login shell: bash).
PASSWORD_USER = "ottopw"
#: A user whose sudo asks no password (NOPASSWD: ALL; scripts/install-system-deps), same password.
NOPASSWD_USER = "ottonp"


class LabError(RuntimeError):
    """A lab server could not be started, stopped or prepared."""


# ---------------------------------------------------------------- temp dirs


_OWNER_FILE = ".testlab-owner"
_swept = False


def _process_identity(pid: int) -> str | None:
    """``"<pid> <start time>"`` of a live process (start time guards against pid reuse)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    return f"{pid} {fields[19].decode()}"


def sweep_stale_tempdirs() -> None:
    """Delete testlab temp dirs whose owner process is gone (a run killed before cleanup)."""
    for path in Path(tempfile.gettempdir()).glob("testlab-*"):
        try:
            owner = (path / _OWNER_FILE).read_text().strip()
            pid = int(owner.split()[0])
        except (OSError, ValueError, IndexError):
            continue
        if _process_identity(pid) != owner:
            shutil.rmtree(path, ignore_errors=True)


def make_tempdir(prefix: str) -> Path:
    """Create a world-traversable (0755) temp dir, so non-root users can read keys lists.

    The dir records its owner process; the first call in a process deletes
    dirs left behind by dead owners.
    """
    global _swept
    if not _swept:
        _swept = True
        sweep_stale_tempdirs()
    path = Path(tempfile.mkdtemp(prefix=f"testlab-{prefix}-"))
    path.chmod(0o755)
    (path / _OWNER_FILE).write_text(_process_identity(os.getpid()) or str(os.getpid()))
    return path


def remove_tree(path: Path | None) -> None:
    """Remove a temp dir, ignoring errors."""
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------- ports


def free_port(address: str = "127.0.0.1") -> int:
    """Return a TCP port that is currently free on ``address`` (racy, but retried by callers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def accept_forever(sock: socket.socket, handle: Callable[[socket.socket], None]) -> threading.Thread:
    """Hand every connection ``sock`` accepts to ``handle``, in a daemon thread, until
    `stop_listening` closes it (a fake server of a test's making)."""

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            handle(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def stop_listening(sock: socket.socket) -> None:
    """Close a listening socket; shutdown() first wakes a thread blocked in accept() (Linux)."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def port_accepts(address: str, port: int, timeout: float = 0.5) -> bool:
    """Return True if a TCP connect to ``address:port`` succeeds."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(
    address: str,
    port: int,
    timeout: float = 10.0,
    proc: subprocess.Popen | None = None,
    what: str = "server",
) -> None:
    """Wait (bounded) until ``address:port`` accepts TCP connections.

    Raises :class:`LabError` if ``proc`` exits first or ``timeout`` expires.
    """
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise LabError(f"{what} exited ({proc.returncode}) before listening on {address}:{port}")
        if port_accepts(address, port, timeout=0.5):
            return
        if time.monotonic() > deadline:
            raise LabError(f"{what} not accepting connections on {address}:{port} after {timeout:.1f}s")
        time.sleep(0.02)


def _hex_addr(address: str, port: int) -> str:
    packed = socket.inet_aton(address)
    return f"{int.from_bytes(packed, 'little'):08X}:{port:04X}"


def listening_sockets() -> dict[str, set[str]]:
    """Map ``ADDR:PORT`` hex keys of IPv4 TCP sockets in LISTEN state to their socket inodes."""
    result: dict[str, set[str]] = {}
    with open("/proc/net/tcp") as handle:
        next(handle)
        for line in handle:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A":
                result.setdefault(fields[1], set()).add(fields[9])
    return result


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def is_listening(address: str, port: int) -> bool:
    """Return True if some socket listens on ``address:port`` (no connection is made)."""
    keys = listening_sockets()
    return _hex_addr(address, port) in keys or _hex_addr("0.0.0.0", port) in keys


def wait_listening(
    endpoints: Sequence[tuple[str, int]],
    timeout: float = 10.0,
    procs: Sequence[subprocess.Popen] | None = None,
) -> list[int]:
    """Wait (bounded) until all ``(address, port)`` endpoints are in LISTEN state.

    Unlike :func:`wait_for_port` this opens no connection, so the servers do
    not fork a child per probe (cheap for 100 sshd); with ``procs`` the
    listening socket must belong to that process. Returns the indexes of
    endpoints whose process (same index in ``procs``) exited; raises
    :class:`LabError` on timeout.
    """
    deadline = time.monotonic() + timeout
    pending = set(range(len(endpoints)))
    dead: list[int] = []
    while pending:
        keys = listening_sockets()
        for index in list(pending):
            address, port = endpoints[index]
            inodes = keys.get(_hex_addr(address, port))
            # the socket must be OUR process's, not another server's on the same port
            if inodes and (procs is None or inodes & _socket_inodes(procs[index].pid)):
                pending.discard(index)
            elif procs is not None and procs[index].poll() is not None:
                pending.discard(index)
                dead.append(index)
        if not pending:
            break
        if time.monotonic() > deadline:
            names = ", ".join(f"{endpoints[i][0]}:{endpoints[i][1]}" for i in sorted(pending))
            raise LabError(f"not listening after {timeout:.1f}s: {names}")
        time.sleep(0.01)
    return sorted(dead)


# ---------------------------------------------------------------- processes

_PR_SET_PDEATHSIG = 1


def _preexec_pdeathsig() -> None:  # runs in the child, between fork and exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except Exception:  # best effort only
        pass


def spawn(
    argv: Sequence[str],
    *,
    log_path: Path | None = None,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
) -> subprocess.Popen:
    """Start ``argv`` in its own session, stdout+stderr to ``log_path`` (or /dev/null).

    When called from the main thread the child also gets
    ``PR_SET_PDEATHSIG=SIGTERM`` so it dies if the test runner is killed.
    The process is registered for the :mod:`atexit` safety net.
    """
    out = open(log_path, "ab") if log_path is not None else subprocess.DEVNULL  # noqa: SIM115
    try:
        preexec = _preexec_pdeathsig if threading.current_thread() is threading.main_thread() else None
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=env,
            cwd=cwd,
            preexec_fn=preexec,
        )
    finally:
        if log_path is not None:
            out.close()
    _LIVE.add(proc)
    return proc


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                data = handle.read()
        except OSError:
            continue
        # comm may contain spaces/parens: fields after the last ')'
        rest = data[data.rfind(b")") + 2 :].split()
        try:
            ppid = int(rest[1])
        except (IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    return children


def descendants(pid: int, children: dict[int, list[int]] | None = None) -> list[int]:
    """Return all descendant PIDs of ``pid`` (excluding ``pid``)."""
    if children is None:
        children = _children_map()
    result: list[int] = []
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        result.append(child)
        todo.extend(children.get(child, []))
    return result


def _signal_all(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return False
    state = data[data.rfind(b")") + 2 :].split()[0]
    return state not in (b"Z", b"X")


def kill_trees(
    procs: Iterable[subprocess.Popen | None],
    *,
    graceful: bool = True,
    timeout: float = 3.0,
    include_root: bool = True,
) -> None:
    """Kill each process of ``procs`` and all its descendants, bounded by ``timeout``.

    Every tree is frozen with SIGSTOP first so nothing can fork or be reparented
    away while it is collected. ``graceful`` sends SIGTERM (+SIGCONT) and waits
    up to half the timeout before SIGKILL; otherwise SIGKILL at once. Roots are
    reaped. ``include_root=False`` kills only the descendants. A root that was
    already reaped is skipped (its pid may be reused; its orphans went to init).
    """
    roots = [p for p in procs if p is not None and p.poll() is None]
    for proc in procs:
        if proc is not None and proc.returncode is not None:
            _LIVE.discard(proc)
    if not roots:
        return
    deadline = time.monotonic() + timeout
    victims: list[int] = []
    seen: set[int] = set()
    for _ in range(3):  # freeze-and-collect a few rounds so late forks are caught too
        children = _children_map()
        new = []
        for proc in roots:
            batch = ([proc.pid] if include_root else []) + descendants(proc.pid, children)
            new.extend(pid for pid in batch if pid not in seen)
        if not new:
            break
        _signal_all(new, signal.SIGSTOP)
        victims.extend(new)
        seen.update(new)

    def reap_and_check() -> bool:
        if include_root:
            for proc in roots:
                proc.poll()
        return any(_alive(pid) for pid in victims)

    if graceful:
        _signal_all(victims, signal.SIGTERM)
        _signal_all(victims, signal.SIGCONT)
        soft_deadline = time.monotonic() + timeout / 2
        while time.monotonic() < soft_deadline and reap_and_check():
            time.sleep(0.01)
    _signal_all([pid for pid in victims if _alive(pid)], signal.SIGKILL)
    while time.monotonic() < deadline and reap_and_check():
        time.sleep(0.01)
    if include_root:
        for proc in roots:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired as exc:
                raise LabError(f"process {proc.pid} did not die within {timeout:.1f}s") from exc
            _LIVE.discard(proc)


def kill_tree(
    proc: subprocess.Popen | None,
    *,
    graceful: bool = True,
    timeout: float = 3.0,
    include_root: bool = True,
) -> None:
    """Kill ``proc`` and every descendant process; see :func:`kill_trees`."""
    kill_trees([proc], graceful=graceful, timeout=timeout, include_root=include_root)


# Safety net: anything spawned and not stopped is killed when Python exits.
_LIVE: weakref.WeakSet[subprocess.Popen] = weakref.WeakSet()
_STOPPERS: list[weakref.ref] = []


def register_for_cleanup(server: object) -> None:
    """Call ``server.remove()`` (stop + delete temp dir) at interpreter exit if it still exists then."""
    _STOPPERS[:] = [ref for ref in _STOPPERS if ref() is not None]
    _STOPPERS.append(weakref.ref(server))


@atexit.register
def _cleanup_at_exit() -> None:
    for ref in reversed(_STOPPERS):
        server = ref()
        if server is not None:
            with contextlib.suppress(Exception):
                (getattr(server, "remove", None) or server.stop)()  # type: ignore[attr-defined]
    for proc in list(_LIVE):
        with contextlib.suppress(Exception):
            kill_tree(proc, graceful=False, timeout=1.0)


# ---------------------------------------------------------------- users


def run_checked(argv: Sequence[str], timeout: float = 30.0, input_text: str | None = None) -> str:
    """Run a short command with a timeout; raise :class:`LabError` with its output on failure."""
    try:
        result = subprocess.run(
            list(argv),
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"{argv[0]} failed: {exc}") from exc
    if result.returncode != 0:
        raise LabError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()}")
    return result.stdout


_USER_LOCK = threading.Lock()


def ensure_password_user(name: str = PASSWORD_USER, password: str = PASSWORD) -> pwd.struct_passwd:
    """Make sure the password user exists (bash shell, home dir, ``password``); return its pwd entry.

    Needs root to create the user; if it already exists nothing is changed.
    Safe against concurrent callers (another process may create it first).
    """
    with _USER_LOCK:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
        if os.geteuid() != 0:
            raise LabError(f"user {name!r} missing and not root: run scripts/install-system-deps")
        # serialize with other processes (xdist workers, parallel runs) too
        with open("/run/testlab-users.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                return pwd.getpwnam(name)  # another process created it meanwhile
            except KeyError:
                pass
            run_checked(["useradd", "--create-home", "--shell", "/bin/bash", name])
            run_checked(["chpasswd"], input_text=f"{name}:{password}\n")
            return pwd.getpwnam(name)


class ServerProcess:
    """What every test server shares: a temp dir, one daemon process and its log."""

    #: File name of the daemon's log inside the work dir.
    log_name = "server.log"
    _workdir: Path
    _proc: subprocess.Popen | None

    @property
    def workdir(self) -> Path:
        """The server's temp dir (config, log, keys or device link)."""
        return self._workdir

    @property
    def log_path(self) -> Path:
        """The daemon's stdout/stderr log."""
        return self._workdir / self.log_name

    @property
    def log(self) -> str:
        """The daemon's log text so far (empty if none)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    @property
    def pid(self) -> int | None:
        """PID of the daemon, or None when not running."""
        return self._proc.pid if self.running else None  # type: ignore[union-attr]

    @property
    def running(self) -> bool:
        """True while the daemon is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Self:
        """Start the daemon and wait (bounded) until clients can reach it. Returns self."""
        raise NotImplementedError

    def _gone(self) -> None:
        """What is left to tidy once the daemon's process tree is gone (a device link)."""

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the daemon and every process of it (SIGTERM, then SIGKILL); no session survives."""
        proc, self._proc = self._proc, None
        kill_tree(proc, graceful=True, timeout=timeout)
        self._gone()

    def kill(self) -> None:
        """SIGKILL the daemon and every process of it at once: a dead host.

        Existing connections drop; new ones are refused until :meth:`restart`.
        """
        proc, self._proc = self._proc, None
        kill_tree(proc, graceful=False, timeout=5.0)
        self._gone()

    def pause(self) -> None:
        """SIGSTOP the daemon and its sessions: a hung host (connections stall, no RST)."""
        if self._proc is not None and self.running:
            _signal_all([self._proc.pid, *descendants(self._proc.pid)], signal.SIGSTOP)

    def resume(self) -> None:
        """Undo :meth:`pause` (SIGCONT)."""
        if self._proc is not None and self.running:
            _signal_all([self._proc.pid, *descendants(self._proc.pid)], signal.SIGCONT)

    def restart(self) -> Self:
        """Stop (if running) and start again on the same address, port and keys (or device)."""
        self.stop()
        return self.start()

    def remove(self) -> None:
        """Stop and delete the temp dir."""
        self.stop()
        remove_tree(self._workdir)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.remove()


class TcpServerProcess(ServerProcess):
    """A daemon on a loopback TCP port (sshd, telnetd, redis-server): the port asked for,
    or a free one, and a start that moves to another free port when one is taken."""

    #: Bound on waiting for the daemon to listen, per launch.
    startup_timeout: float = 15.0
    #: The daemon's name in messages.
    daemon_name = "server"

    def _listen_on(self, address: str, port: int | None, workdir_prefix: str) -> None:
        """Set up where the daemon listens (``port=None``: a free one at start) and its temp dir."""
        self._address = address
        self._requested_port = port
        self._port = port
        self._workdir = make_tempdir(f"{workdir_prefix}-{address}")
        self._proc = None
        register_for_cleanup(self)

    @property
    def address(self) -> str:
        """The loopback address the daemon listens on."""
        return self._address

    @property
    def port(self) -> int:
        """The TCP port (chosen at first start when ``port=None``)."""
        if self._port is None:
            raise LabError("port not chosen yet: start() the server first")
        return self._port

    def _launch(self) -> subprocess.Popen:
        """Spawn the daemon on ``_port`` (chosen already) and keep it as ``_proc``."""
        raise NotImplementedError

    def _launch_failed(self) -> bool:
        """The daemon died at start: True when another free port may work (it lost the one
        chosen to another process between `free_port` and its bind); else raise, with its log."""
        if self._requested_port is None and "in use" in self.log:
            self._port = None
            return True
        where = f"{self.daemon_name} on {self._address}:{self._port}"
        raise LabError(f"{where} failed to start:\n{self.log[-3000:]}")

    def start(self) -> Self:
        """Launch the daemon on its port (a free one unless one was asked for) and wait,
        bounded by ``startup_timeout``, until it listens; a port lost to another process
        is replaced by a new free one (5 tries). Returns self."""
        if self.running:
            raise LabError(f"{self!r} already running")
        for _attempt in range(5):
            if self._port is None:
                self._port = free_port(self._address)
            proc = self._launch()
            try:
                dead = wait_listening([(self._address, self._port)], self.startup_timeout, [proc])
            except LabError as exc:
                self.stop()
                raise LabError(f"{exc}\n{self.daemon_name} log:\n{self.log[-3000:]}") from None
            if not dead:
                return self
            proc.wait(timeout=5)
            self._proc = None
            self._launch_failed()
        where = f"{self.daemon_name} on {self._address}"
        raise LabError(f"{where} could not find a free port:\n{self.log[-3000:]}")


class ConsoleServerProcess(ServerProcess):
    """A server that offers a login (``login=True``) or a ready shell."""

    login: bool

    @property
    def user(self) -> str | None:
        """User to log in as (login mode), else None."""
        return PASSWORD_USER if self.login else None

    @property
    def password(self) -> str | None:
        """Password to log in with (login mode), else None."""
        return PASSWORD if self.login else None
