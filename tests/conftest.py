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
    "local": lambda request: LocalHost(command_timeout=30, connect_timeout=10),
}


@pytest.fixture(params=sorted(HOST_FACTORIES))
def any_host(request: pytest.FixtureRequest) -> Iterator[Host]:
    """A fresh host of each kind; closed after the test."""
    host = HOST_FACTORIES[request.param](request)
    try:
        yield host
    finally:
        host.close_sync()


@pytest.fixture
def local() -> Iterator[LocalHost]:
    """A fresh local host."""
    host = LocalHost()
    try:
        yield host
    finally:
        host.close_sync()
