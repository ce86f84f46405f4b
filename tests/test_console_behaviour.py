"""Console hosts' own behaviour on real servers (busybox telnetd, a pty serial line).

The shared behaviour suite (B5-B23 in test_behaviour.py) runs on telnet and serial
hosts through ``any_host`` (conftest.py), each shell a real login; serial specifics are
covered in test_console.py. Here: what a console line adds, a login prompt seen through
``send`` (a neighbour's, or the console's own).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from host_kinds import HOST_KINDS, serial_host

from pytest_otto import Host, ShellResetWarning
from testlab.serial import SerialConsole

pytestmark = pytest.mark.needs_root

CONSOLE_KINDS = [kind for kind in HOST_KINDS if kind.startswith(("telnet", "serial"))]


@pytest.fixture(params=CONSOLE_KINDS)
def console_host(request: pytest.FixtureRequest) -> Iterator[Host]:
    """A fresh console host of each kind that logs in; logged out after the test."""
    host = HOST_KINDS[request.param](request)
    try:
        yield host
    finally:
        host.close_sync()


# -- a login prompt on the line: a neighbour's, or the console's own ---------------------------


async def test_a_login_prompt_met_through_send_is_the_users_business(console_host: Host) -> None:
    """A telnet or ssh client run on the device through send/expect shows ``login:`` too;
    the session must not take it for its own shell logging out (which hung up on the
    user's program and lost the shell's state)."""
    await console_host.run("export OTTO_KEPT=k1")
    session = console_host.default_session
    await session.send("printf 'neighbour login: '; sleep 1.5; echo neighbour-done\n")
    await session.expect("neighbour login: ", timeout=10)
    await session.expect("neighbour-done", timeout=10)  # 1.5 s of quiet at the prompt first
    assert (await console_host.run("echo $OTTO_KEPT")).only.output == "k1"


async def test_a_console_back_at_its_login_after_send_is_logged_in_again(
    serial_login_console: SerialConsole,
) -> None:
    """After send() the shell may really be gone (a reboot, ``exec`` of a program that
    ended): the next run() finds the console at its quiet login prompt and logs in afresh,
    instead of typing its probe as a user name. (A serial line: a telnet session ends with
    its connection instead.)"""
    host = serial_host(serial_login_console, "serial2")
    try:
        await host.run("true")
        await host.send("exec sleep 0.2\n")  # no EXIT trap runs: the line shows login again
        await host.expect("login: ", timeout=10)
        with pytest.warns(ShellResetWarning):
            assert (await host.run("echo fresh")).only.output == "fresh"
    finally:
        await host.close()
