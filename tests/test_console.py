"""Console-specific behaviour of telnet and serial hosts, against real servers.

Login (success, wrong password, already logged in), secrets never logged, long
commands sent in acknowledged pieces, paced writes, the telnet protocol layer,
one shell per serial line, and a lost console. B5-B23 themselves run in
test_console_behaviour.py.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import pty
import select
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_behaviour import PATIENCE

from pytest_otto import HostConnectionError, LineHeld, SerialHost, Status, TelnetHost
from pytest_otto.transports.console import WRITE_CHUNK
from pytest_otto.transports.telnet import TelnetTransport
from testlab._util import accept_forever, stop_listening
from testlab.serial import SerialConsole
from testlab.telnetd import TelnetServer


def telnet_host(server: TelnetServer, **options: object) -> TelnetHost:
    """A telnet host for ``server`` with its credentials (if it asks for a login)."""
    options.setdefault("user", server.user)
    options.setdefault("password", server.password)
    options.setdefault("connect_timeout", 10)
    return TelnetHost("tn", server.address, port=server.port, **options)  # type: ignore[arg-type]


def serial_host(console: SerialConsole, **options: object) -> SerialHost:
    """A serial host for ``console`` with its credentials (if it asks for a login)."""
    options.setdefault("user", console.user)
    options.setdefault("password", console.password)
    options.setdefault("connect_timeout", 10)
    return SerialHost("sl", console.device, **options)  # type: ignore[arg-type]


@pytest.fixture
def closing() -> Iterator[list]:
    """Hosts appended here are closed after the test."""
    hosts: list = []
    yield hosts
    for host in hosts:
        host.close_sync()


@pytest.fixture(params=["telnet", "serial"])
def line_host(
    request: pytest.FixtureRequest, closing: list, telnet_server: TelnetServer, serial_console: SerialConsole
) -> TelnetHost | SerialHost:
    """A console host with a login, on telnetd and on the serial line; closed after the test."""
    host = telnet_host(telnet_server) if request.param == "telnet" else serial_host(serial_console)
    closing.append(host)
    return host


# -- login ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["telnet", "serial"])
async def test_login_and_already_logged_in(
    kind: str,
    closing: list,
    telnet_server: TelnetServer,
    telnet_login_server: TelnetServer,
    serial_console: SerialConsole,
    serial_login_console: SerialConsole,
) -> None:
    if kind == "telnet":
        login, shell = telnet_host(telnet_login_server), telnet_host(telnet_server)
    else:
        login, shell = serial_host(serial_login_console), serial_host(serial_console)
    closing += [login, shell]
    assert (await login.run("id -un")).only.output == "ottopw"
    assert (await shell.run("id -un")).only.output == "root"  # no prompt answered, no user set
    assert shell.user is None


async def test_serial_login_after_logout_on_close(closing: list, serial_login_console: SerialConsole) -> None:
    first = serial_host(serial_login_console)
    closing.append(first)
    await first.run("export OTTO_LEFT_BEHIND=1")
    await first.close()  # logs out: the line is back at its login prompt
    second = serial_host(serial_login_console)
    closing.append(second)
    assert (await second.run("echo ${OTTO_LEFT_BEHIND:-unset}")).only.output == "unset"


async def test_serial_close_logs_out_past_a_command_that_ignores_ctrl_c(
    closing: list, serial_login_console: SerialConsole
) -> None:
    """The first ``exit`` lands in the stuck program's input; close tries once more with Ctrl-\\."""
    first = serial_host(serial_login_console)
    closing.append(first)
    await first.run("export OTTO_LEFT_BEHIND=1")
    call = asyncio.create_task(first.run("trap '' INT; sleep 120", timeout=300))
    assert await console_runs(serial_login_console, "sleep")
    await first.close()
    assert (await call).only.status is Status.Error
    assert await console_runs(serial_login_console, None), "close() left the line logged in"
    second = serial_host(serial_login_console)
    closing.append(second)
    assert (await second.run("echo ${OTTO_LEFT_BEHIND:-unset}")).only.output == "unset"


