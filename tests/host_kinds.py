"""Hosts of every kind on the test lab's real servers, built the same way by every test module.

`any_host` (conftest.py) runs a behaviour test once per kind; test modules of one
transport build their own hosts with these functions.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from pytest_otto import Host, LocalHost, RemoteHost, SerialHost, TelnetHost
from testlab import PASSWORD_USER
from testlab.serial import SerialConsole
from testlab.sshd import SshLab, SshServer
from testlab.telnetd import TelnetServer


def ssh_host(
    server: SshServer | SshLab, index: int = 0, host_id: str = "ssh", **options: object
) -> RemoteHost:
    """A host for ``server`` (or ``lab[index]``) as the password user with the lab's client key."""
    target = server[index] if isinstance(server, SshLab) else server
    settings: dict[str, object] = {
        "port": target.port,
        "user": PASSWORD_USER,
        "key": target.client_key_path,
        "host_key_check": "off",
        "command_timeout": 30,
        "connect_timeout": 10,
    }
    settings.update(options)
    return RemoteHost(host_id, target.address, **settings)  # type: ignore[arg-type]


def telnet_host(server: TelnetServer, host_id: str) -> TelnetHost:
    """A telnet host on ``server``, logging in with its user and password."""
    return TelnetHost(
        host_id,
        server.address,
        port=server.port,
        user=server.user,
        password=server.password,
        command_timeout=30,
        connect_timeout=10,
    )


def serial_host(console: SerialConsole, host_id: str) -> SerialHost:
    """A serial host on ``console``'s line, logging in with its user and password."""
    return SerialHost(
        host_id,
        console.device,
        user=console.user,
        password=console.password,
        command_timeout=30,
        connect_timeout=10,
    )


def is_serial(host: Host) -> bool:
    """Serial lines carry one shell; every other kind opens a shell per session."""
    return host.transport_name == "serial"


#: kind -> factory(request) of a fresh, unconnected host. Local and ssh run their session
#: shells on pipes (the default) and on a pty; the consoles log in (the harder path: every
#: shell is a real login; already-logged-in consoles are covered in test_console.py).
HOST_KINDS: dict[str, Callable[[pytest.FixtureRequest], Host]] = {
    "local-pipes": lambda r: LocalHost(command_timeout=30, connect_timeout=10),
    "local-pty": lambda r: LocalHost(command_timeout=30, connect_timeout=10, pty=True),
    "ssh-pipes": lambda r: ssh_host(r.getfixturevalue("ssh_lab"), 0, "ssh1"),
    "ssh-pty": lambda r: ssh_host(r.getfixturevalue("ssh_lab"), 0, "ssh1", pty=True),
    "telnet-login": lambda r: telnet_host(r.getfixturevalue("telnet_login_server"), "telnet2"),
}
#: Every serial test pays a getty login (~1.6 s): OTTO_CONSOLE_SERIAL=0 skips them locally.
if os.environ.get("OTTO_CONSOLE_SERIAL", "1") != "0":
    HOST_KINDS["serial-login"] = lambda r: serial_host(r.getfixturevalue("serial_login_console"), "serial2")

#: The kinds whose servers need root (sshd logging in other users, login(1), getty).
NEEDS_ROOT = frozenset(kind for kind in HOST_KINDS if not kind.startswith("local"))
