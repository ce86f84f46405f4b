"""SSH hosts against real OpenSSH servers from `testlab`.

The shared behaviour suite (B5-B23 in `test_behaviour`) runs on SSH hosts too, through
``any_host`` (conftest.py). Here: what is SSH's own —
authentication (key, password, keyboard-interactive, agent), host key policies,
jump chains, the one shared connection, the channel budget, lost connections,
handshake retries and keepalives, and building hosts from a lab file.

Tests that break a server (kill, pause, new host key, odd sshd settings) start
their own `SshServer` on an address of their own; the others share the session's
`ssh_lab` (127.0.0.2-5).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncssh
import pytest
from host_kinds import ssh_host
from test_behaviour import (
    PATIENCE,
    gone,
    sleeping,
    timeout_spares_older_jobs_and_close_ends_them,
    unique,
    unique_sleep,
    wait_until,
)

from pytest_otto import Host, HostConnectionError, RemoteHost, ShellResetWarning, Status
from pytest_otto.config import Secret
from pytest_otto.lab import load_lab
from pytest_otto.transports.ssh import PREFERRED_KEX, preferred_kex_algs
from testlab import PASSWORD, PASSWORD_USER
from testlab.labfile import write_lab_toml
from testlab.sshd import SshLab, SshServer

pytestmark = pytest.mark.needs_root


@pytest.fixture
def any_ssh_host(ssh_lab: SshLab, shell_mode: str) -> Iterator[Host]:
    """An SSH host on a real sshd, its session shells on pipes or on a pty."""
    host = ssh_host(ssh_lab, 0, "ssh1", pty=shell_mode == "pty")
    try:
        yield host
    finally:
        host.close_sync()


@pytest.fixture
def own_server(request: pytest.FixtureRequest) -> Iterator[SshServer]:
    """A private sshd this test may kill, pause or re-key (settings via indirect param)."""
    kwargs = getattr(request, "param", {}) or {}
    server = SshServer(kwargs.pop("address", "127.0.0.31"), **kwargs).start()
    try:
        yield server
    finally:
        server.remove()


def accepted(server: SshServer) -> list[str]:
    """The sshd log's ``Accepted <method> for <user>`` lines (one per login)."""
    return re.findall(r"Accepted (\S+) for (\S+)", server.log)


def waiting_connections(server: SshServer) -> int:
    """Connections the kernel accepted for ``server`` that sshd has not taken yet (Linux).

    While sshd is paused, every connection attempt stays in its listen queue, so this
    counts attempts, where a clock would only guess them from durations.
    """
    local = f"{socket.inet_aton(server.address)[::-1].hex().upper()}:{server.port:04X}"
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if fields[1] == local and fields[3] == "0A":  # the listening socket
                return int(fields[4].split(":")[1], 16)  # its rx_queue: the accept queue's length
    raise LookupError(f"no listening socket on {server.address}:{server.port}")


# -- one shared connection ------------------------------------------------------------------


async def test_one_connection_for_shells_oneshots_and_transfers(
    own_server: SshServer, tmp_path: Path
) -> None:
    host = ssh_host(own_server)
    try:
        # concurrent first calls: exactly one connection is made (pitfall 6)
        results = await asyncio.gather(*(host.oneshot(f"echo {i}") for i in range(8)), host.run("echo shell"))
        assert [r.output for r in results[:8]] == [str(i) for i in range(8)]
        assert results[8].only.output == "shell"
        session = await host.open_session("second")
        assert (await session.run("echo named")).only.output == "named"
        (tmp_path / "f.txt").write_text("x")
        assert await host.put(tmp_path / "f.txt", f"/tmp/otto-{unique()}") == (Status.Success, "")
        assert len(accepted(own_server)) == 1
    finally:
        await host.close()
    assert not host.is_connected


async def test_closed_connection_is_replaced_once(own_server: SshServer) -> None:
    host = ssh_host(own_server)
    try:
        assert (await host.oneshot("echo one")).output == "one"
        await host._ssh.get()  # the cached connection...
        (await host._ssh.get()).close()  # ...closed behind the host's back (pitfall 8)
        assert (await host.oneshot("echo two")).output == "two"
        assert len(accepted(own_server)) == 2
    finally:
        await host.close()


# -- authentication ----------------------------------------------------------------------------


async def test_key_auth_as_root(ssh_lab: SshLab) -> None:
    host = ssh_host(ssh_lab, 1, user="root")
    try:
        assert (await host.oneshot("id -un")).output == "root"
    finally:
        await host.close()


async def test_password_auth(own_server: SshServer, password_user: tuple[str, str]) -> None:
    user, password = password_user
    host = ssh_host(own_server, key=None, agent=False, password=password)
    try:
        assert (await host.run("id -un")).only.output == user
        assert (await host.oneshot("id -un")).output == user
    finally:
        await host.close()
    assert accepted(own_server)[0][0] in ("password", "keyboard-interactive/pam")


