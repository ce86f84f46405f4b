"""The fault suite, the shell session's side (issue 20.6): what a slow shell, a killed
pytest, a lost lease or a reset leave behind, against real shells and consoles."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pexpect.fdpexpect
import pytest
import tomli_w
from test_behaviour import PATIENCE, unique_sleep
from test_plugin import BASE_ARGS

import pytest_otto
from pytest_otto import LocalHost
from pytest_otto.hosts.console import SerialHost, TcpHost
from pytest_otto.leases.leaseset import _closing as fencing
from pytest_otto.session import PROBE_RESEND_INTERVAL
from testlab._util import _hex_addr, free_port, listening_sockets
from testlab.labfile import lab_dict
from testlab.serial import SerialConsole

pytestmark = [pytest.mark.faults]


# -- a probe typed again never answers into a command's output -------------------------------


async def test_a_probe_typed_again_leaves_no_answer_in_the_first_output() -> None:
    """A shell that starts reading well after the first probe (a loaded machine, a slow
    login) reads the probe twice, as it was typed again: the second answer comes after
    the first, and used to land in the first command's output on pipes (a pty's start
    marker hid it there)."""
    late = f"sleep {PROBE_RESEND_INTERVAL * 2.5}; exec bash --norc --noprofile"
    hosts = [
        LocalHost("pipes", shell=["bash", "-c", late], connect_timeout=30),
        LocalHost("pty", shell=["bash", "-c", late + " -i"], pty=True, connect_timeout=30),
    ]

    async def first_two(host: LocalHost) -> list[str]:
        return [(await host.run(f"echo {n}")).only.output for n in ("first", "second")]

    try:
        assert await asyncio.gather(*map(first_two, hosts)) == [["first", "second"]] * 2
    finally:
        await asyncio.gather(*(host.close() for host in hosts))


# -- a ShellResetWarning belongs to the test that lost the shell -----------------------------

RESET_TESTS = """
import pytest

def test_loses_the_shell(host):
    host.run_sync("cd /tmp")
    assert "ended (exit code 3)" in host.run_sync("exit 3").only.output

def test_next(host):
    assert host.run_sync("echo fresh; pwd").only.output == "fresh\\n" + host.run_sync("echo ~").only.output

def test_loses_and_replaces_it(host):
    host.run_sync("exit 3")
    with pytest.warns(pytest_otto.ShellResetWarning, match="replaced by a fresh shell"):
        host.run_sync("true")

def test_last(host):
    assert host.run_sync("echo last").only.output == "last"
"""


def test_under_w_error_a_shell_reset_fails_the_test_that_lost_the_shell(
    pytester: pytest.Pytester, ssh_lab_toml: Path
) -> None:
    """B17 under ``-W error``, on a local and an SSH host: the test that ended its shell
    fails with the warning, the next test meets a fresh shell without one and passes; a
    test that loses and replaces its shell gets the warning at the call that replaced it.
    Without ``-W error`` the warning is listed under the test that lost the shell, at
    the line that lost it."""
    data = tomllib.loads(ssh_lab_toml.read_text())
    data["hosts"] = {"ssh2": data["hosts"]["ssh2"], "local": {"transport": "local"}}
    (pytester.path / "lab.toml").write_text(tomli_w.dumps(data))
    pytester.makepyfile(test_resets="import pytest_otto\n" + RESET_TESTS)
    args = [*BASE_ARGS, "-p", "no:randomly", "--lab=lab.toml"]
    strict = pytester.runpytest_subprocess(*args, "-W", "error::pytest_otto.ShellResetWarning", timeout=120)
    strict.assert_outcomes(passed=6, failed=2)
    out = strict.stdout.str()
    for host_id in ("ssh2", "local"):
        assert f"FAILED test_resets.py::test_loses_the_shell[{host_id}]" in out
        assert (
            f"ShellResetWarning: {host_id}: shell session 'default' on {host_id} ended (exit code 3);" in out
        )
    assert "its next call opens a fresh shell" in out
    lenient = pytester.runpytest_subprocess(*args, timeout=120)
    lenient.assert_outcomes(passed=8, warnings=2)  # the other two are pytest.warns's
    for host_id in ("ssh2", "local"):
        lenient.stdout.fnmatch_lines(
            [
                f"test_resets.py::test_loses_the_shell[[]{host_id}[]]",
                f"*test_resets.py:7: ShellResetWarning: {host_id}: *ended (exit code 3); its next call*",
            ]
        )


# -- a lost lease: nothing more is sent to the device ----------------------------------------


def test_a_lost_lease_drops_a_serial_console_without_logging_out(
    tmp_path: Path, password_user: tuple[str, str]
) -> None:
    """A lease found lost closes the host's shells without typing anything (no Ctrl-C,
    no ``exit``): the device is someone else's now. The shell we logged into is still
    there on the line, answering, where the logout used to end it."""
    with SerialConsole(login=True, name="ttyLEASE") as console:
        data = lab_dict({"sl": console}, name="leased", extra={"lease": "uart-7"})
        data["lab"].update(leases=f"file://{tmp_path / 'locks'}", lease_ttl=3)
        path = tmp_path / "lab.toml"
        path.write_text(tomli_w.dumps(data))
        lab = pytest_otto.load_lab(path)
        try:
            with lab.lease(["sl"]) as leases:
                assert lab["sl"].run_sync("echo logged-in-$((6*7))").only.output == "logged-in-42"
                lab.break_lease_sync("uart-7")
                assert wait_until_sync(lambda: leases.error("sl") is not None), "the break was never noticed"
                assert wait_until_sync(lambda: not fencing), "the fence never closed the host"
            fd = os.open(console.device, os.O_RDWR | os.O_NOCTTY)
            try:
                child = pexpect.fdpexpect.fdspawn(fd, timeout=PATIENCE)
                os.write(fd, b"echo still-$((6*7))\n")
                child.expect(b"still-42")  # the same shell: a logout would show login: here
            finally:
                os.close(fd)
        finally:
            lab.close_sync()


def wait_until_sync(check: Callable[[], bool], patience: float = PATIENCE) -> bool:
    deadline = time.monotonic() + patience
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# -- a local shell dies with pytest, however pytest ends -------------------------------------

TIMEOUT_TESTS = """
import asyncio

