"""Fixtures shared by the tests: one host of each kind, and the ``needs_root`` marker.

`any_host` runs a behaviour test once per host kind (local and ssh on pipes and on a
pty, telnet and serial logging in), each against a real server, so every B-statement
is shown on every transport by the same test code (test_behaviour.py).

Tests whose servers need root (sshd logging in other users, ``login``, a getty) carry
the ``needs_root`` marker: run as another user, they are skipped, and ``-m "not
needs_root"`` leaves them out. Tests that ask for a root-only server fixture get the
marker on their own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from host_kinds import HOST_KINDS, NEEDS_ROOT

from pytest_otto import Host, LocalHost

#: Fixtures of servers that only root can run (see testlab/pytest_fixtures.py).
ROOT_FIXTURES = frozenset(
    {
        "ssh_lab",
        "ssh_lab_toml",
        "own_server",
        "own_sshd",
        "password_user",
        "telnet_server",
        "telnet_login_server",
        "serial_console",
        "serial_login_console",
    }
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "needs_root: the test's servers need root (skipped when not run as root)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    is_root = os.geteuid() == 0
    skip = pytest.mark.skip(reason="needs root: its test servers (sshd, login, getty) run as root")
    for item in items:
        if ROOT_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.needs_root)
        if not is_root and item.get_closest_marker("needs_root") is not None:
            item.add_marker(skip)


@pytest.fixture(
    params=[pytest.param(k, marks=pytest.mark.needs_root) if k in NEEDS_ROOT else k for k in HOST_KINDS]
)
def any_host(request: pytest.FixtureRequest) -> Iterator[Host]:
    """A fresh host of each kind; closed after the test (a console logs out)."""
    host = HOST_KINDS[request.param](request)
    try:
        yield host
    finally:
        host.close_sync()


@pytest.fixture(params=["pipes", "pty"])
def shell_mode(request: pytest.FixtureRequest) -> str:
    """How session shells run: on pipes (the default) or on a pty (``pty=True``)."""
    return str(request.param)


@pytest.fixture
def local(shell_mode: str) -> Iterator[LocalHost]:
    """A fresh local host, in both shell modes."""
    host = LocalHost(pty=shell_mode == "pty")
    try:
        yield host
    finally:
        host.close_sync()