async def console_runs(console: SerialConsole, comm: str | None, seconds: float = 20.0) -> bool:
    """Wait until a process named ``comm`` runs logged in on ``console`` (None: nothing does)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        names = list(console.shells().values())
        if (comm in names) if comm else not names:
            return True
        await asyncio.sleep(0.1)
    return False


@pytest.mark.parametrize("kind", ["telnet", "serial"])
async def test_wrong_password_is_a_connection_error_named_at_the_rejection(
    kind: str, closing: list, telnet_login_server: TelnetServer, serial_login_console: SerialConsole
) -> None:
    """The console's rejection ends the login at once: the error says the login failed,
    not that ``connect_timeout`` ran out (it is far beyond login's own ~3 s delay here,
    so a loaded machine cannot turn a rejection into a timeout)."""
    if kind == "telnet":
        host = telnet_host(telnet_login_server, password="not-the-password", connect_timeout=PATIENCE)
    else:
        host = serial_host(serial_login_console, password="not-the-password", connect_timeout=PATIENCE)
    closing.append(host)
    with pytest.raises(ConnectionError) as caught:
        await host.run("true")
    assert "timed out" not in str(caught.value)
    assert isinstance(caught.value, HostConnectionError)
    assert str(caught.value).startswith(f"{host.id}: ")
    assert "login failed" in str(caught.value)
    assert "not-the-password" not in str(caught.value)
    # the hint is what the console said, not the echo of probes typed during login's delay
    assert "Login incorrect" in str(caught.value) and "OTTOC" not in str(caught.value)


async def test_a_login_prompt_that_never_matches_is_named_with_what_the_console_said(
    closing: list, telnet_login_server: TelnetServer
) -> None:
    host = telnet_host(telnet_login_server, login_prompt="Username:", connect_timeout=4)
    closing.append(host)
    with pytest.raises(HostConnectionError) as caught:
        await host.run("true")
    message = str(caught.value)
    assert message.startswith(
        "tn: connect timed out after 4s; neither a login prompt (login_prompt 'Username:') nor a shell"
        " answered; last output: "
    )
    assert "login: " in message and "OTTOC" not in message


async def test_login_without_user_is_a_clear_error(closing: list, telnet_login_server: TelnetServer) -> None:
    host = telnet_host(telnet_login_server, user=None, password=None, connect_timeout=5)
    closing.append(host)
    with pytest.raises(HostConnectionError, match="asks for a login but no user"):
        await host.connect()


@pytest.mark.parametrize("kind", ["telnet", "serial"])
async def test_password_never_logged_or_transcribed(
    kind: str,
    closing: list,
    caplog: pytest.LogCaptureFixture,
    telnet_login_server: TelnetServer,
    serial_login_console: SerialConsole,
) -> None:
    caplog.set_level(logging.DEBUG, logger="pytest_otto")
    host = telnet_host(telnet_login_server) if kind == "telnet" else serial_host(serial_login_console)
    closing.append(host)
    password = telnet_login_server.password
    assert password
    entry = (await host.run(f"echo typed-{password}")).only
    assert entry.status is Status.Success
    assert (await host.oneshot("true")).status is Status.Success
    assert any("answering the password prompt" in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        assert password not in record.getMessage()
    for item in host.transcript:
        assert password not in item.command and password not in item.output
    assert password not in repr(host)


def assert_logged_in_cleanly(caplog: pytest.LogCaptureFixture) -> None:
    """The password prompt was answered after our user name, and none was skipped: no
    newline or probe typed ahead became ``login``'s user name."""
    messages = [record.getMessage() for record in caplog.records]
    assert any("answering the password prompt" in m for m in messages)
    assert not any("skipping a password prompt" in m for m in messages), messages


async def test_a_login_that_starts_slowly_gets_no_typed_ahead_probe(
    closing: list, caplog: pytest.LogCaptureFixture
) -> None:
    """A console silent for a while (login still starting) is poked once, then left alone until
    it answers: a ready probe typed into a starting ``login`` would be taken for a user name."""
    server = TelnetServer("127.0.0.25", login=True, login_delay=1.5).start()
    try:
        host = telnet_host(server)
        closing.append(host)
        with caplog.at_level(logging.DEBUG, logger="pytest_otto"):
            assert (await host.run("echo logged-in")).only.output == "logged-in"
        assert_logged_in_cleanly(caplog)
    finally:
        host.close_sync()
        server.stop()


async def test_a_login_cancelled_halfway_is_not_reused_pitfall_8(closing: list) -> None:
    """A caller gives up while the console login is still running: the half-logged-in
    connection is not kept; the next call logs in afresh and works."""
    server = TelnetServer("127.0.0.28", login=True, login_delay=1.0).start()
    try:
        host = telnet_host(server)
        closing.append(host)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(host.run("true"), 0.5)
        assert not host.default_session.is_open
        assert (await host.run("id -un")).only.output == server.user
    finally:
        host.close_sync()
        server.stop()


