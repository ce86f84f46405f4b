"""A real Redis server on loopback (:class:`RedisServer`), for the lease tests.

``redis-server`` (Debian package ``redis-server``) with no persistence, bound to
127.0.0.1 on a free port; :meth:`restart` comes back on the same port with an
empty store, as a real server without persistence does after a crash.
"""

from __future__ import annotations

import shutil
import subprocess
import time

from testlab._util import (
    LabError,
    TcpServerProcess,
    spawn,
)

__all__ = ["RedisServer", "redis_server_path"]


def redis_server_path() -> str:
    """Path of ``redis-server`` (installed by scripts/install-system-deps)."""
    path = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not shutil.which(path):
        raise LabError("redis-server not found: run scripts/install-system-deps (package redis-server)")
    return path


class RedisServer(TcpServerProcess):
    """``redis-server`` on ``address`` (loopback), ``port=None``: a free one.

    ``url`` is ``redis://ADDRESS:PORT/0``. ``password`` turns on ``requirepass``.
    """

    log_name = "redis.log"
    daemon_name = "redis-server"

    def __init__(
        self, address: str = "127.0.0.1", port: int | None = None, *, password: str | None = None
    ) -> None:
        self.password = password
        self._listen_on(address, port, "redis")

    @property
    def url(self) -> str:
        """``redis://ADDRESS:PORT/0`` (no password in it)."""
        return f"redis://{self._address}:{self.port}/0"

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"<RedisServer {self._address}:{self._port} {state}>"

    def _argv(self) -> list[str]:
        argv = [redis_server_path(), "--bind", self._address, "--port", str(self._port)]
        argv += ["--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", str(self._workdir)]
        argv += ["--protected-mode", "no", "--loglevel", "warning"]
        if self.password is not None:
            argv += ["--requirepass", self.password]
        return argv

    def _launch(self) -> subprocess.Popen:
        with self.log_path.open("a") as handle:
            handle.write(f"--- testlab: redis-server on {self._address}:{self._port} at {time.ctime()}\n")
        self._proc = spawn(self._argv(), log_path=self.log_path, cwd=self._workdir)
        return self._proc
