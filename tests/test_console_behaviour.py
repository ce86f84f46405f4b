"""B5-B23 on telnet and serial hosts, against real servers (busybox telnetd, a pty serial line).

The behaviour suite of `test_behaviour` runs here unchanged with `any_host`
overridden to give console hosts: telnet with and without ``/bin/login``, and a
serial line with a getty + login and with an already-logged-in shell. The few
statements a serial line meets differently (one shell per line) are restated
below under the same test names.

The suite runs on telnet with ``/bin/login`` (about a minute) and on the serial
login console (every test pays a getty login, ~1.6 s; about 90 s). Set
``OTTO_CONSOLE_SERIAL=0`` to skip the serial run locally. Serial specifics are
covered in test_console.py.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import pytest
from test_behaviour import *  # noqa: F403  (the shared B5-B23 suite, collected again here)
from test_behaviour import (
    Volume,
    host_close_closes_every_session,
    named_sessions_are_independent,
    send_expect,
    unique,
)
from test_behaviour import test_oneshots_run_concurrently_b20 as oneshots_run_concurrently

from pytest_otto import Host, HostConnectionError, LineHeld, SerialHost, ShellResetWarning, Status, TelnetHost
from testlab.serial import SerialConsole
from testlab.telnetd import TelnetServer

#: The suite runs on the login variants (the harder path: every shell is a real login);
#: already-logged-in consoles are covered in test_console.py.
CONSOLE_KINDS: dict[str, Callable[[pytest.FixtureRequest], Host]] = {
    "telnet-login": lambda r: _telnet(r.getfixturevalue("telnet_login_server"), "telnet2"),
}
if os.environ.get("OTTO_CONSOLE_SERIAL", "1") != "0":
    CONSOLE_KINDS["serial-login"] = lambda r: _serial(r.getfixturevalue("serial_login_console"), "serial2")


def _telnet(server: TelnetServer, host_id: str) -> TelnetHost:
    return TelnetHost(
        host_id,
        server.address,
        port=server.port,
        user=server.user,
        password=server.password,
        command_timeout=30,
        connect_timeout=10,
    )


def _serial(console: SerialConsole, host_id: str) -> SerialHost:
    return SerialHost(
        host_id,
        console.device,
        user=console.user,
        password=console.password,
        command_timeout=30,
        connect_timeout=10,
    )


@pytest.fixture(params=sorted(CONSOLE_KINDS))
def any_host(request: pytest.FixtureRequest) -> Iterator[Host]:
    """A fresh console host of each kind (overrides conftest's ``any_host`` in this module)."""
    host = CONSOLE_KINDS[request.param](request)
    try:
        yield host
    finally:
        host.close_sync()  # a serial host that logged in logs out: the next test logs in afresh


def is_serial(host: Host) -> bool:
    """Serial lines carry one shell; telnet opens a connection per shell."""
    return host.transport_name == "serial"


# -- B20: concurrency of oneshots: telnet concurrent, serial serialized --------------------


async def test_oneshots_run_concurrently_b20(any_host: Host) -> None:
    import asyncio

    if not is_serial(any_host):  # one connection each: concurrent, as everywhere
        await oneshots_run_concurrently(any_host)
        return
    pause = 0.3
    started = time.monotonic()
    results = await asyncio.gather(*(any_host.oneshot(f"sleep {pause}; echo {i}") for i in range(5)))
    elapsed = time.monotonic() - started
    assert [r.output for r in results] == [str(i) for i in range(5)]
    assert all(r.status is Status.Success for r in results)
    assert elapsed >= 5 * pause  # one line: serialized, documented


# -- B21, B22 on a serial line: one shell, so named sessions are exclusive -------------------


async def test_named_sessions_are_independent_b21(any_host: Host) -> None:
    if not is_serial(any_host):
        await named_sessions_are_independent(any_host)
        return
    await any_host.run("cd /tmp")
    with pytest.raises(LineHeld, match="held by session 'default'") as caught:
        await any_host.open_session("other")
    assert isinstance(caught.value, HostConnectionError)
    await any_host.close()  # frees the line: now a named session may have it
    async with await any_host.open_session("other") as other:
        assert (await other.run("echo on-the-line")).only.output == "on-the-line"
        with pytest.raises(HostConnectionError, match="held by session 'other'"):
            await any_host.run("true")
    assert not other.is_open
    assert (await any_host.run("echo default-again")).only.output == "default-again"


async def test_host_close_closes_every_session_b21(any_host: Host) -> None:
    if is_serial(any_host):
        session = await any_host.open_session("only")
        assert session.is_open
        await any_host.close()
        assert not session.is_open
        assert (await any_host.run("echo reopened")).only.output == "reopened"
        return
    await host_close_closes_every_session(any_host)


async def test_send_expect_b22(any_host: Host) -> None:
    session = any_host.default_session if is_serial(any_host) else await any_host.open_session("interactive")
    await send_expect(session)


async def test_send_writes_exactly_b22(any_host: Host) -> None:
    session = any_host.default_session if is_serial(any_host) else await any_host.open_session("exact")
    token = unique()
    await session.send(f"printf '%s|' 'a  b' \"c'd\" {token}; echo\n")
    assert (await session.expect(rf"{token}\|\r?\n", timeout=10)).strip().endswith(f"a  b|c'd|{token}|")


# -- B10, B23 on a serial line: no flow control, so volume is bounded ------------------------
# The test line (like a UART without RTS/CTS) drops what the reader does not drain in
# time; output of megabytes at full speed is not what a serial console can promise.

SERIAL_VOLUME = Volume(line_bytes=20_000, lines=3000, transfer_bytes=6_000)


@pytest.fixture
def volume(any_host: Host) -> Volume:
    """The shared volume tests, with less data on a serial line."""
    return SERIAL_VOLUME if is_serial(any_host) else Volume()


# -- a login prompt on the line: a neighbour's, or the console's own ---------------------------


async def test_a_login_prompt_met_through_send_is_the_users_business(any_host: Host) -> None:
    """A telnet or ssh client run on the device through send/expect shows ``login:`` too;
    the session must not take it for its own shell logging out (which hung up on the
    user's program and lost the shell's state)."""
    await any_host.run("export OTTO_KEPT=k1")
    session = any_host.default_session
    await session.send("printf 'neighbour login: '; sleep 1.5; echo neighbour-done\n")
    await session.expect("neighbour login: ", timeout=10)
    await session.expect("neighbour-done", timeout=10)  # 1.5 s of quiet at the prompt first
    assert (await any_host.run("echo $OTTO_KEPT")).only.output == "k1"


async def test_a_console_back_at_its_login_after_send_is_logged_in_again(
    serial_login_console: SerialConsole,
) -> None:
    """After send() the shell may really be gone (a reboot, ``exec`` of a program that
    ended): the next run() finds the console at its quiet login prompt and logs in afresh,
    instead of typing its probe as a user name. (A serial line: a telnet session ends with
    its connection instead.)"""
    host = _serial(serial_login_console, "serial2")
    try:
        await host.run("true")
        await host.send("exec sleep 0.2\n")  # no EXIT trap runs: the line shows login again
        await host.expect("login: ", timeout=10)
        with pytest.warns(ShellResetWarning):
            assert (await host.run("echo fresh")).only.output == "fresh"
    finally:
        await host.close()
