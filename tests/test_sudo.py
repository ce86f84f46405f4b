"""``run(cmd, sudo=True)`` against a real sshd and a real sudo, as the password test user.

scripts/install-system-deps installs sudo and lets the test user run anything with
its password, asked on every call (``timestamp_timeout=0``); root is never asked.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import AsyncIterator, Callable

import pytest
from host_kinds import serial_host, ssh_host, telnet_host

from pytest_otto import (
    Host,
    HostConnectionError,
    LocalHost,
    RemoteHost,
    ShellResetWarning,
    Status,
    TelnetHost,
)
from pytest_otto.config import Secret
from testlab import NOPASSWD_USER, PASSWORD, PASSWORD_USER
from testlab.sshd import SshLab
from testlab.telnetd import TelnetServer

pytestmark = pytest.mark.skipif(
    shutil.which("sudo") is None, reason="sudo is not installed: run scripts/install-system-deps"
)

HostMaker = Callable[..., RemoteHost]


@pytest.fixture
async def make_host(ssh_lab: SshLab, password_user: tuple[str, str]) -> AsyncIterator[HostMaker]:
    """Hosts on the lab's first sshd, logged in with the client key, closed after the test."""
    made: list[RemoteHost] = []

    def make(**options: object) -> RemoteHost:
        server = ssh_lab[0]
        settings: dict[str, object] = {
            "port": server.port,
            "user": PASSWORD_USER,
            "key": server.client_key_path,
            "agent": False,
            "host_key_check": "off",
            "command_timeout": 30,
            "connect_timeout": 10,
        }
        settings.update(options)
        made.append(RemoteHost("box", server.address, **settings))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for host in made:
        await host.close()


@pytest.fixture(params=[False, True], ids=["pipes", "pty"])
def env_password_host(
    make_host: HostMaker,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> RemoteHost:
    """A host whose lab password comes from the environment, its shells on pipes and on a pty,
    with everything pytest-otto logs captured (to show the password is never in it)."""
    monkeypatch.setenv("OTTO_SUDO_TEST_PASSWORD", PASSWORD)
    caplog.set_level(logging.DEBUG, logger="pytest_otto")
    return make_host(password=Secret.from_env("OTTO_SUDO_TEST_PASSWORD"), pty=request.param)


def assert_password_never_shown(host: RemoteHost, caplog: pytest.LogCaptureFixture, *shown: object) -> None:
    texts = [*map(repr, shown), caplog.text, *(e.command + e.output for e in host.transcript)]
    assert all(PASSWORD not in text for text in texts)


async def test_sudo_runs_as_root_with_the_labs_password_never_shown(
    env_password_host: RemoteHost, caplog: pytest.LogCaptureFixture
) -> None:
    host = env_password_host
    await host.run("cd /tmp")
    result = await host.run(["id -un", "pwd", "cat; echo stdin-read=$?", "exit 3"], sudo=True)
    assert [s.output for s in result] == ["root", "/tmp", "stdin-read=0", ""]
    assert [s.retcode for s in result] == [0, 0, 0, 3]
    assert result.statuses[3].status == Status.Failed  # the command's own exit code, not sudo's
    assert result.statuses[0].command == "sudo sh -c 'id -un'"
    assert (await host.run("id -un")).only.output == PASSWORD_USER  # the session itself is not root
    assert_password_never_shown(host, caplog, result)
    assert any("sudo sh -c 'id -un'" in e.command for e in host.transcript)


async def test_a_wrong_password_is_an_error_that_says_so(make_host: HostMaker) -> None:
    host = make_host(password="not-the-sudo-password")
    status = (await host.run("id -u", sudo=True)).only
    assert status.status == Status.Error
    assert status.output.startswith("box: sudo refused the lab's password for user 'ottopw'")
    assert "try again" not in status.output.split(";")[0]
    assert all("not-the-sudo-password" not in e.command + e.output for e in host.transcript)


async def test_sudo_asking_for_a_password_the_lab_lacks_is_a_clear_error(make_host: HostMaker) -> None:
    host = make_host()  # key login, no password in the lab
    result = await host.run(["id -u", "echo still-usable"], sudo=True)
    first = result.statuses[0]
    assert first.status == Status.Error and not result.ok
    assert "box: sudo asked for the password of user 'ottopw', and the lab has no password" in first.output
    assert "[hosts.box]" in first.output
    assert (await host.run("echo after")).only.output == "after"  # the shell goes on


async def test_sudo_that_asks_nothing_runs_the_command_as_is(make_host: HostMaker) -> None:
    host = make_host(user="root")  # root: sudo never asks
    result = await host.run(["id -u", "printf 'a\\nb\\n'"], sudo=True)
    assert [s.output for s in result] == ["0", "a\nb"]


async def test_a_named_session_runs_sudo_too(make_host: HostMaker) -> None:
    host = make_host(password=PASSWORD)
    async with await host.open_session("admin") as session:
        assert (await session.run("id -u", sudo=True)).only.output == "0"


async def test_a_telnet_console_feeds_its_login_password(telnet_login_server: TelnetServer) -> None:
    server = telnet_login_server
    host = TelnetHost("tn", server.address, port=server.port, user=server.user, password=server.password)
    try:
        result = await host.run(["id -u", "id -un"], sudo=True)
        assert [s.output for s in result] == ["0", "root"]
        assert (await host.run("id -un")).only.output == PASSWORD_USER
        assert all(PASSWORD not in e.command + e.output for e in host.transcript)
    finally:
        await host.close()


# -- a whole session as root: open_session(name, sudo=True) ---------------------------------------


async def test_a_root_session_runs_every_command_as_root_with_the_labs_password_never_shown(
    env_password_host: RemoteHost, caplog: pytest.LogCaptureFixture
) -> None:
    """The user's sudo asks for the password on every call (timestamp_timeout=0)."""
    host = env_password_host
    await host.run("cd /tmp")
    async with await host.open_session("root", sudo=True) as root:
        result = await root.run(["id -un", "cd /etc; X=kept", "pwd; echo $X", "otto_missing", "cat; echo $?"])
        assert [s.output for s in result][:3] == ["root", "", "/etc\nkept"]
        missing = result.statuses[3]
        assert missing.retcode == 127 and "otto_missing: command not found" in missing.output
        assert result.statuses[4].output == "0"  # stdin is /dev/null, as in every session
        assert result.statuses[0].command == "id -un"  # no sudo shown: the shell is root's
        assert (await root.run("id -un")).only.output == "root"
    assert (await host.run("id -un; pwd")).only.output == f"{PASSWORD_USER}\n/tmp"  # the default session
    assert_password_never_shown(host, caplog, result)


def test_a_root_session_opens_blocking_too_and_a_reopened_shell_is_root_again(make_host: HostMaker) -> None:
    host = make_host(password=PASSWORD)
    with host.open_session_sync("root", sudo=True) as root:
        assert root.run_sync("id -u").only.output == "0"
        with pytest.warns(ShellResetWarning):  # its shell ends: the next call starts root's again
            assert root.run_sync("exit 4").only.status == Status.Error
            assert root.run_sync("id -u").only.output == "0"
    host.close_sync()


async def test_a_root_session_where_sudo_asks_no_password(ssh_lab: SshLab) -> None:
    """NOPASSWD: no password in the lab, none asked."""
    host = ssh_host(ssh_lab, 0, "np", user=NOPASSWD_USER)
    try:
        async with await host.open_session("root", sudo=True) as root:
            assert (await root.run(["id -u", "echo $HOME"])).statuses[0].output == "0"
    finally:
        await host.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="the local host is root in CI; sudo as root asks nothing")
