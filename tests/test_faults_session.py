"""The fault suite, the shell session's side (issue 20.6): what a slow shell, a killed
pytest, a lost lease or a reset leave behind, against real shells and consoles."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
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
from testlab._util import free_port, wait_for_port
from testlab.labfile import lab_dict
from testlab.serial import SerialConsole

pytestmark = [pytest.mark.faults]


# -- a probe typed again never answers into a command's output -------------------------------


@pytest.mark.parametrize("pty", [False, True], ids=["pipes", "pty"])
async def test_a_probe_typed_again_leaves_no_answer_in_the_first_output(pty: bool) -> None:
    """A shell that starts reading well after the first probe (a loaded machine, a slow
    login) reads the probe twice, as it was typed again: the second answer comes after
    the first, and used to land in the first command's output on pipes."""
    late = f"sleep {PROBE_RESEND_INTERVAL * 2.5}; exec bash --norc --noprofile" + (" -i" if pty else "")
    host = LocalHost(shell=["bash", "-c", late], pty=pty, connect_timeout=30)
    try:
        assert (await host.run("echo first")).only.output == "first"
        assert (await host.run("echo second")).only.output == "second"
    finally:
        await host.close()


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


@pytest.mark.parametrize("where", ["local", "ssh"])
def test_under_w_error_a_shell_reset_fails_the_test_that_lost_the_shell(
    pytester: pytest.Pytester, request: pytest.FixtureRequest, where: str
) -> None:
    """B17 under ``-W error``: the test that ended its shell fails with the warning (at
    its line), the next test meets a fresh shell without one and passes; a test that
    loses and replaces its shell gets the warning at the call that replaced it."""
    args = ["-p", "no:randomly"]
    if where == "ssh":
        lab = request.getfixturevalue("ssh_lab_toml")
        args += [f"--lab={lab}", "--host-pattern=^ssh2$"]
    pytester.makepyfile(test_resets="import pytest_otto\n" + RESET_TESTS)
    strict = pytester.runpytest_subprocess(
        *BASE_ARGS, *args, "-W", "error::pytest_otto.ShellResetWarning", timeout=120
    )
    strict.assert_outcomes(passed=3, failed=1)
    out = strict.stdout.str()
    assert "FAILED test_resets.py::test_loses_the_shell" in out
    assert "ShellResetWarning: " in out and "shell session 'default' on " in out
    assert "ended (exit code 3); its next call opens a fresh shell" in out
    # without -W error: the warning is that test's too, at the line that lost the shell
    lenient = pytester.runpytest_subprocess(*BASE_ARGS, *args, timeout=120)
    lenient.assert_outcomes(passed=4, warnings=1)  # the other one is pytest.warns's
    lenient.stdout.fnmatch_lines(
        [
            "test_resets.py::test_loses_the_shell*",
            "*test_resets.py:7: ShellResetWarning: *ended (exit code 3); its next call opens a fresh shell*",
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
def test_hangs(host):
    host.run_sync("sleep {long} & true")  # an earlier command's job: close() would end it too
    host.oneshot_sync("sleep {oneshot}", timeout=600)
"""

TIMEOUT_TESTS_RUN = """
def test_hangs(host):
    host.run_sync("sleep {long}", timeout=600)
"""


@pytest.mark.parametrize(
    ("call", "pty"),
    [("run", False), ("oneshot", False), ("oneshot", True)],  # a pty's hang-up ends its foreground anyway
    ids=["run-pipes", "oneshot-pipes", "oneshot-pty"],
)
def test_pytest_timeout_thread_method_leaves_no_local_process(
    pytester: pytest.Pytester, pty: bool, call: str
) -> None:
    """pytest-timeout's ``thread`` method ends pytest with ``os._exit``: no cleanup runs.
    The local shell, its running command and its jobs (and a oneshot's command) end with it."""
    long, oneshot = unique_sleep(), unique_sleep()
    template = TIMEOUT_TESTS if call == "oneshot" else TIMEOUT_TESTS_RUN
    pytester.makepyfile(test_hang=template.format(long=long, oneshot=oneshot))
    lab = pytester.path / "lab.toml"
    lab.write_text(f'[lab]\nname = "me"\n[hosts.local]\ntransport = "local"\npty = {str(pty).lower()}\n')
    result = pytester.runpytest_subprocess(
        *BASE_ARGS, f"--lab={lab}", "--timeout=3", "--timeout-method=thread", timeout=PATIENCE
    )
    assert "Timeout" in result.stdout.str() + result.stderr.str()
    assert result.ret != 0
    for duration in (long, oneshot) if call == "oneshot" else (long,):
        assert wait_until_sync(lambda d=duration: not pgrep(f"sleep {d}")), f"sleep {duration} was left"


def pgrep(text: str) -> str:
    pattern = "[" + text[0] + "]" + text[1:].replace(".", "\\.")
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, check=False)
    return found.stdout.strip()


# -- a console we leave logged in gets its line back ------------------------------------------


@contextlib.contextmanager
def raw_tcp_console(device: Path) -> Iterator[int]:
    """socat serving ``device`` as a raw TCP console (ser2net's raw mode): its port."""
    port = free_port()
    argv = ["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork", f"FILE:{device},raw,echo=0"]
    proc = subprocess.Popen(argv, start_new_session=True)
    try:
        wait_for_port("127.0.0.1", port, proc=proc, what="socat")
        yield port
    finally:
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