async def test_hangs(lab):
    pipes, pty = lab["pipes"], lab["pty"]
    # jobs of earlier commands: close() would end them too
    await pipes.run("touch started-job_pipes; sleep {job_pipes} & true")
    await pty.run("touch started-job_pty; sleep {job_pty} & true")
    await asyncio.gather(
        pipes.run("touch started-run_pipes; sleep {run_pipes}", timeout=600),
        pipes.oneshot("touch started-oneshot_pipes; sleep {oneshot_pipes}", timeout=600),
        pty.oneshot("touch started-oneshot_pty; sleep {oneshot_pty}", timeout=600),
    )
"""


def test_pytest_timeout_thread_method_leaves_no_local_process(pytester: pytest.Pytester) -> None:
    """pytest-timeout's ``thread`` method ends pytest with ``os._exit``: no cleanup runs.
    Local shells on pipes and on a pty, their running commands, their jobs and running
    oneshots end with it."""
    names = ("job_pipes", "job_pty", "run_pipes", "oneshot_pipes", "oneshot_pty")
    sleeps = {name: unique_sleep() for name in names}
    pytester.makepyfile(test_hang=TIMEOUT_TESTS.format(**sleeps))
    (pytester.path / "lab.toml").write_text(
        '[lab]\nname = "me"\n[hosts.pipes]\ntransport = "local"\n'
        '[hosts.pty]\ntransport = "local"\npty = true\n'
    )
    result = pytester.runpytest_subprocess(
        *BASE_ARGS, "--lab=lab.toml", "--timeout=5", "--timeout-method=thread", timeout=PATIENCE
    )
    assert "Timeout" in result.stdout.str() + result.stderr.str()
    assert result.ret != 0
    started = {name for name in names if (pytester.path / f"started-{name}").exists()}
    assert started == set(names), "not every command had started when pytest was ended"
    left = [name for name in names if not wait_until_sync(lambda n=name: not pgrep(f"sleep {sleeps[n]}"), 30)]
    assert not left, f"left running: {left}"


def pgrep(text: str) -> str:
    pattern = "[" + text[0] + "]" + text[1:].replace(".", "\\.")
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, check=False)
    return found.stdout.strip()


# -- a console we leave logged in gets its line back ------------------------------------------


@contextlib.contextmanager
def raw_tcp_console(device: Path) -> Iterator[int]:
    """socat serving ``device`` as a raw TCP console (ser2net's raw mode) for one
    connection: its port. Not probed with a connection, which would take the line."""
    port = free_port()
    argv = ["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr", f"FILE:{device},raw,echo=0"]
    proc = subprocess.Popen(argv, start_new_session=True)
    try:
        listening = lambda: _hex_addr("127.0.0.1", port) in listening_sockets()  # noqa: E731
        assert wait_until_sync(lambda: listening() or proc.poll() is not None) and proc.poll() is None
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()


@pytest.mark.parametrize("kind", ["serial", "tcp"])
def test_a_console_left_logged_in_gets_its_line_back_on_close(kind: str) -> None:
    """A console we do not log out of (no login, or a TCP console server) stays as it is
    after close(): its shell gets back the prompt, echo and line editing the session
    turned off. Typed at the line afterwards: a prompt, the typed text echoed, and
    Ctrl-A (bash's line editing) moves to the start of the line."""
    with SerialConsole(login=False, name=f"ttyBACK{kind}") as console:
        with contextlib.ExitStack() as stack:
            if kind == "serial":
                host: pytest_otto.Host = SerialHost("back", console.device, connect_timeout=30)
            else:
                port = stack.enter_context(raw_tcp_console(console.device))
                host = TcpHost("back", "127.0.0.1", port=port, connect_timeout=30)
            try:
                assert host.run_sync("echo framed; cd /tmp").only.output == "framed"
            finally:
                host.close_sync()
        fd = os.open(console.device, os.O_RDWR | os.O_NOCTTY)
        try:
            child = pexpect.fdpexpect.fdspawn(fd, timeout=PATIENCE)
            os.write(fd, b"\n")
            child.expect(rb"[$#] $")  # the prompt
            os.write(fd, b"cho back-$((6*7))\x01e\n")  # Ctrl-A, then the missing "e"
            child.expect(rb"back-42\r\n")
            assert b"cho back-$((6*7))" in child.before  # echoed as typed
            child.expect(rb"[$#] $")
        finally:
            os.close(fd)