async def test_a_telnet_server_that_has_not_greeted_yet_gets_no_newline(
    closing: list, caplog: pytest.LogCaptureFixture
) -> None:
    """Connected but not greeted (telnetd busy setting up other sessions): a newline typed now
    is relayed when the session starts, and ``login`` may read it as an empty user name: a
    failed login after its 3 s fail delay, or ``Login incorrect`` when our user name then
    answers its password prompt. The poke waits for the server's option negotiation."""
    server = TelnetServer("127.0.0.26", login=True, late_type_ahead=True).start()
    try:
        host = telnet_host(server)
        closing.append(host)
        caplog.set_level(logging.DEBUG, logger="pytest_otto")
        server.pause()  # the kernel completes the connection; telnetd accepts it later
        try:
            login = asyncio.ensure_future(host.run("echo logged-in"))
            await asyncio.sleep(1.2)  # longer than the connection hold (0.5 s) and quiet (0.3 s)
        finally:
            server.resume()
        assert (await login).only.output == "logged-in"
        assert_logged_in_cleanly(caplog)
    finally:
        host.close_sync()
        server.stop()


def connections_to(address: str, port: int) -> int:
    """TCP sockets connected or connecting to ``address:port`` (Linux /proc/net/tcp)."""
    peer = f"{int.from_bytes(bytes(map(int, address.split('.'))), 'little'):08X}:{port:04X}"
    with open("/proc/net/tcp") as table:  # state 01 ESTABLISHED, 02 SYN_SENT
        rows = [line.split() for line in table.readlines()[1:]]
    return sum(row[2] == peer and row[3] in ("01", "02") for row in rows)


async def test_gathered_telnet_logins_connect_one_at_a_time(
    closing: list, caplog: pytest.LogCaptureFixture
) -> None:
    """BusyBox telnetd listens with a backlog of 1: a burst of connections overflows it and
    waits for the kernel's 1 s retransmissions. The next connection to a server starts only
    once the server greeted the previous one."""
    server = TelnetServer("127.0.0.27", login=True).start()
    hosts = [telnet_host(server) for _ in range(3)]
    closing.extend(hosts)
    try:
        caplog.set_level(logging.DEBUG, logger="pytest_otto")
        server.pause()  # nothing is greeted: the first connection holds the others back
        try:
            logins = asyncio.ensure_future(asyncio.gather(*(host.run("id -un") for host in hosts)))
            await asyncio.sleep(0.25)
            assert connections_to(server.address, server.port) == 1
        finally:
            server.resume()
        assert [result.only.output for result in await logins] == ["ottopw"] * 3
        assert not any("skipping a password prompt" in r.getMessage() for r in caplog.records)
    finally:
        for host in hosts:
            host.close_sync()
        server.stop()


# -- long commands, pacing ----------------------------------------------------------------------


async def test_ten_kilobyte_command_is_sent_in_pieces(line_host: TelnetHost | SerialHost) -> None:
    host = line_host
    words = " ".join(f"w{i:05d}" for i in range(1500))  # ~10.5 KB
    command = f"printf '%s\\n' {words} | wc -l; echo last=${{OTTO_UNSET:-w01499}}"
    assert len(command) > 10_000 > 10 * (host.line_limit or 10_000)
    entry = (await host.run(command)).only
    assert entry.output.split("\n") == ["1500", "last=w01499"]


async def test_send_gets_a_line_mode_terminal_and_run_gets_the_framing_back(
    line_host: TelnetHost | SerialHost,
) -> None:
    host = line_host
    target = f"/tmp/otto-ctrl-d-{host.id}"
    await host.run(f"rm -f {target}")
    # type-ahead waits in the tty for cat, and Ctrl-D ends cat's input, as on a terminal
    await host.send(f"cat > {target}; echo cat-ended-$?\nline one\n\x04")
    assert (await host.expect(r"cat-ended-\d+", timeout=10)).endswith("cat-ended-0")
    seen = (await host.run(f"cat {target}; rm -f {target}; stty -a < /dev/tty")).only.output
    assert seen.splitlines()[0] == "line one"
    assert "-icanon" in seen.split()  # the framing's mode again: long lines arrive whole


