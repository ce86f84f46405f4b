"""Fixtures shared by the behaviour tests: one host of each kind that exists.

`any_host` runs a behaviour test once per host kind (local, ssh, telnet,
serial), each against a real server, so every B-statement is shown on every
transport by the same test code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from pytest_otto import Host, LocalHost

#: kind -> factory(request) returning a fresh, unconnected host.
HOST_FACTORIES: dict[str, Callable[[pytest.FixtureRequest], Host]] = {
    "local": lambda request: LocalHost(
        command_timeout=30, connect_timeout=10, pty=request.getfixturevalue("shell_mode") == "pty"
    ),
}


@pytest.fixture(params=["pipes", "pty"])
def shell_mode(request: pytest.FixtureRequest) -> str:
    """How session shells run: on pipes (the default) or on a pty (``pty=True``)."""
    return str(request.param)


@pytest.fixture(params=sorted(HOST_FACTORIES))
def any_host(request: pytest.FixtureRequest, shell_mode: str) -> Iterator[Host]:
    """A fresh host of each kind, in both shell modes; closed after the test."""
    host = HOST_FACTORIES[request.param](request)
    try:
        yield host
    finally:
        host.close_sync()


@pytest.fixture
def local(shell_mode: str) -> Iterator[LocalHost]:
    """A fresh local host, in both shell modes."""
    host = LocalHost(pty=shell_mode == "pty")
    try:
        yield host
    finally:
        host.close_sync()
