"""The ``otto`` command, run as a real process against the test lab's real servers.

One lab file holds an SSH host (sshd on loopback), a telnet console with a real
``/bin/login``, a serial console (a pty line with agetty and login), the local
machine, and a host nobody listens for. Every test runs the installed ``otto``
executable (``subprocess``; ``pexpect`` for what needs a terminal) and asserts on
its output and exit code.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from testlab import PASSWORD, PASSWORD_USER, SerialConsole, SshLab, TelnetServer

#: The variable the lab reads the console password from (so it can be masked).
PW_ENV = "OTTO_CLI_TEST_PW"
#: Generous bounds: the machine is shared and loaded.
SLOW = 60


def otto_argv() -> list[str]:
    """The installed console script, next to this interpreter."""
    script = Path(sys.executable).with_name("otto")
    return [str(script)] if script.exists() else [sys.executable, "-m", "pytest_otto"]


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def serial_line(password_user: tuple[str, str]) -> Iterator[SerialConsole]:
    """A serial console of this module's own (agetty + login), so nobody else holds its line."""
    console = SerialConsole(login=True, name="ttyCLI0").start()
    try:
        yield console
    finally:
        console.remove()


def ssh_table(ssh_lab: SshLab, host_id: str, tags: list[str]) -> str:
    """A lab file's ``[hosts.ID]`` table for the first sshd of ``ssh_lab`` (key login)."""
    ssh = ssh_lab[0]
    return f"""
[hosts.{host_id}]
address = "{ssh.address}"
port = {ssh.port}
user = "{PASSWORD_USER}"
key = "{ssh_lab.client_key_path}"
host_key_check = "off"
tags = {tags!r}
"""


@pytest.fixture(scope="module")
def cli_lab(
    tmp_path_factory: pytest.TempPathFactory,
    ssh_lab: SshLab,
    telnet_login_server: TelnetServer,
    serial_line: SerialConsole,
) -> Path:
    """The lab file: ssh1, telnet1, serial1 (logins with a password from the environment), me, dead."""
    folder = tmp_path_factory.mktemp("cli-lab")
    text = f"""
[lab]
name = "cli-bench"

[defaults]
connect_timeout = 20.0
{ssh_table(ssh_lab, "ssh1", ["linux", "remote"])}
[hosts.telnet1]
transport = "telnet"
address = "{telnet_login_server.address}"
port = {telnet_login_server.port}
user = "{PASSWORD_USER}"
password = {{ env = "{PW_ENV}" }}
tags = ["console", "remote"]

[hosts.serial1]
transport = "serial"
device = "{serial_line.device}"
user = "{PASSWORD_USER}"
password = {{ env = "{PW_ENV}" }}
tags = ["console"]

[hosts.me]
transport = "local"
tags = ["linux"]

[hosts.dead]
address = "127.0.0.1"
port = {closed_port()}
connect_timeout = 5.0
"""
    path = folder / "lab.toml"
    path.write_text(text)
    return path


