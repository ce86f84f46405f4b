"""The servers a benchmark run talks to: N real OpenSSH sshd on loopback (testlab).

Every server listens on its own 127.0.2.x address (away from the test suite's
127.0.0.x) on a free port, so a benchmark can run next to the test suite. The
login user is testlab's password user ``ottopw`` with the lab's client key:
root's ``.bashrc`` on the dev VM runs ``pyenv init``, which would measure pyenv
instead of the tools (see testlab/README.md).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from testlab import PASSWORD_USER
from testlab.sshd import SshLab

__all__ = ["USER", "BenchLab", "Endpoint"]

USER = PASSWORD_USER
FIRST_ADDRESS = "127.0.2.1"


@dataclass(frozen=True)
class Endpoint:
    """Where one sshd listens, and the host id the lab file gives it."""

    id: str
    address: str
    port: int


class BenchLab:
    """``count`` sshd servers plus the client-side files every tool needs.

    - ``lab_toml``: a pytest-otto lab file (hosts ``ssh1`` .. ``sshN``);
    - ``ssh_config``: an OpenSSH client config for pytest-testinfra's paramiko
      backend (``Host sshK`` -> address, port, user, key, no host key check);
    - ``client_key``: the private key authorized for ``ottopw``.

    Use as a context manager: the servers (and all their sessions) are stopped
    and the temp files removed at the end.
    """

    def __init__(self, count: int, first_address: str = FIRST_ADDRESS) -> None:
        self.count = count
        self._sshd = SshLab(count, first_address=first_address, log_level="ERROR")
        self.workdir = Path(tempfile.mkdtemp(prefix="otto-bench-"))
        self.endpoints: list[Endpoint] = []

    def start(self) -> BenchLab:
        """Start the servers (concurrently) and write the client files."""
        self._sshd.start()
        self.endpoints = [
            Endpoint(f"ssh{i + 1}", server.address, server.port) for i, server in enumerate(self._sshd)
        ]
        self.write_lab_toml(self.lab_toml)
        lines = []
        for ep in self.endpoints:
            lines += [
                f"Host {ep.id}",
                f"    HostName {ep.address}",
                f"    Port {ep.port}",
                f"    User {USER}",
                f"    IdentityFile {self.client_key}",
                "    StrictHostKeyChecking no",
                "    UserKnownHostsFile /dev/null",
                "",
            ]
        self.ssh_config.write_text("\n".join(lines))
        return self

    @property
    def client_key(self) -> Path:
        """Private key (ed25519) authorized for the login user on every server."""
        return self._sshd.client_key_path

    @property
    def lab_toml(self) -> Path:
        """The pytest-otto lab file for all servers."""
        return self.workdir / "lab.toml"

    @property
    def ssh_config(self) -> Path:
        """OpenSSH client config naming every server ``sshK`` (for testinfra)."""
        return self.workdir / "ssh_config"

    def write_lab_toml(self, path: Path, count: int | None = None, **defaults: object) -> Path:
        """Write a lab file with the first ``count`` servers (default all) to ``path``."""
        from testlab.labfile import write_lab_toml

        servers = self._sshd.servers[: count or self.count]
        return write_lab_toml(path, servers, name="bench", user=USER, defaults=defaults or None)

    def stop(self) -> None:
        """Stop every server and remove the temp files."""
        import shutil

        self._sshd.remove()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> BenchLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
