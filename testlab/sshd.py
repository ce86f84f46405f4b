"""Real OpenSSH servers on loopback addresses: :class:`SshServer` and :class:`SshLab`.

Each server is ``/usr/sbin/sshd -D -e -f <config>`` with a config, host key and
``authorized_keys`` written into a temp dir. Every 127.0.0.0/8 address is local
on Linux, so servers can listen on 127.0.0.2, 127.0.0.3, ... without any setup.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from ipaddress import IPv4Address
from pathlib import Path

from testlab._util import (
    PASSWORD,
    PASSWORD_USER,
    LabError,
    TcpServerProcess,
    descendants,
    ensure_password_user,
    free_port,
    kill_trees,
    make_tempdir,
    register_for_cleanup,
    remove_tree,
    run_checked,
    spawn,
    wait_listening,
)

SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = "/usr/bin/ssh-keygen"
PRIVSEP_DIR = "/run/sshd"

__all__ = [
    "PASSWORD",
    "PASSWORD_USER",
    "SshLab",
    "SshServer",
    "generate_keypair",
]


def generate_keypair(path: str | Path, key_type: str = "ed25519", comment: str = "testlab") -> Path:
    """Generate an unencrypted OpenSSH keypair at ``path`` (and ``path.pub``); return ``path``."""
    path = Path(path)
    path.unlink(missing_ok=True)
    Path(f"{path}.pub").unlink(missing_ok=True)
    run_checked([SSH_KEYGEN, "-q", "-t", key_type, "-N", "", "-C", comment, "-f", str(path)])
    path.chmod(0o600)
    return path


def _ensure_privsep_dir() -> None:
    os.makedirs(PRIVSEP_DIR, mode=0o755, exist_ok=True)


def _known_hosts_host(address: str, port: int) -> str:
    return address if port == 22 else f"[{address}]:{port}"


class SshServer(TcpServerProcess):
    """One real OpenSSH ``sshd`` listening on ``address:port``.

    ``port=None`` picks a free port (retried if another process grabs it
    first); ``port=22`` works as root. The host key, client key and
    ``authorized_keys`` default to files generated in the server's own temp dir;
    :class:`SshLab` passes shared ones so 100 servers start fast.

    ``max_sessions`` / ``max_startups`` set ``MaxSessions`` / ``MaxStartups``;
    ``None`` leaves sshd's defaults (10 and ``10:30:100``). ``extra_config``
    adds raw ``Keyword value`` lines. The client key is authorized for every
    user (root and :data:`PASSWORD_USER`); password and keyboard-interactive
    auth work for :data:`PASSWORD_USER` with :data:`PASSWORD` (and for root if it
    has a password). The password user is created lazily when running as root.

    Use as a context manager or call :meth:`start` / :meth:`stop`.
    """

    log_name = "sshd.log"
    daemon_name = "sshd"

    def __init__(
        self,
        address: str = "127.0.0.2",
        port: int | None = None,
        *,
        host_key: str | Path | None = None,
        client_key: str | Path | None = None,
        authorized_keys: str | Path | None = None,
        max_sessions: int | None = None,
        max_startups: str | int | None = None,
        use_pam: bool = True,
        log_level: str = "VERBOSE",
        extra_config: Mapping[str, str] | Sequence[str] | None = None,
        startup_timeout: float = 10.0,
        create_password_user: bool = True,
    ) -> None:
        self._listen_on(address, port, "sshd")
        self._host_key = Path(host_key) if host_key else None
        self._client_key = Path(client_key) if client_key else None
        self._authorized_keys = Path(authorized_keys) if authorized_keys else None
        self.max_sessions = max_sessions
        self.max_startups = max_startups
        self.use_pam = use_pam
        self.log_level = log_level
        self.extra_config = extra_config
        self.startup_timeout = startup_timeout
        self._create_password_user = create_password_user
        self._removed = False

    # ------------------------------------------------------------ properties

    @property
    def config_path(self) -> Path:
        """Path of the generated ``sshd_config``."""
        return self._workdir / "sshd_config"

    @property
    def host_key_path(self) -> Path:
        """Private host key file (ed25519) of this server."""
        if self._host_key is None:
            self._host_key = generate_keypair(self._workdir / "ssh_host_ed25519_key", comment="testlab-host")
        return self._host_key

    @property
    def host_public_key(self) -> str:
        """Host public key line, e.g. ``ssh-ed25519 AAAA... testlab-host``."""
        return Path(f"{self.host_key_path}.pub").read_text().strip()

    @property
    def client_key_path(self) -> Path:
        """Private client key (ed25519, no passphrase) authorized for every user."""
        if self._client_key is None:
            self._client_key = generate_keypair(self._workdir / "id_ed25519", comment="testlab-client")
        return self._client_key

    @property
    def authorized_keys_path(self) -> Path:
        """The ``AuthorizedKeysFile`` used for all users (contains the client public key)."""
        if self._authorized_keys is None:
            path = self._workdir / "authorized_keys"
            path.write_text(Path(f"{self.client_key_path}.pub").read_text())
            path.chmod(0o644)
            self._authorized_keys = path
        return self._authorized_keys

    def connection_pids(self) -> list[int]:
        """PIDs of the per-connection sshd children and their sessions' processes."""
        if not self.running:
            return []
        return descendants(self._proc.pid)  # type: ignore[union-attr]

    def known_hosts_line(self) -> str:
        """One ``known_hosts`` line for this server (``[addr]:port`` form unless port 22)."""
        key_type, key_data = self.host_public_key.split()[:2]
        return f"{_known_hosts_host(self.address, self.port)} {key_type} {key_data}"

    def authorize_key(self, public_key: str) -> None:
        """Append a public key line to the authorized keys file (takes effect at once)."""
        with self.authorized_keys_path.open("a") as handle:
            handle.write(public_key.strip() + "\n")

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"<SshServer {self._address}:{self._port} {state}>"

    # ------------------------------------------------------------ config

    def config_text(self) -> str:
        """The sshd_config text this server runs with."""
        lines = [
            f"ListenAddress {self.address}:{self.port}",
            f"HostKey {self.host_key_path}",
            "PidFile none",
            f"AuthorizedKeysFile {self.authorized_keys_path}",
            "StrictModes no",
            "PermitRootLogin yes",
            "PubkeyAuthentication yes",
            "PasswordAuthentication yes",
            "KbdInteractiveAuthentication yes",
            "PermitEmptyPasswords no",
            f"UsePAM {'yes' if self.use_pam else 'no'}",
            f"LogLevel {self.log_level}",
            "PrintMotd no",
            "PrintLastLog no",
            "UseDNS no",
            "AllowTcpForwarding yes",
            "X11Forwarding no",
            "AcceptEnv LANG LC_* OTTO_*",
            "Subsystem sftp internal-sftp",
        ]
        if self.max_sessions is not None:
            lines.append(f"MaxSessions {self.max_sessions}")
        if self.max_startups is not None:
            lines.append(f"MaxStartups {self.max_startups}")
        if isinstance(self.extra_config, Mapping):
            lines.extend(f"{key} {value}" for key, value in self.extra_config.items())
        elif self.extra_config:
            lines.extend(self.extra_config)
        return "\n".join(lines) + "\n"

    def _prepare(self) -> None:
        if self._removed:
            raise LabError("server was removed; create a new one")
        _ensure_privsep_dir()
        if self._create_password_user and os.geteuid() == 0:
            ensure_password_user()
        if self._port is None:
            self._port = free_port(self._address)
        self.config_path.write_text(self.config_text())

    def _launch(self) -> subprocess.Popen:
        if self.running:
            raise LabError(f"{self!r} already running")
        self._prepare()
        with self.log_path.open("a") as handle:
            handle.write(f"--- testlab: starting sshd on {self.address}:{self.port} at {time.ctime()}\n")
        self._proc = spawn([SSHD, "-D", "-e", "-f", str(self.config_path)], log_path=self.log_path)
        return self._proc

    # ------------------------------------------------------------ lifecycle

    def regenerate_host_key(self, restart: bool = True) -> str:
        """Give this server a new host key (its own file) and, if running and ``restart``, restart it.

        Returns the new host public key line. Clients with the old key in
        ``known_hosts`` must now fail strict host key checking.
        """
        was_running = self.running
        self._host_key = generate_keypair(
            self._workdir / f"ssh_host_ed25519_key.{int(time.time() * 1000)}", comment="testlab-host"
        )
        if was_running and restart:
            self.restart()
        return self.host_public_key

    def remove(self) -> None:
        """Stop and delete the temp dir (keys passed in from outside are not touched)."""
        super().remove()
        self._removed = True