async def test_a_local_root_session() -> None:
    host = LocalHost(command_timeout=30, connect_timeout=10)
    try:
        async with await host.open_session("root", sudo=True) as root:
            assert (await root.run("id -u")).only.output == "0"
    finally:
        await host.close()


async def test_a_root_session_without_the_password_sudo_asks_for_is_an_error(make_host: HostMaker) -> None:
    host = make_host()  # key login, no password in the lab
    with pytest.raises(HostConnectionError) as caught:
        await host.open_session("root", sudo=True)
    message = str(caught.value)
    assert message.startswith("box: cannot open a root session: sudo asked for the password of user 'ottopw'")
    assert "[hosts.box]" in message
    assert (await host.run("id -un")).only.output == PASSWORD_USER  # the host goes on


async def test_a_root_session_with_a_wrong_password_is_a_clear_error(make_host: HostMaker) -> None:
    host = make_host(password="not-the-sudo-password")
    with pytest.raises(HostConnectionError, match="box: cannot open a root session: sudo refused") as caught:
        await host.open_session("root", sudo=True)
    assert "not-the-sudo-password" not in str(caught.value)


async def test_a_session_name_keeps_its_user(make_host: HostMaker) -> None:
    host = make_host(password=PASSWORD)
    await host.open_session("s")
    with pytest.raises(ValueError, match="session 's' runs as the login user, not as root"):
        await host.open_session("s", sudo=True)


@pytest.mark.parametrize("kind", ["telnet", "serial"])
async def test_a_console_root_session_types_its_login_password(
    kind: str, request: pytest.FixtureRequest
) -> None:
    if kind == "telnet":
        host: Host = telnet_host(request.getfixturevalue("telnet_login_server"), "tn")
    else:
        host = serial_host(request.getfixturevalue("serial_login_console"), "ser")
    try:
        async with await host.open_session("root", sudo=True) as root:
            assert (await root.run(["id -u", "echo ok"])).statuses[0].output == "0"
        assert all(PASSWORD not in e.command + e.output for e in host.transcript)
    finally:
        await host.close()
