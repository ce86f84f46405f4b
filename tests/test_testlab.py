"""Smoke tests of the test lab: every server answers REAL clients (no pytest_otto here).

asyncssh for ssh, a raw-socket telnet client, ``os.open`` + pexpect for the serial line.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import time
import tomllib
from pathlib import Path

import asyncssh
import pexpect
import pexpect.fdpexpect
import pytest
from test_behaviour import PATIENCE

import testlab._util
from testlab import (
    PASSWORD,
    PASSWORD_USER,
    RedisServer,
    SerialConsole,
    SshLab,
    SshServer,
    TelnetServer,
    write_lab_toml,
)
from testlab._serial_relay import Pacer
from testlab._util import LabError, _alive, descendants

pytest_plugins = ["testlab.pytest_fixtures"]

PROMPT = re.compile(rb"[$#] $")
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


def lines(data: bytes) -> list[str]:
    """Output lines without ANSI sequences (bash 5.2 sends bracketed-paste ESC[?2004h/l) or stray CRs."""
    return [line.strip("\r") for line in ANSI.sub(b"", data).decode().split("\r\n")]


def _ssh(server: SshServer, user: str = "root", **kwargs):
    options = {"known_hosts": None, "client_keys": [str(server.client_key_path)], "connect_timeout": 10}
    options.update(kwargs)
    return asyncssh.connect(server.address, server.port, username=user, **options)


async def _run(server: SshServer, command: str, user: str = "root", **kwargs) -> str:
    async with _ssh(server, user, **kwargs) as conn:
        result = await asyncio.wait_for(conn.run(command, check=True), 20)
        return result.stdout


# ------------------------------------------------------------------ ssh


def test_ssh_lab_key_auth_root(ssh_lab: SshLab) -> None:
    assert len(ssh_lab) == 4
    assert ssh_lab.addresses == ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]

    async def main() -> list[str]:
        return await asyncio.gather(*(_run(s, "echo hi; id -un; echo $SSH_CONNECTION") for s in ssh_lab))

    outputs = asyncio.run(main())
    for server, out in zip(ssh_lab, outputs, strict=True):
        got = out.splitlines()
        assert got[:2] == ["hi", "root"]
        assert got[2].split()[2:] == [server.address, str(server.port)]


def test_ssh_password_and_key_for_password_user(ssh_lab: SshLab, password_user: tuple[str, str]) -> None:
    user, password = password_user
    server = ssh_lab[0]

    async def main() -> tuple[str, str, str]:
        by_password = await _run(server, "echo hi; id -un", user, password=password, client_keys=None)
        by_key = await _run(server, "id -un; echo $SHELL", user)
        with pytest.raises(asyncssh.PermissionDenied):
            await _run(server, "true", user, password="wrong-password", client_keys=None)
        return by_password, by_key, server.log

    by_password, by_key, log = asyncio.run(main())
    assert by_password == f"hi\n{user}\n"
    assert by_key == f"{user}\n/bin/bash\n"
    assert "Accepted keyboard-interactive/pam for ottopw" in log or "Accepted password for ottopw" in log


def test_ssh_kill_drops_connection_restart_accepts_again() -> None:
    with SshServer("127.0.0.30") as server:
        old_key = server.host_public_key
        port, pid = server.port, server.pid
        known_hosts = asyncssh.import_known_hosts(server.known_hosts_line() + "\n")

        async def before() -> None:
            async with _ssh(server, known_hosts=known_hosts) as conn:
                assert (await conn.run("echo up", check=True)).stdout == "up\n"
                children = server.connection_pids()
                assert children, "a connection must have sshd children"
                server.kill()
                assert not server.running and server.pid is None
                # the existing connection drops: kill() closes its sockets (the client sees
                # the reset), so the waits end at once; their bound only keeps a broken
                # kill from hanging the test (a live server would answer the echo)
                with pytest.raises((asyncssh.Error, OSError)):
                    await asyncio.wait_for(conn.run("echo still-there", check=True), PATIENCE)
                await asyncio.wait_for(conn.wait_closed(), PATIENCE)
                assert not any(_alive(child) for child in children)

        asyncio.run(before())
        with pytest.raises(OSError):
            socket.create_connection((server.address, port), timeout=2).close()
        server.restart()
        assert server.port == port and server.pid != pid
        assert server.host_public_key == old_key
        # the same known_hosts entry is still valid (strict check)
        assert asyncio.run(_run(server, "echo back", known_hosts=known_hosts)) == "back\n"


def test_ssh_stop_ends_sessions_and_regenerate_host_key_changes_key() -> None:
    with SshServer("127.0.0.31", max_sessions=2) as server:
        assert "MaxSessions 2" in server.config_path.read_text()
        assert "MaxStartups" not in server.config_path.read_text()
        known_hosts = asyncssh.import_known_hosts(server.known_hosts_line() + "\n")

        async def sessions() -> tuple[list[int], list[bytes]]:
            async with _ssh(server) as conn:
                procs = [await conn.create_process("echo started; exec sleep 30") for _ in range(2)]
                with pytest.raises(asyncssh.ChannelOpenError):
                    await conn.create_process("sleep 30")  # MaxSessions 2: the third is refused
                for proc in procs:  # both commands really run before we look at the process tree
                    assert await asyncio.wait_for(proc.stdout.readline(), 10) == "started\n"
                pids = server.connection_pids()
                commands = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in pids]
                server.stop()
                for proc in procs:
                    await asyncio.wait_for(proc.wait_closed(), 5)
                return pids, commands

        pids, commands = asyncio.run(sessions())
        # the per-connection sshd ("sshd: root@notty", maybe also its [net] child) + two `sleep 30`
        assert len(pids) >= 3
        assert sum(b"sleep" in command for command in commands) == 2  # bash -c ... or (after exec) sleep
        assert not any(_alive(pid) for pid in pids), "no session may survive stop()"

        server.start()
        old_key = server.host_public_key
        new_key = server.regenerate_host_key()
        assert server.running and new_key != old_key
        assert server.host_public_key == new_key
        with pytest.raises(asyncssh.HostKeyNotVerifiable):
            asyncio.run(_run(server, "true", known_hosts=known_hosts))
        fresh = asyncssh.import_known_hosts(server.known_hosts_line() + "\n")
        assert asyncio.run(_run(server, "echo ok", known_hosts=fresh)) == "ok\n"


def test_lab_toml_describes_servers(ssh_lab: SshLab, tmp_path: Path) -> None:
    path = ssh_lab.write_lab_toml(
        tmp_path / "lab.toml",
        name="bench",
        tags=lambda host_id, server: ["lab", host_id],
        defaults={"command_timeout": 10.0},
        extra={"connect_timeout": 5.0},
    )
    data = tomllib.loads(path.read_text())
    assert data["lab"] == {"name": "bench"}
    assert data["defaults"] == {"command_timeout": 10.0}
    assert list(data["hosts"]) == ["ssh1", "ssh2", "ssh3", "ssh4"]
    ssh2 = data["hosts"]["ssh2"]
    assert ssh2 == {
        "transport": "ssh",
        "address": "127.0.0.3",
        "port": ssh_lab[1].port,
        "user": "root",
        "key": str(ssh_lab.client_key_path),
        "host_key_check": "off",
        "tags": ["lab", "ssh2"],
        "connect_timeout": 5.0,
    }
    other = write_lab_toml(tmp_path / "two.toml", {"edge": ssh_lab[0]}, user="ottopw", password={"env": "PW"})
    edge = tomllib.loads(other.read_text())["hosts"]["edge"]
    assert edge["user"] == "ottopw" and edge["password"] == {"env": "PW"}
    assert ssh_lab.known_hosts_text().count("\n") == 4


# ------------------------------------------------------------------ telnet

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240


class TelnetClient:
    """Minimal telnet client: refuses every option except server ECHO/SGA."""

    def __init__(self, address: str, port: int) -> None:
        self.sock = socket.create_connection((address, port), timeout=5)
        self.buffer = b""
        self._pending = b""

    def _feed(self, data: bytes) -> None:
        data = self._pending + data
        self._pending = b""
        index = 0
        while index < len(data):
            byte = data[index]
            if byte != IAC:
                self.buffer += bytes([byte])
                index += 1
                continue
            if index + 1 >= len(data):
                self._pending = data[index:]
                return
            command = data[index + 1]
            if command in (DO, DONT, WILL, WONT):
                if index + 2 >= len(data):
                    self._pending = data[index:]
                    return
                option = data[index + 2]
                if command == DO:
                    self.sock.sendall(bytes([IAC, WONT, option]))
                elif command == WILL:
                    self.sock.sendall(bytes([IAC, DO if option in (1, 3) else DONT, option]))
                index += 3
            elif command == SB:
                end = data.find(bytes([IAC, SE]), index)
                if end < 0:
                    self._pending = data[index:]
                    return
                index = end + 2
            elif command == IAC:
                self.buffer += bytes([IAC])
                index += 2
            else:
                index += 2

    def expect(self, pattern: bytes | re.Pattern[bytes], timeout: float = 8.0) -> bytes:
        """Read until ``pattern`` matches; return (and consume) everything up to the match end."""
        regex = pattern if isinstance(pattern, re.Pattern) else re.compile(re.escape(pattern))
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.buffer)
            if match:
                text, self.buffer = self.buffer[: match.end()], self.buffer[match.end() :]
                return text
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{pattern!r} not seen; got {self.buffer[-300:]!r}")
            self.sock.settimeout(remaining)
            data = self.sock.recv(4096)
            if not data:
                raise EOFError(f"closed while waiting for {pattern!r}; got {self.buffer[-300:]!r}")
            self._feed(data)

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\r\n")

    def close(self) -> None:
        self.sock.close()


def test_telnet_shell_mode(telnet_server: TelnetServer) -> None:
    client = TelnetClient(telnet_server.address, telnet_server.port)
    try:
        client.expect(PROMPT)
        client.send("echo hi; id -un")
        out = client.expect(PROMPT)
        assert b"echo hi; id -un\r\n" in out  # the server echoes what we type
        assert lines(out)[1:3] == ["hi", "root"]  # CRLF line endings
        assert telnet_server.session_pids()
    finally:
        client.close()


def test_telnet_login_right_and_wrong_password(telnet_login_server: TelnetServer) -> None:
    client = TelnetClient(telnet_login_server.address, telnet_login_server.port)
    try:
        client.expect(b"login: ")
        client.send(PASSWORD_USER)
        client.expect(b"Password: ")
        client.send("not-the-password")
        out = client.expect(b"login: ", timeout=15)  # login's fail delay is ~3 s
        assert b"Login incorrect" in out
        client.send(PASSWORD_USER)
        client.expect(b"Password: ")
        client.send(PASSWORD)
        client.expect(PROMPT)
        client.send("id -un")
        assert lines(client.expect(PROMPT))[1] == "ottopw"
        client.send("exit")
        with pytest.raises(EOFError):
            client.expect(b"never", timeout=5)
    finally:
        client.close()


def test_telnet_kill_drops_sessions() -> None:
    with TelnetServer("127.0.0.32", login=False) as server:
        client = TelnetClient(server.address, server.port)
        try:
            client.expect(PROMPT)
            pids = server.session_pids()
            assert pids
            server.kill()
            with pytest.raises((EOFError, ConnectionError)):
                client.expect(b"never", timeout=5)
            assert not any(_alive(pid) for pid in pids)
        finally:
            client.close()
        server.restart()
        again = TelnetClient(server.address, server.port)
        try:
            again.expect(PROMPT)
        finally:
            again.close()


# ------------------------------------------------------------------ serial


def _open_serial(console: SerialConsole) -> tuple[int, pexpect.fdpexpect.fdspawn]:
    fd = os.open(console.device, os.O_RDWR | os.O_NOCTTY)
    return fd, pexpect.fdpexpect.fdspawn(fd, timeout=8)


def test_serial_login_logout_login_again(password_user: tuple[str, str]) -> None:
    # its own console: the shared one may still be in /bin/login's failure delay (a wrong
    # password test) or respawning when this test types at it
    with SerialConsole(login=True, name="ttyRELOG") as console:
        _login_logout_login_again(console)


def _login_logout_login_again(console: SerialConsole) -> None:
    assert console.device.is_symlink() and os.readlink(console.device).startswith("/dev/pts/")
    for round_ in range(2):
        fd, child = _open_serial(console)
        try:
            os.write(fd, b"\r")  # wake the getty: it (re)prints the prompt
            child.expect(b"login: ")
            os.write(fd, PASSWORD_USER.encode() + b"\r")
            child.expect(b"Password: ")
            os.write(fd, PASSWORD.encode() + b"\r")
            child.expect(PROMPT)
            os.write(fd, f"echo round-{round_}; id -un\r".encode())
            child.expect(PROMPT)
            assert f"echo round-{round_}; id -un\r\n".encode() in child.before  # the console echoes
            assert lines(child.before)[1:3] == [f"round-{round_}", "ottopw"]
            os.write(fd, b"exit\r")
            child.expect(b"logout")
            child.expect(b"login: ")  # getty respawned on the same line
        finally:
            os.close(fd)


def test_serial_shell_mode_and_clean_stop() -> None:
    with SerialConsole(login=False, name="ttyS9") as console:
        assert console.device.name == "ttyS9"
        fd, child = _open_serial(console)
        try:
            os.write(fd, b"\r")
            child.expect(PROMPT)
            os.write(fd, b"echo $((6*7)); tty\r")
            # the reply is computed by the shell (42 is not in what we typed), CRLF-terminated
            child.expect(rb"[\r\n]42\r\n(/dev/pts/\d+)\r\n")
            assert child.match.group(1).startswith(b"/dev/pts/")
            child.expect(PROMPT)
            pids = [console.pid, *descendants(console.pid)]
            assert len(pids) >= 2
        finally:
            os.close(fd)
        console.stop()
        assert not console.device.exists()
        assert not any(_alive(pid) for pid in pids)


def test_pacer_releases_bytes_only_once_they_crossed_the_line() -> None:
    pacer = Pacer(11520)  # 115200 baud, 10 bits a byte
    byte = 1 / 11520
    assert pacer.allowance(100.0, 40) == 0  # 40 bytes handed to an idle line at t = 100
    assert pacer.wait(100.0, 40) == pytest.approx(40 * byte)  # woken once all 40 crossed
    assert pacer.wait(100.0, 1000) == pytest.approx(64 * byte)  # ... or a FIFO's worth of many
    assert pacer.allowance(100.0 + 10.5 * byte, 40) == 10
    pacer.sent(10, 30)
    assert pacer.allowance(100.0 + 10.9 * byte, 30) == 0
    # 5 more bytes queued behind the burst cross right after it, without a gap
    assert pacer.allowance(100.0 + 45 * byte, 35) == 35
    pacer.sent(35, 0)
    # an idle line saves no credit: bytes queued a second later start crossing then
    assert pacer.allowance(101.0 + 45 * byte, 20) == 0
    assert pacer.allowance(101.0 + 65 * byte, 20) == 20


def test_an_unpaced_line_releases_everything_at_once() -> None:
    pacer = Pacer(0)
    assert pacer.allowance(0.0, 4096) == 4096
    assert pacer.wait(0.0, 4096) is None


def test_a_paced_serial_line_carries_a_shell_intact() -> None:
    with SerialConsole(login=False, name="ttyPACED", baud=115200) as console:
        assert "115200 baud" in repr(console)
        fd, child = _open_serial(console)
        try:
            os.write(fd, b"\r")
            child.expect(PROMPT)
            # a 2 KB line in (a canonical tty line holds at most 4 KB) and 6 KB out: more
            # than the relay's FIFO and its 4 KiB reads
            payload = "".join(f"{i:04d}" for i in range(500))
            os.write(fd, f"echo {payload} | rev | rev; seq 1000; echo done\r".encode())
            child.expect(rb"\r\ndone\r\n", timeout=30)
            got = lines(child.before)
            assert got[1:] == [payload, *map(str, range(1, 1001))]
            child.expect(PROMPT)
        finally:
            os.close(fd)


def test_a_serial_console_refuses_a_negative_baud_rate() -> None:
    with pytest.raises(LabError, match=r"ttyNEG.*baud"):
        SerialConsole(login=False, name="ttyNEG", baud=-1)


def test_lab_toml_for_telnet_and_serial(
    telnet_login_server: TelnetServer, serial_login_console: SerialConsole, tmp_path: Path
) -> None:
    path = write_lab_toml(tmp_path / "mixed.toml", [telnet_login_server, serial_login_console])
    hosts = tomllib.loads(path.read_text())["hosts"]
    assert hosts["telnet1"] == {
        "transport": "telnet",
        "address": "127.0.0.21",
        "port": telnet_login_server.port,
        "user": PASSWORD_USER,
        "password": PASSWORD,
    }
    assert hosts["serial1"] == {
        "transport": "serial",
        "device": str(serial_login_console.device),
        "baud": 115200,
        "user": PASSWORD_USER,
        "password": PASSWORD,
    }


DAEMONS = {
    "sshd": lambda address, port: SshServer(address, port),
    "telnetd": lambda address, port: TelnetServer(address, port),
    "redis-server": lambda address, port: RedisServer(address, port),
}


@pytest.mark.parametrize("daemon", DAEMONS)
def test_a_daemon_whose_free_port_is_taken_moves_to_another(
    daemon: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between choosing a free port and binding it another process may take it: the
    daemon dies saying the address is in use and starts again on a new free port. A port
    that was asked for is not replaced: that is an error naming the daemon, with its log."""
    address = "127.0.0.1" if daemon == "redis-server" else "127.0.0.32"
    with socket.socket() as taken:
        taken.bind((address, 0))
        taken.listen()
        busy = taken.getsockname()[1]
        chosen = iter([busy])
        real_free_port = testlab._util.free_port
        monkeypatch.setattr(
            testlab._util, "free_port", lambda addr: next(chosen, None) or real_free_port(addr)
        )
        server = DAEMONS[daemon](address, None)
        try:
            server.start()
            assert server.running and server.port != busy
            socket.create_connection((address, server.port), timeout=PATIENCE).close()
        finally:
            server.remove()
        pinned = DAEMONS[daemon](address, busy)
        try:
            with pytest.raises(
                LabError, match=rf"^{daemon} on {address}:{busy} failed to start:\n(.|\n)*in use"
            ):
                pinned.start()
            assert not pinned.running
        finally:
            pinned.remove()