async def test_write_delay_paces_writes(closing: list, telnet_server: TelnetServer) -> None:
    """A command goes out in chunks of WRITE_CHUNK bytes with a pause of ``write_delay``
    after each: the gaps are lower bounds (a loaded machine only lengthens them), the
    pause the device was promised, not a measure of speed."""
    host = telnet_host(telnet_server, write_delay=0.02)
    closing.append(host)
    await host.connect()
    transport = host.default_session._shell._transport
    sent: list[tuple[float, bytes]] = []
    send = transport._send

    async def recording(data: bytes) -> None:
        sent.append((time.monotonic(), data))
        await send(data)

    transport._send = recording
    entry = (await host.run("echo " + "p" * 200)).only  # framed line ~330 B: ~20 paced chunks
    assert entry.output == "p" * 200
    assert len(sent) >= 200 // WRITE_CHUNK and all(len(data) <= WRITE_CHUNK for _, data in sent)
    assert b"p" * 200 in b"".join(data for _, data in sent)
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(sent)]
    assert min(gaps) >= 0.02, gaps


@pytest.mark.skipif(not hasattr(socket, "TCP_QUICKACK"), reason="TCP_QUICKACK is Linux's")
async def test_telnet_acknowledges_what_it_reads_at_once(closing: list, telnet_server: TelnetServer) -> None:
    """BusyBox telnetd leaves Nagle's algorithm on: an answer written in two pieces (the
    echo, then the output and end marker) sends its second piece only once the first is
    acknowledged. A client whose kernel delays that ACK (its interactive "pingpong" mode)
    stalls 40 ms on such commands: a 200 KB put over telnet took 2.7-9 s instead of 0.7.
    After every read the client's socket is back in quick-ACK mode; for a connection
    left to the kernel's ACK policy, this reads 0 after all but the first command."""
    host = telnet_host(telnet_server)
    closing.append(host)
    modes = []
    for _ in range(20):
        assert (await host.run("echo one; echo two")).only.output == "one\ntwo"
        writer = host.default_session._shell._transport._writer
        modes.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK))
    assert modes == [1] * 20


# -- serial: one shell per line ---------------------------------------------------------------------


async def test_serial_oneshot_is_fresh_and_serialized(closing: list, serial_console: SerialConsole) -> None:
    host = serial_host(serial_console)
    closing.append(host)
    # set -u in the line's shell: the oneshot's wrapper must not trip over an unset LANG
    await host.run(["cd /tmp", "export OTTO_SESSION_VAR=1", "otto_f() { :; }", "unset LANG; set -u"])
    seen = await host.oneshot(
        "pwd; echo ${OTTO_SESSION_VAR:-unset}; type otto_f >/dev/null 2>&1 || echo nofunc"
    )
    assert seen.output == "/root\nunset\nnofunc"
    assert (await host.run("pwd; echo $OTTO_SESSION_VAR")).only.output == "/tmp\n1"


async def test_serial_second_client_is_refused(closing: list, serial_console: SerialConsole) -> None:
    first, second = serial_host(serial_console), serial_host(serial_console)
    closing += [first, second]
    await first.connect()
    with pytest.raises(LineHeld, match=f"^{second.id}: serial .*in use by another process") as caught:
        await second.connect()
    assert isinstance(caught.value, HostConnectionError)  # a LineHeld is one


# -- lost consoles (B18) ----------------------------------------------------------------------------------


async def test_telnet_server_killed_is_an_error_then_reconnects() -> None:
    server = TelnetServer("127.0.0.23", login=False).start()
    host = telnet_host(server, command_timeout=10)
    try:
        await host.run("cd /tmp")
        pending = asyncio.ensure_future(host.run("sleep 30"))
        await asyncio.sleep(0.5)
        server.kill()
        entry = (await asyncio.wait_for(pending, 8)).only
        assert entry.status is Status.Error
        assert "ended" in entry.output
        server.start()
        with pytest.warns(Warning, match="reset"):
            assert (await host.run("echo back")).only.output == "back"
    finally:
        host.close_sync()
        server.remove()


async def test_a_silent_telnet_server_and_a_device_that_is_no_tty_are_named(closing: list) -> None:
    """Two ways a console is not one: a server that accepts and never speaks (a paused
    telnetd), and a device file without a terminal behind it. Each error says which."""
    server = TelnetServer("127.0.0.44", login=False).start()
    server.pause()
    try:
        silent = telnet_host(server, connect_timeout=3)  # it pokes after 2 s without a greeting
        closing.append(silent)
        with pytest.raises(HostConnectionError) as caught:
            await silent.run("true")
        assert str(caught.value) == (
            f"tn: connect timed out after 3s; telnet {server.address}:{server.port} accepted the"
            " connection but sent nothing, not even after a newline"
        )
    finally:
        server.resume()
        server.remove()
    not_a_tty = SerialHost("nul", "/dev/null", connect_timeout=3)
    closing.append(not_a_tty)
    with pytest.raises(
        HostConnectionError, match=r"^nul: .*/dev/null is not a serial device \(Inappropriate ioctl"
    ):
        await not_a_tty.run("true")