def env_for(lab: Path | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OTTO_LAB"}
    env.pop("NO_COLOR", None)  # plain output must come from not being on a terminal
    env[PW_ENV] = PASSWORD
    if lab is not None:
        env["OTTO_LAB"] = str(lab)
    env.update(extra)
    return env


def otto(
    *args: str, lab: Path | None, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``otto ARGS`` to its end; output as text."""
    return subprocess.run(
        [*otto_argv(), *args],
        capture_output=True,
        text=True,
        timeout=SLOW * 2,
        cwd=cwd,
        env=env if env is not None else env_for(lab),
        check=False,
    )


def rows(stdout: str) -> dict[str, list[str]]:
    """The table ``otto check`` prints: host id -> cells (split on runs of 2+ spaces)."""
    lines = stdout.splitlines()
    assert lines[0].split()[:4] == ["HOST", "TRANSPORT", "ENDPOINT", "STATE"], stdout
    return {cells[0]: cells for cells in (re.split(r"\s{2,}", line) for line in lines[1:-1])}


# -- otto check --------------------------------------------------------------------------


def test_check_tables_every_host_and_fails_for_the_unreachable_one(cli_lab: Path, ssh_lab: SshLab) -> None:
    result = otto("check", lab=cli_lab)
    assert result.returncode == 1, result.stderr
    table = rows(result.stdout)
    assert list(table) == ["ssh1", "telnet1", "serial1", "me", "dead"]
    for host_id in ("ssh1", "telnet1", "serial1", "me"):
        cells = table[host_id]
        assert cells[3] == "ok", result.stdout
        assert re.fullmatch(r"\d+\.\d\ds", cells[4]), cells
        assert cells[5].startswith("Linux "), cells
    assert table["ssh1"][1:3] == ["ssh", f"{PASSWORD_USER}@{ssh_lab[0].address}:{ssh_lab[0].port}"]
    assert table["serial1"][1] == "serial" and table["serial1"][2].endswith("ttyCLI0")
    dead = table["dead"]
    assert dead[3] == "unreachable" and dead[4] == "-"
    assert "refused" in dead[5], dead
    assert result.stdout.splitlines()[-1] == "5 hosts: 1 not ok (dead)"
    assert "\x1b" not in result.stdout + result.stderr  # no colour, no progress line in a pipe
    assert PASSWORD not in result.stdout + result.stderr


def test_check_json_for_a_selection_is_ok(cli_lab: Path) -> None:
    result = otto("--json", "check", "-p", "^(ssh1|me)$", lab=cli_lab)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["ok"] is True and doc["lab"] == "cli-bench"
    assert [h["id"] for h in doc["hosts"]] == ["ssh1", "me"]
    for host in doc["hosts"]:
        assert host["state"] == "ok" and host["connect_seconds"] >= 0.0
        assert host["uname"].startswith("Linux ")


def test_check_by_tags_and_the_unreachable_host_in_json(cli_lab: Path) -> None:
    result = otto("check", "--tags", "remote", "--json", lab=cli_lab)
    assert result.returncode == 0, result.stdout
    assert [h["id"] for h in json.loads(result.stdout)["hosts"]] == ["ssh1", "telnet1"]
    result = otto("check", "-p", "dead", "--json", lab=cli_lab)
    assert result.returncode == 1
    (dead,) = json.loads(result.stdout)["hosts"]
    assert dead["state"] == "unreachable" and "refused" in dead["error"] and dead["connect_seconds"] is None


def test_check_shows_progress_on_a_terminal_while_a_host_hangs(cli_lab: Path, tmp_path: Path) -> None:
    silent = socket.socket()  # accepts TCP (the kernel does) but never speaks SSH
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    lab = tmp_path / "lab.toml"
    port = silent.getsockname()[1]
    lab.write_text(
        '[hosts.me]\ntransport = "local"\n'
        f'[hosts.mute]\naddress = "127.0.0.1"\nport = {port}\nconnect_timeout = 4.0\n'
    )
    try:
        env = env_for(lab, NO_COLOR="1")
        child = pexpect.spawn(otto_argv()[0], [*otto_argv()[1:], "check"], env=env, timeout=SLOW)
        child.expect(r"checking: 1/2 done, waiting for mute")
        child.expect(pexpect.EOF)
        child.close()
    finally:
        silent.close()
    assert child.exitstatus == 1
    text = child.before.decode()
    assert re.search(r"mute\s+ssh\s+127\.0\.0\.1:\d+\s+unreachable", text), text


def test_colour_only_on_a_terminal_and_never_with_no_color(cli_lab: Path) -> None:
    argv = otto_argv()
    child = pexpect.spawn(
        argv[0], [*argv[1:], "check", "-p", "^(me|dead)$"], env=env_for(cli_lab), timeout=SLOW
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    assert b"\x1b[32mok\x1b[0m" in child.before and b"\x1b[31munreachable\x1b[0m" in child.before
    env = env_for(cli_lab, NO_COLOR="1")
    child = pexpect.spawn(argv[0], [*argv[1:], "check", "-p", "^me$"], env=env, timeout=SLOW)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0 and b"ok" in child.before and b"\x1b[" not in child.before


# -- otto run --------------------------------------------------------------------------------


def test_run_everywhere_groups_output_per_host(cli_lab: Path) -> None:
    result = otto(
        "run", "-p", "^(ssh1|telnet1|serial1|me)$", "--", "echo", "six-times-seven:", "$((6*7))", lab=cli_lab
    )
    assert result.returncode == 0, result.stdout + result.stderr
    blocks = re.split(r"^== ", result.stdout, flags=re.M)[1:]
    assert [b.split(":")[0] for b in blocks] == ["ssh1", "telnet1", "serial1", "me"]
    for block in blocks:
        header, output = block.split("\n", 1)
        assert re.fullmatch(r"\S+: Success \(exit 0, \d+\.\d\ds\)", header), header
        assert output.startswith("six-times-seven: 42\n"), block
    assert result.stdout.splitlines()[-1] == "4/4 hosts ok"


def test_run_reports_exit_codes_and_fails(cli_lab: Path) -> None:
    result = otto("--json", "run", "-p", "^(me|ssh1|dead)$", "--", "echo out; (exit 3)", lab=cli_lab)
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    assert doc["command"] == "echo out; (exit 3)" and doc["ok"] is False
    by_id = {h["id"]: h for h in doc["hosts"]}
    for host_id in ("me", "ssh1"):
        assert (by_id[host_id]["status"], by_id[host_id]["retcode"], by_id[host_id]["output"]) == (
            "Failed",
            3,
            "out",
        )
    assert by_id["dead"]["status"] == "unreachable" and by_id["dead"]["retcode"] is None
    assert "refused" in by_id["dead"]["output"]


def test_run_oneshot_and_timeout(cli_lab: Path) -> None:
    result = otto("run", "--oneshot", "-p", "ssh1", "--", "cat; echo stdin-was-empty", lab=cli_lab)
    assert result.returncode == 0 and "stdin-was-empty" in result.stdout, result.stdout
    # the timeout ended the command (its own message says so), not the command's end
    result = otto("run", "--timeout", "1", "-p", "^me$", "--", "echo started; sleep 600", lab=cli_lab)
    assert result.returncode == 1
    assert "== me: Error (exit -1" in result.stdout
    assert "Command timed out after 1" in result.stdout and "started" in result.stdout


def test_run_masks_the_lab_secrets(cli_lab: Path) -> None:
    result = otto("run", "-p", "telnet1", "--", f"echo pw=${PW_ENV}:{PASSWORD}", lab=cli_lab)
    # the console shell has no such variable; the literal secret in the output is masked
    assert result.returncode == 0, result.stdout
    assert "pw=:********" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr
    shown = otto("--json", "lab", "show", lab=cli_lab)
    assert shown.returncode == 0
    assert PASSWORD not in shown.stdout
    assert json.loads(shown.stdout)["hosts"]["telnet1"]["password"] == f"******** (from ${PW_ENV}, set)"


def test_ctrl_c_is_exit_code_2(cli_lab: Path, tmp_path: Path) -> None:
    flag = tmp_path / "started"
    proc = subprocess.Popen(
        [*otto_argv(), "run", "-p", "^me$", "--", f"touch {flag}; sleep 60"],
        env=env_for(cli_lab),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + SLOW
    while not flag.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert flag.exists()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=SLOW)
    assert proc.returncode == 2, out + err
    assert "otto: interrupted" in err


# -- put / get -----------------------------------------------------------------------------


def test_put_to_several_hosts_and_get_back(cli_lab: Path, tmp_path: Path) -> None:
    data = os.urandom(3000) + b"\nend\n"
    src = tmp_path / "blob.bin"
    src.write_bytes(data)
    remote = f"/tmp/otto-cli-{os.getpid()}"
    result = otto("put", "-p", "^(ssh1|telnet1)$", str(src), remote, lab=cli_lab)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [f"{h}: ok: put {src} -> {remote}" for h in ("ssh1", "telnet1")]
    for host_id in ("ssh1", "telnet1"):
        back = tmp_path / host_id
        result = otto("get", host_id, f"{remote}/blob.bin", str(back), lab=cli_lab)
        assert result.returncode == 0, result.stdout
        assert (back / "blob.bin").read_bytes() == data
    missing = otto("--json", "get", "ssh1", f"{remote}/nope", str(tmp_path), lab=cli_lab)
    assert missing.returncode == 1
    (host,) = json.loads(missing.stdout)["hosts"]
    assert host["status"] == "Failed" and "nope" in host["message"]


# -- the lab file ------------------------------------------------------------------------------


def test_lab_show_resolves_defaults_for_the_selection(cli_lab: Path) -> None:
    result = otto("lab", "show", "-p", "serial1", lab=cli_lab)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert 'name = "cli-bench"' in text and 'given_by = "$OTTO_LAB"' in text
    assert "[hosts.serial1]" in text and "[hosts.ssh1]" not in text
    assert "connect_timeout = 20.0" in text  # from [defaults]
    assert "baud = 115200" in text  # implied by the transport
    assert "host_key_check" not in text  # an ssh key, not the serial host's
    assert PASSWORD not in text


def test_check_file_accepts_a_good_file_and_warns(cli_lab: Path) -> None:
    env = env_for(None)
    del env[PW_ENV]
    result = otto("lab", "check-file", str(cli_lab), lab=None, env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{cli_lab}: ok: lab 'cli-bench', 5 hosts (2 ssh, 1 telnet, 1 serial, 1 local)"
    assert f"warning: host 'telnet1': key 'password': environment variable '{PW_ENV}' is not set" in lines


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[hosts.r1]\nadress = "192.0.2.1"\n',
            "host 'r1': key 'adress': unknown key in [hosts.r1] (did you mean 'address'?)",
        ),
        ("[hosts.r1\n", "invalid TOML"),
        ('[hosts.r1]\ntransport = "serail"\n', "unknown transport 'serail'"),
        ('[hosts.a]\naddress = "x"\nhop = "b"\n[hosts.b]\naddress = "y"\nhop = "a"\n', "hop cycle"),
        ('[lab]\nname = "empty"\n', "has no hosts"),
    ],
)
def test_check_file_rejects_a_broken_lab_with_exit_4(tmp_path: Path, text: str, message: str) -> None:
    lab = tmp_path / "broken.toml"
    lab.write_text(text)
    result = otto("lab", "check-file", lab=lab)
    assert result.returncode == 4
    assert result.stderr.startswith("otto: ") and str(lab) in result.stderr and message in result.stderr, (
        result.stderr
    )
    assert result.stdout == ""
    doc = json.loads(otto("--json", "lab", "check-file", str(lab), lab=None).stdout)
    assert doc["ok"] is False and message in doc["error"]


def test_a_broken_lab_is_a_usage_error_for_every_command(tmp_path: Path) -> None:
    lab = tmp_path / "broken.toml"
    lab.write_text('[hosts.r1]\nadress = "192.0.2.1"\n')
    for command in (["check"], ["run", "true"], ["lab", "show"], ["console", "r1"]):
        result = otto(*command, lab=lab)
        assert result.returncode == 4, command
        assert "did you mean 'address'?" in result.stderr and "(lab file given by $OTTO_LAB)" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "(", "check"], "--host-pattern '(' is not a valid regular expression"),
        (
            ["check", "-p", "nothing"],
            "--host-pattern 'nothing' selects no host; the hosts of lab 'cli-bench'",
        ),
        (["check", "--tags", "linux,console"], "--tags 'linux,console' selects no host"),
        (
            ["get", "nohost", "/etc/hostname", "."],
            "no host 'nohost' in lab 'cli-bench'; hosts: ssh1, telnet1",
        ),
        (["run"], "otto run needs a command"),
        (["put", "only-one"], "otto put needs at least one SRC and a DEST_DIR"),
        (["check", "--bogus"], "unrecognized arguments: --bogus"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_usage_errors_exit_4(cli_lab: Path, args: list[str], message: str) -> None:
    result = otto(*args, lab=cli_lab)
    assert result.returncode == 4, result.stdout + result.stderr
    assert message in result.stderr
    as_json = otto("--json", *args, lab=cli_lab)  # a script gets a document even then
    assert as_json.returncode == 4
    doc = json.loads(as_json.stdout)
    assert doc["ok"] is False and doc["exit_code"] == 4 and message in doc["error"]


def test_the_lab_comes_from_lab_option_env_or_the_pytest_ini_file(cli_lab: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "tests" / "deep").mkdir(parents=True)
    (project / "pytest.ini").write_text(f"[pytest]\notto_lab = {cli_lab}\n")
    here = project / "tests" / "deep"

    def given_by(*args: str, env: dict[str, str]) -> str:
        result = otto("--json", *args, "lab", "show", lab=None, cwd=here, env=env)
        assert result.returncode == 0, result.stderr
        return str(json.loads(result.stdout)["lab"]["given_by"])

    assert given_by(env=env_for(None)) == "ini otto_lab"
    other = tmp_path / "other.toml"
    other.write_text('[hosts.x]\ntransport = "local"\n')
    assert given_by(env=env_for(other)) == "$OTTO_LAB"
    assert given_by("--lab", str(other), env=env_for(cli_lab)) == "--lab"
    (project / "pytest.ini").unlink()  # no ini file above: one local host
    shown = json.loads(otto("--json", "lab", "show", lab=None, cwd=here, env=env_for(None)).stdout)
    assert shown["lab"]["given_by"] == "default" and list(shown["hosts"]) == ["local"]


def test_python_dash_m_is_the_same_command(cli_lab: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest_otto", "run", "-p", "^me$", "--", "echo via-m"],
        capture_output=True,
        text=True,
        env=env_for(cli_lab),
        timeout=SLOW,
        check=False,
    )
    assert result.returncode == 0 and "via-m" in result.stdout


# -- otto console ----------------------------------------------------------------------------------

#: What the shell prints for ``stty size`` and an arithmetic expansion, to tell its answer from our echo.
PROBE = "stty size; echo sum=$((40+2))"


def spawn_console(
    lab: Path, host_id: str, *, rows: int = 30, cols: int = 100, connected: bool = True
) -> pexpect.spawn:
    """``otto console HOST`` in a shell on a pty, with the terminal's settings printed before."""
    env = env_for(lab, TERM="xterm")
    shell = f"stty -g; {' '.join(otto_argv())} console {host_id}; echo rc=$?; stty -g"
    child = pexpect.spawn(
        "bash", ["--norc", "--noprofile", "-c", shell], env=env, timeout=SLOW, dimensions=(rows, cols)
    )
    child.expect(r"([0-9a-f:]{40,})\r\n")
    child.saved_tty = child.match.group(1)  # type: ignore[attr-defined]
    if connected:
        child.expect(r"\[otto: connected to ")
    return child


def log_in(child: pexpect.spawn) -> None:
    """Answer the console's login (the line may need an Enter to show its prompt)."""
    if child.expect([r"login: ", r"[$#] ", pexpect.TIMEOUT], timeout=3) == 2:
        child.send("\r")
        child.expect([r"login: "])
    elif child.match.group(0) != b"login: ":
        return
    child.send(f"{PASSWORD_USER}\r")
    child.expect("assword: ")
    child.send(f"{PASSWORD}\r")
    child.expect(r"\$ ")


def leave_and_check_restored(child: pexpect.spawn, reason: str = "you left", rc: int = 0) -> str:
    """Ctrl-] q (unless the far end ended it): exit code and terminal settings as before."""
    if reason == "you left":
        child.send("\x1dq")
    child.expect(r"rc=(\d+)\r?\n")  # no \r if the terminal was left raw
    status = int(child.match.group(1))
    before = child.before.decode(errors="replace")
    child.expect(r"([0-9a-f:]{40,})\r?\n")
    restored = child.match.group(1)
    child.expect(pexpect.EOF)
    assert status == rc, before
    assert restored == child.saved_tty, "the terminal settings were not restored"  # type: ignore[attr-defined]
    assert reason in before, before
    return before


def expect_resized(child: pexpect.spawn, rows: int, cols: int) -> None:
    """After a local resize, ``stty size`` on the host answers the new size (soon)."""
    child.setwinsize(rows, cols)  # SIGWINCH to otto, a resize to the far end
    deadline = time.monotonic() + SLOW
    while True:
        child.send("stty size\r")
        if child.expect([rf"{rows} {cols}\r\n", r"\d+ \d+\r\n"]) == 0 or time.monotonic() > deadline:
            break
    assert child.match.group(0) == f"{rows} {cols}\r\n".encode()


@pytest.mark.parametrize("host_id", ["me", "ssh1"])
def test_console_on_a_shell_passes_the_window_size_on(cli_lab: Path, host_id: str) -> None:
    child = spawn_console(cli_lab, host_id, rows=30, cols=100)
    child.expect(r"[$#] ")
    child.send(PROBE + "\r")
    child.expect(r"30 100\r\nsum=42")
    child.send("sleep 60\r")
    child.send("\x03")  # Ctrl-C goes to the host's foreground job, not to otto
    child.expect(r"[$#] ")
    expect_resized(child, 41, 123)
    child.send("cat -v\r")
    child.send("\x1d\x1d\r")  # Ctrl-] twice sends one Ctrl-] to the host
    child.expect(r"\^\]\r\n")
    child.send("\x04")
    child.expect(r"[$#] ")
    leave_and_check_restored(child)


def test_a_serial_line_held_by_another_process_is_refused_not_shared(cli_lab: Path) -> None:
    import fcntl

    device = re.search(r'device = "([^"]+)"', cli_lab.read_text()).group(1)  # type: ignore[union-attr]
    fd = os.open(device, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a pytest run on that line holds
        result = otto("check", "-p", "serial1", lab=cli_lab)
        assert result.returncode == 1
        assert re.search(r"serial1 .* unreachable .*in use by another process", result.stdout), result.stdout
        child = spawn_console(cli_lab, "serial1", connected=False)
        text = leave_and_check_restored(child, reason="otto: serial1: unreachable: ", rc=1)
        assert "in use by another process" in text
    finally:
        os.close(fd)


def test_console_on_telnet_where_you_log_in(cli_lab: Path) -> None:
    child = spawn_console(cli_lab, "telnet1", rows=30, cols=100)
    log_in(child)
    child.send(PROBE + "\r")
    child.expect(r"30 100\r\nsum=42")  # the size went along by NAWS
    expect_resized(child, 41, 123)
    child.send("\x1d?")  # an unknown escape says how to leave, and sends nothing
    child.expect(r"Ctrl-\] q leaves")
    child.send("exit\r")  # telnetd closes the connection: the session ends by itself
    leave_and_check_restored(child, reason="closed the connection")


def test_console_on_a_serial_line_where_you_log_in(cli_lab: Path) -> None:
    child = spawn_console(cli_lab, "serial1")
    log_in(child)
    child.send(PROBE + "\r")
    child.expect(r"sum=42")
    child.send("exit\r")  # the line stays open: the next login prompt shows
    child.expect("login: ")
    leave_and_check_restored(child)


def test_console_restores_the_terminal_when_the_shell_exits_or_otto_is_killed(cli_lab: Path) -> None:
    child = spawn_console(cli_lab, "ssh1")
    child.expect(r"[$#] ")
    child.send("exit 7\r")
    leave_and_check_restored(child, reason="console closed (the shell exited with status 7)")

    child = spawn_console(cli_lab, "me")
    child.expect(r"[$#] ")
    child.send("echo $$ > /dev/null; ps -o ppid= -p $$ | xargs -I{} kill -TERM {}\r")  # SIGTERM to otto
    leave_and_check_restored(child, reason="console closed by SIGTERM", rc=1)


def test_console_to_an_unreachable_host_fails_cleanly(cli_lab: Path) -> None:
    child = spawn_console(cli_lab, "dead", connected=False)
    text = leave_and_check_restored(child, reason="otto: dead: unreachable: connection to 127.0.0.1:", rc=1)
    assert "refused" in text


def test_console_needs_a_terminal(cli_lab: Path) -> None:
    result = otto("console", "me", lab=cli_lab)
    assert result.returncode == 4
    assert "otto console needs a terminal" in result.stderr