class SshLab:
    """``count`` real sshd servers on consecutive loopback addresses, started concurrently.

    Servers listen on ``first_address`` (default 127.0.0.2), 127.0.0.3, ... on
    ``port`` (``None``: a free port per server, which lets several test runs
    share the machine; ``22`` is fine as root). They share one ed25519 host key,
    one ed25519 client key (:attr:`client_key_path`, authorized for root and
    the password user) and one ``authorized_keys`` file. Extra keyword
    arguments go to every :class:`SshServer` (``max_sessions``, ``max_startups``...).
    """

    def __init__(
        self,
        count: int = 4,
        *,
        first_address: str = "127.0.0.2",
        port: int | None = None,
        startup_timeout: float = 20.0,
        **server_kwargs: object,
    ) -> None:
        if count < 1:
            raise ValueError("count must be >= 1")
        self.count = count
        self.first_address = first_address
        self.port = port
        self.startup_timeout = startup_timeout
        self.workdir = make_tempdir("sshlab")
        self._server_kwargs = server_kwargs
        self.servers: list[SshServer] = []
        self._keys_ready = False
        register_for_cleanup(self)

    @property
    def host_key_path(self) -> Path:
        """The shared host private key."""
        return self.workdir / "ssh_host_ed25519_key"

    @property
    def client_key_path(self) -> Path:
        """The shared client private key (public key at ``.pub``)."""
        return self.workdir / "id_ed25519"

    @property
    def authorized_keys_path(self) -> Path:
        """The shared ``authorized_keys`` file."""
        return self.workdir / "authorized_keys"

    @property
    def addresses(self) -> list[str]:
        """The servers' addresses, in order."""
        return [server.address for server in self.servers]

    def __len__(self) -> int:
        return len(self.servers)

    def __iter__(self):
        return iter(self.servers)

    def __getitem__(self, index: int) -> SshServer:
        return self.servers[index]

    def _make_keys(self) -> None:
        if self._keys_ready:
            return
        generate_keypair(self.host_key_path, comment="testlab-host")
        generate_keypair(self.client_key_path, comment="testlab-client")
        shutil.copyfile(f"{self.client_key_path}.pub", self.authorized_keys_path)
        self.authorized_keys_path.chmod(0o644)
        self._keys_ready = True

    def start(self) -> SshLab:
        """Create (first time) and start all servers concurrently; bounded by ``startup_timeout``."""
        self._make_keys()
        if os.geteuid() == 0 and self._server_kwargs.get("create_password_user", True):
            ensure_password_user()
        if not self.servers:
            base = IPv4Address(self.first_address)
            for index in range(self.count):
                self.servers.append(
                    SshServer(
                        str(base + index),
                        self.port,
                        host_key=self.host_key_path,
                        client_key=self.client_key_path,
                        authorized_keys=self.authorized_keys_path,
                        create_password_user=False,
                        **self._server_kwargs,  # type: ignore[arg-type]
                    )
                )
        todo = [server for server in self.servers if not server.running]
        deadline = time.monotonic() + self.startup_timeout
        for _attempt in range(5):
            procs = [server._launch() for server in todo]
            remaining = max(0.5, deadline - time.monotonic())
            try:
                dead = wait_listening([(s.address, s.port) for s in todo], remaining, procs)
            except LabError as exc:
                logs = "\n".join(f"{s.address}:{s.port}: {s.log[-500:]}" for s in todo if not s.running)
                self.stop()
                raise LabError(f"{exc}\n{logs}") from None
            retry = []
            for index in dead:
                procs[index].wait(timeout=5)
                if todo[index]._launch_failed():
                    retry.append(todo[index])
            if not retry:
                return self
            todo = retry
        raise LabError("some sshd servers could not find a free port")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every server (connections included), all at once."""
        procs = [server._proc for server in self.servers]
        for server in self.servers:
            server._proc = None
        kill_trees(procs, graceful=True, timeout=timeout)

    def remove(self) -> None:
        """Stop every server and delete all temp dirs."""
        self.stop()
        for server in self.servers:
            server.remove()
        remove_tree(self.workdir)

    def known_hosts_text(self) -> str:
        """``known_hosts`` content listing every server with its current host key."""
        return "".join(server.known_hosts_line() + "\n" for server in self.servers)

    def write_known_hosts(self, path: str | Path | None = None) -> Path:
        """Write :meth:`known_hosts_text` to ``path`` (default ``<workdir>/known_hosts``); return it."""
        path = Path(path) if path is not None else self.workdir / "known_hosts"
        path.write_text(self.known_hosts_text())
        return path

    def write_lab_toml(self, path: str | Path, **kwargs: object) -> Path:
        """Write a lab.toml describing these servers; see :func:`testlab.labfile.write_lab_toml`."""
        from testlab.labfile import write_lab_toml

        return write_lab_toml(path, self.servers, **kwargs)  # type: ignore[arg-type]

    def __enter__(self) -> SshLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.remove()