@pytest.mark.parametrize(
    ("own_server", "method"),
    [
        (
            {"address": "127.0.0.32", "extra_config": ["AuthenticationMethods keyboard-interactive"]},
            "keyboard-interactive/pam",
        ),
        ({"address": "127.0.0.33", "extra_config": ["AuthenticationMethods password"]}, "password"),
    ],
    indirect=["own_server"],
    ids=["keyboard-interactive-only", "password-only"],
)
async def test_password_over_each_method(
    own_server: SshServer, method: str, password_user: tuple[str, str]
) -> None:
    host = ssh_host(own_server, key=None, agent=False, password=password_user[1])
    try:
        assert (await host.oneshot("echo in")).output == "in"
    finally:
        await host.close()
    assert accepted(own_server) == [(method, PASSWORD_USER)]


async def test_password_from_secret_never_shown(
    own_server: SshServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTTO_SSH_TEST_PASSWORD", PASSWORD)
    caplog.set_level(logging.DEBUG, logger="pytest_otto")
    host = ssh_host(own_server, key=None, agent=False, password=Secret.from_env("OTTO_SSH_TEST_PASSWORD"))
    try:
        entry = (await host.run(f"echo {PASSWORD}")).only
        assert entry.output == PASSWORD  # the caller gets real output...
        recorded = [e.command + e.output for e in host.transcript]
        assert recorded and all(PASSWORD not in text for text in recorded)  # ...the transcript does not
        assert PASSWORD not in repr(host)
    finally:
        await host.close()
    assert PASSWORD not in caplog.text


async def test_wrong_password_is_a_connection_error(own_server: SshServer) -> None:
    host = ssh_host(own_server, key=None, agent=False, password="not-the-password", connect_timeout=15)
    try:
        with pytest.raises(HostConnectionError) as caught:
            await host.oneshot("true")
        with pytest.raises(ConnectionError):
            await host.run("true")
    finally:
        await host.close()
    message = str(caught.value)
    assert message.startswith("ssh: ")
    assert "authentication failed" in message
    assert "not-the-password" not in message


@contextlib.asynccontextmanager
async def ssh_agent(sock: Path) -> AsyncIterator[None]:
    """An ``ssh-agent`` of the test's own, accepting connections on ``sock`` once entered.

    Its socket file appears when the agent binds it, a moment before it listens: an
    ``ssh-add`` in between is refused (it was, under load), so this waits for a connect.
    """

    def listening() -> bool:
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(str(sock))
            except OSError:
                return False
            return True

    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        assert await wait_until(listening), f"ssh-agent never listened on {sock}"
        yield
    finally:
        agent.terminate()
        agent.wait(PATIENCE)


async def test_agent_auth(ssh_lab: SshLab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not shutil.which("ssh-agent"):
        pytest.skip("ssh-agent is not installed")
    sock = tmp_path / "agent.sock"
    async with ssh_agent(sock):
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(["ssh-add", str(ssh_lab.client_key_path)], env=env, check=True, capture_output=True)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        monkeypatch.setenv("HOME", str(tmp_path))  # no default key files in ~/.ssh
        with_agent = ssh_host(ssh_lab, 2, key=None)
        without = ssh_host(ssh_lab, 2, key=None, agent=False, connect_timeout=5)
        try:
            assert (await with_agent.oneshot("echo via-agent")).output == "via-agent"
            with pytest.raises(HostConnectionError, match="authentication failed"):
                await without.oneshot("true")
        finally:
            await with_agent.close()
            await without.close()


async def test_a_passphrase_key_is_used_through_the_agent_and_named_without_it(
    own_server: SshServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``key`` names a passphrase-protected file (the usual ~/.ssh key, unlocked in an agent):
    with the agent it logs in, as ``ssh -i`` does; without one the error says the file needs
    a passphrase. A named key does not stop the default keys from being tried either."""
    if not shutil.which("ssh-agent"):
        pytest.skip("ssh-agent is not installed")
    monkeypatch.setenv("HOME", str(tmp_path))
    encrypted = tmp_path / "locked"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "a phrase", "-f", str(encrypted)], check=True)
    own_server.authorize_key((tmp_path / "locked.pub").read_text())
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    alone = ssh_host(own_server, key=encrypted, user="root")
    try:
        with pytest.raises(HostConnectionError) as caught:
            await alone.run("true")
        assert str(caught.value).endswith(
            f"; key file {encrypted} needs a passphrase: load it into ssh-agent (ssh-add) to use it"
        )
        assert "(tried key)" in str(caught.value)  # no agent was there to try
    finally:
        await alone.close()
    sock = tmp_path / "agent.sock"
    async with ssh_agent(sock):
        askpass = tmp_path / "askpass"
        askpass.write_text("#!/bin/sh\necho 'a phrase'\n")
        askpass.chmod(0o700)
        env = {
            **os.environ,
            "SSH_AUTH_SOCK": str(sock),
            "SSH_ASKPASS": str(askpass),
            "SSH_ASKPASS_REQUIRE": "force",
        }
        subprocess.run(
            ["ssh-add", str(encrypted)], env=env, check=True, capture_output=True, stdin=subprocess.DEVNULL
        )
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        through_agent = ssh_host(own_server, key=encrypted, user="root")
        try:
            assert (await through_agent.oneshot("echo unlocked")).output == "unlocked"
        finally:
            await through_agent.close()
    # a named key that is not authorized, and an authorized default key in ~/.ssh
    (tmp_path / ".ssh").mkdir()
    shutil.copy(own_server.client_key_path, tmp_path / ".ssh" / "id_ed25519")
    (tmp_path / ".ssh" / "id_ed25519").chmod(0o600)
    monkeypatch.delenv("SSH_AUTH_SOCK")
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    fallback = ssh_host(own_server, key=stranger, user="root")
    try:
        assert (await fallback.oneshot("echo default-key")).output == "default-key"
    finally:
        await fallback.close()


# -- host keys -------------------------------------------------------------------------------


async def test_strict_host_key_check(ssh_lab: SshLab, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(ssh_lab[0].known_hosts_line() + "\n")
    good = ssh_host(ssh_lab, 0, host_key_check="strict", known_hosts=known)
    unknown = ssh_host(ssh_lab, 1, host_key_check="strict", known_hosts=known)
    try:
        assert (await good.oneshot("echo trusted")).output == "trusted"
        with pytest.raises(HostConnectionError) as caught:
            await unknown.oneshot("true")
    finally:
        await good.close()
        await unknown.close()
    assert "not in" in str(caught.value) and str(known) in str(caught.value)
    assert known.read_text() == ssh_lab[0].known_hosts_line() + "\n"  # strict never writes


async def test_accept_new_records_the_key(ssh_lab: SshLab, tmp_path: Path) -> None:
    known = tmp_path / "sub" / "known_hosts"
    host = ssh_host(ssh_lab, 1, host_key_check="accept-new", known_hosts=known)
    try:
        assert (await host.oneshot("echo first")).output == "first"
        assert known.read_text().split() == ssh_lab[1].known_hosts_line().split()
        await host.close()
        assert (await host.oneshot("echo again")).output == "again"  # now a known key
        assert len(known.read_text().splitlines()) == 1
    finally:
        await host.close()


async def test_accept_new_records_a_key_once_for_concurrent_hosts(ssh_lab: SshLab, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    hosts = [ssh_host(ssh_lab, 2, f"h{i}", host_key_check="accept-new", known_hosts=known) for i in range(4)]
    try:
        await asyncio.gather(*(h.oneshot("true") for h in hosts))
    finally:
        await asyncio.gather(*(h.close() for h in hosts))
    assert known.read_text().splitlines() == [ssh_lab[2].known_hosts_line()]


async def test_changed_host_key_is_a_clear_error(own_server: SshServer, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    host = ssh_host(own_server, host_key_check="accept-new", known_hosts=known)
    strict = ssh_host(own_server, host_key_check="strict", known_hosts=known)
    off = ssh_host(own_server, host_key_check="off", known_hosts=known)
    try:
        assert (await host.oneshot("true")).status is Status.Success
        await host.close()
        own_server.regenerate_host_key()
        for policy_host in (host, strict):
            with pytest.raises(HostConnectionError) as caught:
                await policy_host.run("true")
            message = str(caught.value)
            assert f"host key for {own_server.address}:{own_server.port} changed" in message
            assert "ssh-keygen" in message and str(known) in message
        assert (await off.oneshot("echo unchecked")).output == "unchecked"
        assert len(known.read_text().splitlines()) == 1  # the changed key was not recorded
    finally:
        for h in (host, strict, off):
            await h.close()


async def test_a_host_key_of_another_type_is_a_changed_key_at_once(
    own_server: SshServer, tmp_path: Path
) -> None:
    """A reinstalled device that now has only an ed25519 key, where known_hosts lists an RSA
    key: "changed", at the first attempt (it was taken for sshd dropping the handshake and
    retried for the whole connect timeout). A server that still has the listed RSA key
    next to others is accepted with it."""
    rsa_line = asyncssh.generate_private_key("ssh-rsa").export_public_key().decode().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[{own_server.address}]:{own_server.port} {' '.join(rsa_line)}\n")
    for policy in ("strict", "accept-new"):
        host = ssh_host(own_server, host_key_check=policy, known_hosts=known, connect_timeout=100)
        try:
            with pytest.raises(
                HostConnectionError, match=f"host key for {own_server.address}:{own_server.port} changed"
            ):
                await asyncio.wait_for(host.run("true"), 20)
        finally:
            await host.close()
    assert len(accepted(own_server)) == 0 and known.read_text().count("\n") == 1
    rsa_key = tmp_path / "host_rsa"
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(rsa_key)], check=True)
    both = SshServer("127.0.0.49", extra_config=[f"HostKey {rsa_key}"]).start()
    try:
        listed = (tmp_path / "host_rsa.pub").read_text().split()[:2]
        known.write_text(f"[{both.address}]:{both.port} {' '.join(listed)}\n")
        host = ssh_host(both, host_key_check="strict", known_hosts=known)
        try:
            assert (await host.run("echo kept")).only.output == "kept"
        finally:
            await host.close()
    finally:
        both.remove()


async def test_accept_new_keeps_a_known_hosts_file_without_a_last_newline(
    own_server: SshServer, tmp_path: Path
) -> None:
    known = tmp_path / "known_hosts"
    other = "127.0.0.99 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGm9dRZGUkq0N1yJxW3DpdSgOzdW6sQtx7bLz2tkFjEv"
    known.write_text(other)  # written by hand or a template: no newline at the end
    host = ssh_host(own_server, host_key_check="accept-new", known_hosts=known)
    try:
        assert (await host.oneshot("echo recorded")).output == "recorded"
    finally:
        await host.close()
    assert known.read_text().splitlines() == [other, own_server.known_hosts_line()]


async def test_a_revoked_host_key_is_refused_and_not_recorded(own_server: SshServer, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    key_type, key_data = own_server.host_public_key.split()[:2]
    known.write_text(f"@revoked * {key_type} {key_data}\n")
    for policy in ("accept-new", "strict"):
        host = ssh_host(own_server, host_key_check=policy, known_hosts=known)
        try:
            with pytest.raises(HostConnectionError, match=r"is marked @revoked in .*; it is refused"):
                await host.run("true")
        finally:
            await host.close()
    assert known.read_text() == f"@revoked * {key_type} {key_data}\n"


@pytest.mark.parametrize(
    "own_server",
    [{"address": "127.0.0.52", "extra_config": ["ForceCommand echo no shell for you"]}],
    indirect=True,
)
async def test_a_shell_that_ends_while_starting_says_what_it_printed(own_server: SshServer) -> None:
    """A login that is no shell (nologin, sshd's ForceCommand, a .profile that exits) ends
    at once; what it printed is the reason, so the error carries it."""
    host = ssh_host(own_server)
    try:
        with pytest.raises(HostConnectionError) as caught:
            await host.run("true")
        assert str(caught.value) == (
            "ssh: shell ended while starting: shell session 'default' on ssh ended (exit code 0);"
            " last output: 'no shell for you'"
        )
    finally:
        await host.close()


# -- connection failures -------------------------------------------------------------------------


async def test_refused_port_names_host_and_cause(own_server: SshServer) -> None:
    port = own_server.port
    own_server.stop()
    # A refusal is the verdict at once: a call that waited out (or retried through)
    # this connect_timeout, far beyond PATIENCE, fails here.
    host = RemoteHost(
        "gone", own_server.address, port=port, key=own_server.client_key_path, connect_timeout=10 * PATIENCE
    )
    with pytest.raises(HostConnectionError) as caught:
        await asyncio.wait_for(host.run("true"), PATIENCE)
    assert str(caught.value).startswith("gone: ") and "refused" in str(caught.value)


async def test_a_login_cancelled_halfway_is_not_reused_pitfall_8(own_server: SshServer) -> None:
    """A caller gives up while the connection is still being set up (sshd paused after
    the TCP accept): nothing half-open is kept; once the server answers again, the next
    call makes a working connection and shell."""
    host = ssh_host(own_server, host_id="halfway")
    own_server.pause()
    try:
        for call in (host.run("true"), host.oneshot("true")):
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(call, 0.5)
        assert not host.is_connected
    finally:
        own_server.resume()
    try:
        assert (await host.run("echo whole")).only.output == "whole"
        assert (await host.oneshot("echo whole too")).output == "whole too"
    finally:
        await host.close()


async def test_unanswering_host_fails_within_connect_timeout(own_server: SshServer) -> None:
    own_server.pause()  # the kernel accepts the TCP connection; sshd never answers
    host = ssh_host(own_server, host_id="hung", connect_timeout=1)
    try:
        # Nothing but the connect timeout ends a call to a paused sshd: without it the
        # call would meet PATIENCE; the message names the timeout that ended it.
        with pytest.raises(HostConnectionError) as caught:
            await asyncio.wait_for(host.oneshot("true"), PATIENCE)
        assert str(caught.value).startswith("hung: ") and "connect timed out after 1s" in str(caught.value)
        assert waiting_connections(own_server) == 1
        # concurrent callers share one attempt's verdict: the callers that arrive while it
        # runs wait for its end, not for an attempt of their own (or one more after it)
        callers = 6
        results = await asyncio.wait_for(
            asyncio.gather(*(host.oneshot("true") for _ in range(callers)), return_exceptions=True), PATIENCE
        )
        assert all(
            isinstance(r, HostConnectionError) and "connect timed out after 1s" in str(r) for r in results
        )
        assert waiting_connections(own_server) == 1 + 1
    finally:
        own_server.resume()
        await host.close()


@pytest.mark.parametrize("own_server", [{"address": "127.0.0.34", "max_startups": 1}], indirect=True)
async def test_handshake_drops_are_retried(own_server: SshServer) -> None:
    """MaxStartups 1: sshd drops every connection beyond one in the handshake (pitfall 11)."""
    hosts = [ssh_host(own_server, host_id=f"h{i}", connect_timeout=PATIENCE) for i in range(12)]
    try:
        results = await asyncio.gather(*(h.oneshot(f"echo {h.id}") for h in hosts))
        assert [r.output for r in results] == [h.id for h in hosts]
    finally:
        await asyncio.gather(*(h.close() for h in hosts))
    assert "MaxStartups" in own_server.log  # drops really happened and were survived


async def test_lost_connection_between_and_during_commands_b18(own_server: SshServer) -> None:
    host = ssh_host(own_server, host_id="dropper")
    try:
        await host.run("cd /tmp")
        in_shell, in_oneshot = unique_sleep(), unique_sleep()
        running = asyncio.ensure_future(host.run(f"echo started; sleep {in_shell}"))
        oneshot = asyncio.ensure_future(host.oneshot(f"sleep {in_oneshot}"))

        async def both_running() -> bool:
            return await sleeping(host, in_shell) != "" and await sleeping(host, in_oneshot) != ""

        assert await wait_until(both_running)  # the server dies during both commands
        own_server.kill()
        # an unnoticed loss would end as the command timeout (30 s) with its own message
        during = (await asyncio.wait_for(running, PATIENCE)).only
        assert during.status is Status.Error and during.retcode == -1
        assert "connection lost" in during.output
        shot = await asyncio.wait_for(oneshot, PATIENCE)
        assert shot.status is Status.Error and "dropper" in shot.output
        # between commands, with the server still down: a ConnectionError naming the host
        for call in (host.run("true"), host.oneshot("true")):
            with pytest.raises(HostConnectionError, match=r"^dropper: "):
                await asyncio.wait_for(call, PATIENCE)
        own_server.restart()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert (await host.run("echo back")).only.output == "back"
        assert any(issubclass(w.category, ShellResetWarning) for w in caught)
        assert (await host.oneshot("echo back too")).output == "back too"
    finally:
        await host.close()


async def test_connection_lost_during_recovery_is_an_error_result_pitfall_9(own_server: SshServer) -> None:
    """The server dies while the session recovers from a timeout (the command ignores
    Ctrl-C, so recovery takes its steps): the run still returns an Error result, no
    traceback escapes from the recovery, and the host reconnects once the server is back."""
    host = ssh_host(own_server, host_id="mid-recovery")
    try:
        duration = unique_sleep()
        running = asyncio.ensure_future(host.run(f"trap '' INT; sleep {duration}", timeout=1))
        await asyncio.sleep(1.5)  # past the timeout: the recovery's interrupt step waits
        assert not running.done()
        own_server.kill()
        entry = (await asyncio.wait_for(running, PATIENCE)).only
        assert (entry.status, entry.retcode) == (Status.Error, -1)
        assert entry.output.startswith("Command timed out after 1")
        own_server.restart()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ShellResetWarning)
            assert (await host.run("echo back")).only.output == "back"
    finally:
        await host.close()


async def test_network_gone_during_a_run_b18(own_server: SshServer) -> None:
    """The server stops answering in the middle of a command (paused: no RST, no FIN).
    Keepalives notice: the run ends as an Error saying the connection was lost, long
    before its own timeout, and once the network is back the host works again."""
    host = ssh_host(own_server, host_id="stalled", keepalive_interval=0.3)
    try:
        await host.run("cd /tmp")
        running = asyncio.ensure_future(host.run("echo started; sleep 2; echo finished", timeout=60))
        shell = host.default_session._shell
        assert await wait_until(lambda: b"started" in shell._buffer)  # the command runs
        own_server.pause()
        try:
            entry = (await asyncio.wait_for(running, 30)).only  # the run's own bound: 60 s
        finally:
            own_server.resume()
        assert (entry.status, entry.retcode) == (Status.Error, -1)
        assert "connection lost" in entry.output and entry.output.endswith("started")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert (await host.run("echo back")).only.output == "back"
        assert any(issubclass(w.category, ShellResetWarning) for w in caught)
    finally:
        own_server.resume()
        await host.close()


async def test_keepalive_notices_a_dead_peer(own_server: SshServer) -> None:
    host = ssh_host(own_server, keepalive_interval=0.3)
    try:
        assert (await host.oneshot("true")).status is Status.Success
        own_server.pause()  # no RST, no FIN: only keepalives can tell
        assert await wait_until(lambda: not host.is_connected)  # without keepalives: never
        own_server.resume()
        assert (await host.oneshot("echo alive")).output == "alive"
    finally:
        own_server.resume()
        await host.close()


# -- oneshot and the channel budget ----------------------------------------------------------------


async def test_twenty_concurrent_oneshots_b20(any_ssh_host: Host) -> None:
    await any_ssh_host.run("true")  # the shell holds one of the channels
    results = await asyncio.gather(*(any_ssh_host.oneshot(f"sleep 0.3; echo {i}") for i in range(20)))
    assert [(r.status, r.output) for r in results] == [(Status.Success, str(i)) for i in range(20)]


@pytest.mark.parametrize("own_server", [{"address": "127.0.0.35", "max_sessions": 3}], indirect=True)
async def test_budget_adapts_to_a_lower_max_sessions(own_server: SshServer) -> None:
    host = ssh_host(own_server)  # budget 10, server allows 3
    try:
        await host.run("true")
        results = await asyncio.gather(*(host.oneshot(f"sleep 0.2; echo {i}") for i in range(8)))
        assert [r.output for r in results] == [str(i) for i in range(8)]
        assert (await host.run("echo shell-still-fine")).only.output == "shell-still-fine"
    finally:
        await host.close()


@pytest.mark.parametrize("own_server", [{"address": "127.0.0.36", "max_sessions": 3}], indirect=True)
async def test_sessions_holding_every_channel_are_an_error_at_once_pitfall_11(own_server: SshServer) -> None:
    """Session shells keep their channel until closed: once they hold all of them, a
    oneshot, a transfer or one more session would wait for nothing. Each says so at once
    (the bound is far below the connect and command timeouts), and closing a session frees
    a channel."""
    host = ssh_host(own_server, max_sessions=3, connect_timeout=100, command_timeout=100)
    try:
        await host.run("true")
        held = [await host.open_session(f"s{i}") for i in range(2)]
        for session in held:
            await session.run("true")
        with pytest.raises(
            HostConnectionError, match="all 3 channels of the connection are held by open sessions"
        ):
            await asyncio.wait_for(host.open_session("s2"), 20)
        with pytest.raises(HostConnectionError, match="held by open sessions"):
            await asyncio.wait_for(host.oneshot("true"), 20)
        status, message = await asyncio.wait_for(host.get("/etc/hostname", "/tmp"), 20)
        assert status is Status.Error and "held by open sessions" in message
        await held[0].close()
        assert (await host.oneshot("echo freed")).output == "freed"
    finally:
        await host.close()


async def test_oneshot_timeout_kills_the_whole_process_group(any_ssh_host: Host) -> None:
    """Pitfall 10: the remote shell, its foreground and background children all die.

    The timeout also covers opening the channel and starting the shell, which on a
    loaded machine can take longer than 1 s: then the command never started (its pid is
    not in the output) and nothing of it may be left; it is tried again with twice the
    time, until it did start and was killed running."""
    duration = unique_sleep()
    timeout = 1.0
    while True:
        entry = await any_ssh_host.oneshot(
            f"echo pid=$$; sleep {duration} & sleep {duration}; true", timeout=timeout
        )
        assert entry.output.startswith(f"Command timed out after {timeout:g}s"), entry.output
        match = re.search(r"pid=(\d+)", entry.output)
        if match is not None:
            break
        assert await gone(any_ssh_host, duration)
        timeout *= 2
        assert timeout < PATIENCE, f"the command never started: {entry.output}"
    session_id = match.group(1)  # sshd made the command's shell a session (and group) leader

    async def session_empty() -> bool:
        return (await any_ssh_host.oneshot(f"ps -o pid= -s {session_id} || true")).output == ""

    assert await wait_until(session_empty)


async def test_cancelled_oneshot_leaves_no_remote_process(any_ssh_host: Host) -> None:
    duration = unique_sleep()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(any_ssh_host.oneshot(f"sh -c 'sleep {duration}; true'; true"), 1)
    assert await gone(any_ssh_host, duration, PATIENCE)


async def test_oneshot_exit_by_signal(any_ssh_host: Host) -> None:
    entry = await any_ssh_host.oneshot("kill -TERM $$")
    assert (entry.status, entry.retcode) == (Status.Failed, 128 + signal.SIGTERM)


async def test_oneshot_binary_and_large_output_b10(any_ssh_host: Host) -> None:
    entry = await any_ssh_host.oneshot("head -c 4096 /dev/urandom; seq 1 100000")
    assert entry.status is Status.Success
    assert entry.output.endswith("\n99999\n100000")


async def test_shell_has_a_terminal_only_with_pty(any_ssh_host: Host, shell_mode: str) -> None:
    entry = (await any_ssh_host.run("tty <&1")).only  # stdin is /dev/null; ask about stdout
    if shell_mode == "pty":
        assert (entry.status, entry.output.startswith("/dev/pts/")) == (Status.Success, True)
    else:
        assert (entry.status, entry.output) == (Status.Failed, "not a tty")


async def test_rc_file_aliases_stay_off_in_a_shell_on_pipes() -> None:
    """Aliases from a file every bash reads (``BASH_ENV``, here set by the server's
    ``SetEnv``) were never expanded in a shell on pipes; the framing, which switches
    expansion on for its own alias, drops them first, so ``rm`` removes instead of
    asking a question that ``/dev/null`` answers "no". (``.bashrc``'s own aliases stay
    in the ``bash -c`` that sshd starts and that execs the user's shell.) The server is
    this test's own: no other test's shells read the file."""
    bash_env = Path(f"/tmp/otto-bash-env-{unique()}")
    bash_env.write_text("alias rm='rm -i' otto_rc_alias='echo from-rc'\nOTTO_RC_READ=yes\n")
    bash_env.chmod(0o644)
    server = SshServer("127.0.0.31", extra_config={"SetEnv": f"BASH_ENV={bash_env}"}).start()
    host = ssh_host(server, 0, "ssh-rc")
    try:
        # the shell read the file (or this test would prove nothing)
        assert (await host.run("echo ${OTTO_RC_READ-unread}")).only.output == "yes"
        assert (await host.run("otto_rc_alias")).only.retcode == 127
        target = f"/tmp/otto-rc-{unique()}"
        removed = await host.run([f"touch {target}", f"rm {target}", f"test -e {target}"])
        assert [s.retcode for s in removed] == [0, 0, 1]
    finally:
        await host.close()
        server.remove()
        bash_env.unlink()


async def test_timeout_spares_background_jobs_and_close_ends_them(any_ssh_host: Host) -> None:
    """Closing hangs up: the shell and its jobs get SIGHUP."""
    await timeout_spares_older_jobs_and_close_ends_them(any_ssh_host)


@pytest.mark.parametrize("shell", ["dash", "busybox sh"])
async def test_posix_shells_survive_syntax_errors_and_timeouts(any_ssh_host: Host, shell: str) -> None:
    """dash and ash exit on an ``eval`` syntax error unless run as ``command eval``;
    on pipes, a timeout's SIGINT must stop the command and leave them alive."""
    name = shell.split()[-1]
    await any_ssh_host.send(f"exec {shell}\n")  # typed: run() gives commands /dev/null as stdin
    assert (await any_ssh_host.run("cd /tmp; echo $0")).only.output == name
    broken = (await any_ssh_host.run("echo 'unbalanced")).only
    assert broken.status is Status.Failed
    assert re.search("(?i)unterminated quoted string", broken.output)
    duration = unique_sleep()
    slow = (await any_ssh_host.run(f"echo before; sleep {duration} | cat", timeout=1)).only
    assert slow.output.startswith("Command timed out after 1") and slow.output.endswith("before")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ShellResetWarning)  # the same shell answers: no reset
        assert (await any_ssh_host.run("echo $0; pwd")).only.output == f"{name}\n/tmp"
    assert await sleeping(any_ssh_host, duration) == ""


async def test_aes_gcm_is_preferred_and_others_still_work(ssh_lab: SshLab) -> None:
    host = ssh_host(ssh_lab, 1)
    try:
        await host.run("true")
        conn = await host._ssh.get()
        assert conn.get_extra_info("send_cipher") == "aes128-gcm@openssh.com"
    finally:
        await host.close()


@pytest.mark.parametrize(
    "own_server",
    [{"address": "127.0.0.41", "extra_config": ["Ciphers chacha20-poly1305@openssh.com"]}],
    indirect=True,
)
async def test_server_without_aes_gcm_negotiates_chacha20(own_server: SshServer) -> None:
    host = ssh_host(own_server)
    try:
        assert (await host.run("echo negotiated")).only.output == "negotiated"
        conn = await host._ssh.get()
        assert conn.get_extra_info("send_cipher") == "chacha20-poly1305@openssh.com"
    finally:
        await host.close()


def test_p256_key_exchange_comes_before_curve25519_and_after_the_hybrids() -> None:
    defaults = [
        "gss-curve25519-sha256",
        "mlkem768x25519-sha256",
        "curve25519-sha256",
        "curve25519-sha256@libssh.org",
        "ecdh-sha2-nistp384",
        "ecdh-sha2-nistp256",
        "diffie-hellman-group14-sha256",
    ]
    assert preferred_kex_algs(defaults) == (
        "gss-curve25519-sha256",
        "mlkem768x25519-sha256",
        "ecdh-sha2-nistp256",
        "curve25519-sha256",
        "curve25519-sha256@libssh.org",
        "ecdh-sha2-nistp384",
        "diffie-hellman-group14-sha256",
    )
    without_curve = ["ecdh-sha2-nistp384", "ecdh-sha2-nistp256"]
    assert preferred_kex_algs(without_curve) == tuple(without_curve)
    assert set(PREFERRED_KEX) >= {"ecdh-sha2-nistp256", "curve25519-sha256"}


@pytest.mark.parametrize(
    ("own_server", "expected"),
    [
        ({"address": "127.0.0.42", "log_level": "DEBUG"}, "ecdh-sha2-nistp256"),
        (
            {
                "address": "127.0.0.42",
                "log_level": "DEBUG",
                "extra_config": ["KexAlgorithms curve25519-sha256"],
            },
            "curve25519-sha256",
        ),
    ],
    indirect=["own_server"],
)
async def test_key_exchange_prefers_p256_and_falls_back(own_server: SshServer, expected: str) -> None:
    host = ssh_host(own_server)
    try:
        assert (await host.run("echo exchanged")).only.output == "exchanged"
    finally:
        await host.close()
    assert f"kex: algorithm: {expected}" in own_server.log


async def test_line_limit_sends_long_commands_in_pieces(ssh_lab: SshLab) -> None:
    host = ssh_host(ssh_lab, 0, line_limit=200)
    payload = "".join(f"{i:05d}" for i in range(1200))  # a 6000-character command line
    try:
        entry = (await host.run(f"echo {payload} | wc -c; echo {payload[-20:]}")).only
        assert entry.output == f"{len(payload) + 1}\n{payload[-20:]}"
    finally:
        await host.close()


def test_invalid_options_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="host_key_check"):
        RemoteHost("bad", "127.0.0.2", host_key_check="sometimes")
    with pytest.raises(ValueError, match="max_sessions"):
        RemoteHost("bad", "127.0.0.2", max_sessions=0)
    with pytest.raises(TypeError, match="hop"):
        RemoteHost("bad", "127.0.0.2", hop="jumpbox")  # type: ignore[arg-type]


# -- jump hosts ----------------------------------------------------------------------------------


def _socket_owners(address: str, port: int) -> set[int]:
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", "dst", f"{address}:{port}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {int(pid) for pid in re.findall(r"pid=(\d+)", out)}


async def test_jump_chain_of_three(ssh_lab: SshLab, tmp_path: Path) -> None:
    """client -> A -> B -> C; each hop with its own user, credentials and host key policy."""
    a_srv, b_srv, c_srv = ssh_lab[1], ssh_lab[2], ssh_lab[3]
    known = tmp_path / "known_hosts"
    known.write_text(a_srv.known_hosts_line() + "\n")
    a = ssh_host(a_srv, host_id="A", user="root", host_key_check="strict", known_hosts=known)
    b = ssh_host(
        b_srv,
        host_id="B",
        hop=a,
        key=None,
        agent=False,
        password=PASSWORD,
        host_key_check="accept-new",
        known_hosts=known,
    )
    c = ssh_host(c_srv, host_id="C", hop=b)
    try:
        assert (await c.run("echo $SSH_CONNECTION")).only.output.split()[2:] == [
            c_srv.address,
            str(c_srv.port),
        ]
        assert (await c.oneshot("id -un")).output == PASSWORD_USER
        assert a.is_connected and b.is_connected
        # the TCP connection to C is made by B's sshd, the one to B by A's sshd
        assert _socket_owners(c_srv.address, c_srv.port) & set(b_srv.connection_pids())
        assert _socket_owners(b_srv.address, b_srv.port) & set(a_srv.connection_pids())
        assert b_srv.known_hosts_line().split()[1:] == known.read_text().splitlines()[1].split()[1:]
    finally:
        for host in (c, b, a):
            await host.close()


async def test_a_connect_that_runs_out_of_time_names_what_it_waited_for(ssh_lab: SshLab) -> None:
    """A hung server and a host behind a hung hop both time out; each message says which
    (a paused sshd accepts TCP and then says nothing)."""
    hung = SshServer("127.0.0.43").start()
    hung.pause()
    direct = ssh_host(hung, host_id="direct", connect_timeout=1)
    jump = ssh_host(hung, host_id="jump", connect_timeout=5)
    inner = ssh_host(ssh_lab, 1, host_id="inner", hop=jump, connect_timeout=1)
    try:
        with pytest.raises(HostConnectionError) as caught:
            await direct.run("true")
        assert str(caught.value) == (
            f"direct: connect timed out after 1s; no answer from {PASSWORD_USER}@{hung.address}:{hung.port}"
            " (TCP connect, key exchange or login)"
        )
        with pytest.raises(HostConnectionError) as caught:
            await inner.run("true")
        assert (
            str(caught.value)
            == "inner: connect timed out after 1s; no answer from hop 'jump' (its own connect)"
        )
    finally:
        for host in (direct, inner, jump):
            await host.close()
        hung.resume()
        hung.remove()


async def test_oneshot_on_a_server_that_hangs_after_connecting_keeps_its_timeout() -> None:
    """B13: opening the oneshot's channel counts against its timeout. A hung server keeps the
    TCP connection until keepalives give up (45 s by default), which must not be the bound."""
    server = SshServer("127.0.0.46").start()
    host = ssh_host(server, host_id="hung", connect_timeout=5)
    try:
        assert (await host.oneshot("echo up")).output == "up"  # connected
        server.pause()
        status = await asyncio.wait_for(host.oneshot("echo never", timeout=2), 20)
        assert status.status is Status.Error and status.retcode == -1
        assert status.output == "Command timed out after 2s (the server did not open a channel)"
    finally:
        server.resume()
        await host.close()
        server.remove()


async def test_hop_from_lab_file(ssh_lab: SshLab, tmp_path: Path) -> None:
    path = write_lab_toml(
        tmp_path / "lab.toml",
        {"jump": ssh_lab[0], "inner": ssh_lab[1]},
        user=PASSWORD_USER,
        extra=lambda host_id, server: {"hop": "jump"} if host_id == "inner" else {},
    )
    lab = load_lab(path)
    inner, jump = lab["inner"], lab["jump"]
    try:
        assert isinstance(inner, RemoteHost) and inner.hop is jump
        assert (await inner.run("echo through")).only.output == "through"
        assert isinstance(jump, RemoteHost) and jump.is_connected
    finally:
        await inner.close()
        await jump.close()