async def test_serial_device_gone_is_a_connection_error() -> None:
    console = SerialConsole(login=False, name="ttyGONE").start()
    host = serial_host(console, connect_timeout=3)
    try:
        assert (await host.run("echo up")).only.output == "up"
        console.kill()  # the device vanishes: the shell is lost and cannot be reopened
        for _ in range(2):
            with pytest.raises(HostConnectionError, match=f"^{host.id}: .*No such file"):
                await asyncio.wait_for(host.run("echo down"), 10)
    finally:
        host.close_sync()
        console.remove()


# -- the telnet protocol layer -------------------------------------------------------------------------------


def test_telnet_negotiation_and_escaping() -> None:
    t = TelnetTransport("x", "127.0.0.1", 1)
    sent: list[bytes] = []
    t._reply = lambda verb, opt: sent.append(bytes((255, verb, opt)))  # type: ignore[method-assign]
    # DO ECHO, WILL ECHO, WILL SGA, DO NAWS, a subnegotiation, IAC IAC, CR NUL, split IAC
    data = t._parse(
        b"\xff\xfd\x01\xff\xfb\x01\xff\xfb\x03\xff\xfd\x1fa\xff\xfa\x18\x01\xff\xf0b\xff\xffc\r\x00d\xff"
    )
    data += t._parse(b"\xfb\x01e")  # repeated WILL ECHO (split): no second answer
    assert data == b"ab\xffc\rde"
    assert sent == [b"\xff\xfc\x01", b"\xff\xfd\x01", b"\xff\xfd\x03", b"\xff\xfc\x1f"]
    assert t._escape(b"a\xffb\rc\r\n") == b"a\xff\xffb\r\x00c\r\n"


#: A console whose login works, and then says words a failed login says too (a profile
#: script that cannot read a file): they must not be taken for the password's rejection.
_LOGIN_THEN_PERMISSION_DENIED = """#!/bin/sh
printf 'dut login: '; read -r user
printf 'Password: '; stty -echo; read -r password; stty echo; echo
if [ "$password" != right ]; then
    sleep 1; echo 'Login incorrect'; printf 'dut login: '; read -r user; exit 1
fi
echo 'Last login: today'
echo '/etc/profile.d/site.sh: line 3: /opt/site.conf: Permission denied'
PS1='dut# ' exec /bin/bash --norc -i
"""


async def test_words_of_a_failed_login_after_a_login_that_worked_are_not_a_rejection(closing: list) -> None:
    server = TelnetServer("127.0.0.53", program=_LOGIN_THEN_PERMISSION_DENIED).start()
    try:
        good = TelnetHost(
            "dut", server.address, port=server.port, user="admin", password="right", connect_timeout=15
        )
        closing.append(good)
        assert (await good.run("echo logged-in")).only.output == "logged-in"
        bad = TelnetHost(
            "dut", server.address, port=server.port, user="admin", password="wrong", connect_timeout=15
        )
        closing.append(bad)
        with pytest.raises(
            HostConnectionError, match="login failed: the console rejected the user name or password"
        ):
            await bad.run("true")
    finally:
        for host in closing:
            await host.close()
        server.remove()


class OneConnectionConsole:
    """A console server port in front of one shell, as ser2net serves a serial line: it takes
    one connection; another one, while it is taken, is told "Port already in use" and closed."""

    def __init__(self, address: str) -> None:
        self.master, slave = pty.openpty()
        self.shell = subprocess.Popen(
            ["bash", "--norc", "-i"],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "PS1": "dut# ", "TERM": "dumb"},
        )
        os.close(slave)
        self.sock = socket.create_server((address, 0))
        self.address, self.port = address, self.sock.getsockname()[1]
        self.busy = threading.Lock()
        self.refused = 0
        accept_forever(self.sock, self._take)

    def _take(self, conn: socket.socket) -> None:
        if not self.busy.acquire(blocking=False):
            self.refused += 1
            conn.sendall(b"Port already in use\r\n")
            conn.close()
            return
        threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _relay(self, conn: socket.socket) -> None:
        try:
            while True:
                ready, _, _ = select.select([conn, self.master], [], [], 0.5)
                if conn in ready:
                    data = conn.recv(65536)
                    if not data:
                        return
                    os.write(self.master, data)
                if self.master in ready:
                    conn.sendall(os.read(self.master, 65536))
        except OSError:
            return
        finally:
            conn.close()
            self.busy.release()

    def close(self) -> None:
        stop_listening(self.sock)
        self.shell.kill()
        self.shell.wait(5)
        os.close(self.master)


