"""Session-scoped pytest fixtures that run real lab servers on loopback.

Load with ``pytest_plugins = ["testlab.pytest_fixtures"]`` (root conftest) or
``-p testlab.pytest_fixtures``. Every server is started on first use and
stopped (all its processes killed, temp files removed) at session end. Ports
are chosen free, so parallel test runs (and xdist workers) do not collide.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from testlab._util import PASSWORD, PASSWORD_USER, ensure_password_user
from testlab.redis import RedisServer
from testlab.serial import SerialConsole
from testlab.sshd import SshLab
from testlab.telnetd import TelnetServer

log = logging.getLogger("testlab")


@pytest.fixture(scope="session")
def password_user() -> tuple[str, str]:
    """``(user, password)`` of the password test user (created if missing and root)."""
    ensure_password_user()
    return PASSWORD_USER, PASSWORD


@pytest.fixture(scope="session")
def ssh_lab() -> Iterator[SshLab]:
    """Four running sshd servers on 127.0.0.2-5 (free ports), client key authorized for root/ottopw."""
    lab = SshLab(4).start()
    try:
        yield lab
    finally:
        lab.remove()


@pytest.fixture(scope="session")
def ssh_lab_toml(ssh_lab: SshLab, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lab.toml with the ``ssh_lab`` servers as hosts ``ssh1``..``ssh4`` (root, key, no host key check)."""
    return ssh_lab.write_lab_toml(tmp_path_factory.mktemp("lab") / "lab.toml")


@pytest.fixture(scope="session")
def telnet_server() -> Iterator[TelnetServer]:
    """BusyBox telnetd giving an already-logged-in root bash (``login=False``)."""
    server = TelnetServer("127.0.0.20", login=False).start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="session")
def telnet_login_server(password_user: tuple[str, str]) -> Iterator[TelnetServer]:
    """BusyBox telnetd running ``/bin/login``: log in as the password user."""
    server = TelnetServer("127.0.0.21", login=True).start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="session")
def serial_console() -> Iterator[SerialConsole]:
    """A pty serial line with a root bash behind it (respawned after ``exit``)."""
    console = SerialConsole(login=False).start()
    try:
        yield console
    finally:
        console.remove()


@pytest.fixture(scope="session")
def _serial_login_line(password_user: tuple[str, str]) -> Iterator[SerialConsole]:
    console = SerialConsole(login=True).start()
    try:
        yield console
    finally:
        console.remove()


@pytest.fixture
def serial_login_console(_serial_login_line: SerialConsole) -> SerialConsole:
    """A pty serial line with agetty + ``/bin/login`` behind it (respawned after logout).

    One line per worker, shared by its tests; each test gets it at its login prompt. A
    shell an earlier test left logged in (a close that could not log out, a login still
    finishing when its test ended) is ended first and logged, so that one test's
    leftover is not the next test's failure.
    """
    left = _serial_login_line.end_shells()
    if left:
        log.warning("testlab: %s was left logged in (pids %s); ended that login", _serial_login_line, left)
    return _serial_login_line


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server on 127.0.0.1 (free port, no persistence), for lease tests."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.remove()