async def test_a_console_server_port_that_takes_one_connection(closing: list, tmp_path: Path) -> None:
    """single_connection: oneshot, put and get share the default session's connection, as
    on a serial line, instead of opening a second one the port refuses."""
    plain_port, shared_port = OneConnectionConsole("127.0.0.56"), OneConnectionConsole("127.0.0.57")
    try:
        plain = TelnetHost("plain", plain_port.address, port=plain_port.port, connect_timeout=5)
        closing.append(plain)
        await plain.run("true")
        with pytest.raises(HostConnectionError, match="Port already in use"):
            await plain.oneshot("true")  # a second connection, refused
        assert plain_port.refused == 1

        host = TelnetHost(
            "port", shared_port.address, port=shared_port.port, single_connection=True, connect_timeout=5
        )
        closing.append(host)
        await host.run(["cd /tmp", "export OTTO_ONLY_HERE=1"])
        fresh = await host.oneshot("echo ${OTTO_ONLY_HERE:-unset}; pwd")
        assert (fresh.status, fresh.output) == (Status.Success, "unset\n/root")
        (tmp_path / "blob").write_bytes(b"\x00\x01 payload \xff")
        assert await host.put(tmp_path / "blob", "/tmp/otto-one-connection") == (Status.Success, "")
        assert await host.get("/tmp/otto-one-connection/blob", tmp_path / "back") == (Status.Success, "")
        assert (tmp_path / "back" / "blob").read_bytes() == b"\x00\x01 payload \xff"
        with pytest.raises(HostConnectionError, match="held by session 'default'"):
            await host.open_session("other")
        assert (await host.run("pwd; echo $OTTO_ONLY_HERE")).only.output == "/tmp\n1"
        assert shared_port.refused == 0  # no second connection was tried
        await host.oneshot("rm -rf /tmp/otto-one-connection")
    finally:
        for h in closing:
            await h.close()
        plain_port.close()
        shared_port.close()


_ROUTER_CLI = """#!/bin/sh
printf 'Router# '
while read -r line; do echo '% Invalid input detected'; printf 'Router# '; done
"""

_LINE_PASSWORD_ONLY = """#!/bin/sh
printf 'User Access Verification\\r\\n\\r\\nPassword: '; stty -echo; read -r password; stty echo; echo
[ "$password" = right ] || { echo '% Bad passwords'; exit 1; }
PS1='dut# ' exec /bin/bash --norc -i
"""

_BANNER_ENDING_IN_HASHES = """#!/bin/sh
echo '##################'
echo '# lab board 7    #'
echo '##################'
sleep 1
user=
while [ -z "$user" ]; do printf 'dut login: '; read -r user; done
[ "$user" = admin ] || { echo "Login incorrect for '$user'"; exit 1; }
PS1='dut# ' exec /bin/bash --norc -i
"""


async def test_consoles_that_are_not_a_plain_linux_login(closing: list) -> None:
    """A router's CLI is named as having no shell; a console that asks only for a line password
    gets it; a banner whose lines end in '#' is not taken for a shell prompt (the probe typed
    there became the login's user name)."""
    router = TelnetServer("127.0.0.58", program=_ROUTER_CLI).start()
    line = TelnetServer("127.0.0.59", program=_LINE_PASSWORD_ONLY).start()
    banner = TelnetServer("127.0.0.60", program=_BANNER_ENDING_IN_HASHES).start()
    try:
        cli = TelnetHost("cli", router.address, port=router.port, connect_timeout=6)
        closing.append(cli)
        with pytest.raises(
            HostConnectionError, match=r"a prompt shows, but no POSIX shell .* answered there"
        ):
            await cli.run("true")
        password_only = TelnetHost("vty", line.address, port=line.port, password="right", connect_timeout=10)
        closing.append(password_only)
        assert (await password_only.run("echo in")).only.output == "in"
        board = TelnetHost("board", banner.address, port=banner.port, user="admin", connect_timeout=10)
        closing.append(board)
        assert (await board.run("echo in")).only.output == "in"
    finally:
        for host in closing:
            await host.close()
        for server in (router, line, banner):
            server.remove()
