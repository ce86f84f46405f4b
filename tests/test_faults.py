"""The fault suite (issue 20): real sshd servers that die, freeze and misbehave.

Run it alone with ``pytest -m faults``. Every test here breaks a server of its
own (`own_sshd`: killed, paused, refused) or feeds a host what a device can do to
it: commands that ignore INT and QUIT, REPLs, floods of binary output, a share of
commands that time out. Each bound is asserted with the allowance the docs give
(`docs/faults.md`): these are bounds that must hold on a loaded machine, not speed
targets (speed is measured in benchmarks/).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import re
import shutil
import subprocess
import time
import tracemalloc
import warnings
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import tomli_w
from test_behaviour import PATIENCE, gone, sleeping, unique, unique_sleep, wait_until
from test_plugin import BASE_ARGS
from test_ssh import ssh_host as any_ssh_host

from pytest_otto import HostConnectionError, LocalHost, RemoteHost, ShellResetWarning, Status
from pytest_otto.lab import Lab
from pytest_otto.session import RECOVERY_ALLOWANCE, RECOVERY_STEP_TIMEOUT
from testlab import PASSWORD, PASSWORD_USER
from testlab.labfile import lab_dict
from testlab.sshd import SshServer

T = TypeVar("T")

pytestmark = [
    pytest.mark.faults,
    pytest.mark.needs_root,  # sshd servers of its own, a tmpfs
    pytest.mark.filterwarnings("ignore::pytest_otto.ShellResetWarning"),
]

#: Loopback addresses of this module's own servers (one per test, so a killed or
#: paused server never meets another test; ports are free ones, so xdist workers
#: may share an address).
_addresses = (f"127.0.0.{n}" for n in itertools.cycle(range(150, 200)))


@pytest.fixture
def own_sshd() -> Iterator[SshServer]:
    """A private sshd this test may kill, pause or stop."""
    server = SshServer(next(_addresses)).start()
    try:
        yield server
    finally:
        server.resume()
        server.remove()


def ssh_host(server: SshServer, host_id: str = "faulty", **options: object) -> RemoteHost:
    """`test_ssh.ssh_host` (the password user, the lab's client key), named ``faulty`` by default."""
    return any_ssh_host(server, host_id=host_id, **options)


@pytest.fixture(params=["pipes", "pty"])
async def host(request: pytest.FixtureRequest, own_sshd: SshServer) -> AsyncIterator[RemoteHost]:
    """An SSH host on `own_sshd`, its shells on pipes or on a pty."""
    target = ssh_host(own_sshd, pty=request.param == "pty")
    try:
        yield target
    finally:
        await target.close()


# -- 20.1: an abandoned shell never reaches its replacement ---------------------------------


async def test_an_abandoned_shell_that_ends_later_leaves_its_replacement_alone(host: RemoteHost) -> None:
    """A command that ignores HUP, INT and QUIT outlives the recovery: the session gives
    its shell up and opens a fresh one. When the old shell finally dies, its end must
    not end the new shell, whose cwd and variables the test set meanwhile."""
    token = unique()
    flag, pattern = f"/tmp/otto-release-{token}", f"[o]tto-release-{token}"  # cannot match pgrep itself
    # the shell ignores the signals too (as in the report), and the waiting process inherits that
    stuck = f"trap '' HUP INT QUIT; sh -c 'while [ ! -e {flag} ]; do sleep 0.1; done'; echo late"
    entry = (await host.run(stuck, timeout=1)).only
    assert entry.status is Status.Error and "will be replaced by a fresh shell" in entry.output
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert (await host.run(["cd /tmp", "export FOO=kept"])).status is Status.Success
    assert any(issubclass(w.category, ShellResetWarning) for w in caught)
    assert (await host.oneshot(f"pgrep -f '{pattern}' >/dev/null")).status is Status.Success
    await host.oneshot(f"touch {flag}")  # the old shell's command ends, and its shell with it

    async def old_shell_gone() -> bool:
        return (await host.oneshot(f"pgrep -f '{pattern}' >/dev/null")).status is Status.Failed

    assert await wait_until(old_shell_gone)
    # the old channel's close reaches the client while this runs
    entry = (await host.run("sleep 1; echo ok; pwd; echo $FOO")).only
    assert (entry.status, entry.output) == (Status.Success, "ok\n/tmp\nkept")
    await host.oneshot(f"rm -f {flag}")


# -- 20.2: no secret in any output of a failing run ------------------------------------------

#: Tests that fail with a device's output holding the lab password, by every way a
#: test can put text in a report: an assertion's diff (of a result's value and of a
#: plain ``str`` copy), an f-string message, locals (``-l``), printed output, a log
#: record, a JUnit property, an exception's message.
LEAKY_TESTS = """
import logging
import os
import sys

log = logging.getLogger("device")

def said(lab):
    password = os.environ["OTTO_FAULTS_PW"]
    return lab["pw"].run_sync(f"echo the password is {password}").only.output

def test_assert_diff(lab):
    assert said(lab) == "the password is not shown"

def test_plain_copy_diff(lab):
    copy = str(said(lab))  # a plain str: its repr is no longer masked
    assert copy.split() == ["no", "secret"]

def test_fstring_message(lab):
    assert False, f"got {said(lab)}"

def test_print_log_property_raise(lab, record_property):
    text = str(said(lab))
    print("stdout:", text)
    print("stderr:", text, file=sys.stderr)
    log.warning("device said %s", text)
    record_property("device_output", text)
    raise RuntimeError(f"device said {text}")
"""


def test_no_secret_in_any_output_of_a_failing_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, own_sshd: SshServer
) -> None:
    """The password of a lab host, printed by the device, is searched in everything the
    run writes: the terminal (``-l -vv -rA``, live logs), stderr, the log file and JUnit.
    The masks show that each path did carry the text."""
    monkeypatch.setenv("OTTO_FAULTS_PW", PASSWORD)
    data = lab_dict(
        {"pw": own_sshd},
        name="faults",
        user=lambda host_id, _: PASSWORD_USER,
        password=lambda host_id, _: {"env": "OTTO_FAULTS_PW"},
    )
    del data["hosts"]["pw"]["key"]
    data["hosts"]["pw"]["agent"] = False
    (pytester.path / "lab.toml").write_text(tomli_w.dumps(data))
    pytester.makepyfile(test_leaky=LEAKY_TESTS)
    result = pytester.runpytest_subprocess(
        *BASE_ARGS,
        "--lab=lab.toml",
        "-l",
        "-vv",
        "-rA",
        "--log-level=DEBUG",
        "--log-cli-level=INFO",
        "--log-file=run.log",
        "--junitxml=out.xml",
        timeout=PATIENCE,
    )
    result.assert_outcomes(failed=4)
    outputs = {
        "stdout": result.stdout.str(),
        "stderr": result.stderr.str(),
        "log file": (pytester.path / "run.log").read_text(),
        "junit": (pytester.path / "out.xml").read_text(),
    }
    for where, text in outputs.items():
        assert PASSWORD not in text, f"the password is in the {where}"
    assert "the password is ********" in outputs["stdout"] and "the password is ********" in outputs["junit"]
    junit = ET.fromstring(outputs["junit"])
    props = [p.get("value") for p in junit.iter("property") if p.get("name") == "device_output"]
    assert props == ["the password is ********"]


# -- 20.3: memory stays flat whatever the output volume --------------------------------------

#: What the Python heap may still grow by after the first floods: far below one kept
#: flood (a 4 MB binary flood is about 8 MB of str), so a kept output shows.
FLOOD_GROWTH_ALLOWANCE_MB = 2
FLOOD_BYTES = 4_000_000


async def traced_mb() -> float:
    """What Python objects alive in this process take (tracemalloc), in MB.

    Not the process's RSS: how much of the freed memory the allocator gives back to the
    system depends on the sizes of the reads, which depend on the machine's load (the
    RSS form of this test grew past its allowance under load with nothing kept). Taken
    in a fresh turn of the loop: the callback that resumed the caller holds the future
    of the last call, and so its result, until it returns.
    """
    await asyncio.sleep(0)
    gc.collect()
    return tracemalloc.get_traced_memory()[0] / 1e6


async def flood_sizes(host: RemoteHost) -> tuple[int, int]:
    """Characters of a binary flood's output through the shell, and through a oneshot."""
    flood = f"head -c {FLOOD_BYTES} /dev/urandom"
    shell = len((await host.run(flood)).only.output)
    oneshot = len((await host.oneshot(flood)).output)
    return shell, oneshot


async def test_binary_floods_leave_memory_flat(own_sshd: SshServer) -> None:
    """Floods of binary output through the shell and through oneshots: each result is
    complete, and once the first floods are done, more floods leave nothing behind (the
    transcript keeps heads and tails only); a result the caller keeps does show."""
    host = ssh_host(own_sshd, command_timeout=PATIENCE)
    complete = FLOOD_BYTES * 0.9  # decoded with replacement: a few bytes less or more
    tracemalloc.start()
    try:
        assert min(await flood_sizes(host)) > complete
        after_first = await traced_mb()
        for _ in range(2):
            assert min(await flood_sizes(host)) > complete
        growth = await traced_mb() - after_first
        assert growth < FLOOD_GROWTH_ALLOWANCE_MB, f"grew {growth:.1f} MB over 4 more floods"
        kept = [len(e.output) for e in host.transcript]
        assert len(kept) == 6 and max(kept) < 10_000
        held = await host.oneshot(f"head -c {FLOOD_BYTES} /dev/urandom")  # the measure sees a kept one
        assert len(held.output) > complete
        assert await traced_mb() - after_first > FLOOD_BYTES / 1e6 > FLOOD_GROWTH_ALLOWANCE_MB
    finally:
        tracemalloc.stop()
        await host.close()


# -- 20.4: timeout= is a bound on every call: T plus the recovery allowance --------------------

#: Scheduling on a loaded machine, beyond the documented bound. The bounds asserted
#: here are the contract of docs/faults.md, so they are measured, with a wide margin:
#: on a shared 2-core machine under ``-n 4`` a worker can wait seconds for the CPU
#: (1.5 s was once too little). Wide as it is, it tells a call that kept its bound
#: from one that waited for its command (``sleep 1000``) or for a second timeout.
SLACK = 10.0


async def elapsed(call: Awaitable[T]) -> tuple[T, float]:
    """What ``call`` returned, and the seconds it took."""
    start = time.monotonic()
    value = await call
    return value, time.monotonic() - start


@pytest.mark.parametrize(
    ("ignores", "recovered"), [("", True), ("trap '' INT;", True), ("trap '' INT QUIT;", False)]
)
async def test_commands_ignoring_int_and_quit_end_within_the_bound(
    host: RemoteHost, ignores: str, recovered: bool
) -> None:
    """A command ignoring Ctrl-C gets a hard kill; one ignoring both is given up, its shell
    replaced: each run returns within ``timeout + RECOVERY_ALLOWANCE``, and no process of
    the command is left (the given-up shell is hung up, HUP ending what ignored the rest)."""
    await host.run("cd /tmp")
    duration = unique_sleep()
    result, took = await elapsed(host.run(f"{ignores} sleep {duration}", timeout=1))
    entry = result.only
    assert (entry.status, entry.retcode) == (Status.Error, -1)
    assert entry.output.startswith("Command timed out after 1s")
    assert took < 1 + RECOVERY_ALLOWANCE + SLACK
    assert ("is not answering" in entry.output) is not recovered
    assert (await host.run("pwd")).only.output == ("/tmp" if recovered else f"/home/{PASSWORD_USER}")
    assert await gone(host, duration)


@pytest.mark.parametrize("pty", [False, True], ids=["pipes", "pty"])
async def test_the_bound_holds_on_a_local_host_too(pty: bool) -> None:
    """The session's recovery is the same code on every transport; a local host kills a
    command that ignores INT and QUIT hard, so its shell and state survive."""
    host = LocalHost(pty=pty)
    try:
        await host.run("cd /tmp")
        duration = unique_sleep()
        result, took = await elapsed(host.run(f"trap '' INT QUIT; sleep {duration}", timeout=1))
        assert result.only.output.startswith("Command timed out after 1s")
        assert took < 1 + RECOVERY_ALLOWANCE + SLACK
        assert (await host.run("pwd")).only.output == "/tmp"
        assert await gone(host, duration)
    finally:
        await host.close()


async def test_a_host_frozen_mid_command_is_not_answering_within_the_bound(own_sshd: SshServer) -> None:
    """The server freezes (SIGSTOP) while a command runs: the run ends within its bound
    saying the shell is not answering; while the host stays frozen the next run is an
    Error result within connect_timeout; once it thaws the host works again."""
    host = ssh_host(own_sshd, connect_timeout=2)
    try:
        await host.run("true")
        duration = unique_sleep()
        running = asyncio.ensure_future(elapsed(host.run(f"sleep {duration}", timeout=3)))
        assert await wait_until(lambda: sleeping(host, duration))
        own_sshd.pause()
        result, took = await running
        assert result.only.status is Status.Error and took < 3 + RECOVERY_ALLOWANCE + SLACK
        assert "is not answering" in result.only.output and "ended" not in result.only.output
        result, took = await elapsed(host.run(["echo frozen", "echo still"], timeout=1))
        assert [e.status for e in result.statuses] == [Status.Error, Status.Error]
        assert result.statuses[0].output.startswith("No fresh shell answered: faulty is not answering")
        assert took < 2 + SLACK
        shot, took = await elapsed(host.oneshot("true", timeout=1))
        assert shot.status is Status.Error and took < 1 + RECOVERY_ALLOWANCE + SLACK
        own_sshd.resume()
        assert (await host.run("echo back")).only.output == "back"
    finally:
        own_sshd.resume()
        await host.close()


async def test_a_host_killed_mid_command_is_an_error_within_the_bound(own_sshd: SshServer) -> None:
    host = ssh_host(own_sshd)
    try:
        duration = unique_sleep()
        running = asyncio.ensure_future(elapsed(host.run(f"sleep {duration}", timeout=3)))
        assert await wait_until(lambda: sleeping(host, duration))
        own_sshd.kill()
        result, took = await running
        assert result.only.status is Status.Error and "connection lost" in result.only.output
        assert took < 3 + RECOVERY_ALLOWANCE + SLACK
    finally:
        await host.close()


# -- 20.5: a put that fails leaves no file and names its cause -----------------------------------


@pytest.fixture
def small_tmpfs() -> Iterator[Path]:
    """A 1 MiB tmpfs every user may write to (mounted as root; unmounted after)."""
    mount = Path(f"/tmp/otto-faults-{unique()}")
    mount.mkdir(mode=0o755)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=1777", "otto-faults", str(mount)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:  # a container without CAP_SYS_ADMIN, say
        mount.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False, capture_output=True)
        mount.rmdir()


async def test_a_put_that_fails_leaves_no_file_and_names_the_cause(
    own_sshd: SshServer, small_tmpfs: Path, tmp_path: Path
) -> None:
    """Into a full filesystem, and into a folder the user may not write: the result says
    which (no space left, permission denied), and no file is left under any name. A put
    that fits replaces the file whole."""
    host = ssh_host(own_sshd)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(5_000_000))
    small = tmp_path / "small.txt"
    small.write_text("new content\n")
    locked = small_tmpfs / "locked"
    locked.mkdir()
    locked.chmod(0o555)  # root's: the password user may not write there
    remote_big = Path(f"/tmp/otto-faults-big-{unique()}.bin")  # outside tmp_path: the user may read it
    try:
        result = await host.put(big, str(small_tmpfs))
        assert not result and "no space left" in result.message, result.message
        assert "big.bin" in result.message and [p.name for p in small_tmpfs.iterdir()] == ["locked"]
        result = await host.put(small, str(locked))
        assert not result and "permission denied" in result.message.lower(), result.message
        assert list(locked.iterdir()) == []
        old = tmp_path / "old" / "small.txt"
        old.parent.mkdir()
        old.write_text("old content\n")
        assert await host.put(old, str(small_tmpfs))
        assert await host.put(small, str(small_tmpfs))
        assert (small_tmpfs / "small.txt").read_text() == "new content\n"
        assert sorted(p.name for p in small_tmpfs.iterdir()) == ["locked", "small.txt"]
        # get: the same, on this side
        shutil.copy(big, remote_big)
        remote_big.chmod(0o644)
        result = await host.get(str(remote_big), small_tmpfs / "got")
        assert not result and "No space left on device" in result.message, result.message
        assert list((small_tmpfs / "got").iterdir()) == []
    finally:
        await host.close()
        remote_big.unlink(missing_ok=True)


# -- dead and frozen hosts in fan-out and in pytest's pre-flight -----------------------------------


@pytest.fixture
def three_sshd() -> Iterator[list[SshServer]]:
    """Three servers of this test's own: one to keep, one to kill, one to freeze."""
    servers = [SshServer(next(_addresses)).start() for _ in range(3)]
    try:
        yield servers
    finally:
        for server in servers:
            server.resume()
            server.remove()


async def test_dead_and_frozen_hosts_in_a_fan_out(three_sshd: list[SshServer]) -> None:
    """One host alive, one dead (its sshd killed: refused), one frozen (SIGSTOP: never
    answers): the fan-out returns within connect_timeout, with the live host's result
    intact and each other host's error naming it and the cause."""
    good, dead, frozen = three_sshd
    dead.kill()
    frozen.pause()
    lab = Lab(
        [
            ssh_host(good, "good", connect_timeout=5),
            ssh_host(dead, "dead", connect_timeout=5),
            ssh_host(frozen, "frozen", connect_timeout=5),
        ]
    )
    try:
        results, took = await elapsed(lab.run_on_all_hosts("echo $SSH_CONNECTION"))
        assert list(results) == ["good", "dead", "frozen"]
        assert results["good"].only.output.split()[2] == good.address
        assert isinstance(results["dead"], HostConnectionError) and "refused" in str(results["dead"])
        assert isinstance(results["frozen"], HostConnectionError)
        assert str(results["frozen"]).startswith("frozen: connect timed out after 5s")
        assert took < 5 + SLACK
    finally:
        await lab.close()


PREFLIGHT_TESTS = """
def test_echo(host):
    assert host.run_sync("echo hi").only.output == "hi"

async def test_async_echo(host):
    assert (await host.run("echo hi")).only.output == "hi"
"""


#: The hosts' connect_timeout in the pre-flight run: long enough that a wait per test
#: (twice this) is told from one pre-flight wait by a margin a loaded machine keeps.
CONNECT_TIMEOUT = 10.0


def test_dead_and_frozen_hosts_in_pytest_pre_flight(
    pytester: pytest.Pytester, three_sshd: list[SshServer]
) -> None:
    """A pytest run on the same three hosts: the live host's tests pass, the dead and
    the frozen host's tests error at setup naming the host and the cause, and the run
    (pre-flight connection included) takes about one connect_timeout, not one per test."""
    good, dead, frozen = three_sshd
    data = lab_dict({"good": good, "dead": dead, "frozen": frozen}, name="faults")
    for host_id in data["hosts"]:
        data["hosts"][host_id]["connect_timeout"] = CONNECT_TIMEOUT
    (pytester.path / "lab.toml").write_text(tomli_w.dumps(data))
    pytester.makepyfile(test_preflight=PREFLIGHT_TESTS)
    dead.kill()
    frozen.pause()
    result = pytester.runpytest_subprocess(*BASE_ARGS, "--lab=lab.toml", timeout=PATIENCE)
    result.assert_outcomes(passed=2, errors=4)
    result.stdout.fnmatch_lines(
        [
            "*pytest-otto: host 'dead' is unreachable: connection to *refused*",
            f"*pytest-otto: host 'frozen' is unreachable: connect timed out after {CONNECT_TIMEOUT:g}s*",
        ],
        consecutive=False,
    )
    # The frozen host's two tests, each waiting for its own connect, would take twice
    # connect_timeout; one pre-flight wait leaves the other half for the run's own work
    # (pytest's reports, the good host's two tests) on a loaded machine.
    took = float(re.search(r" in ([0-9.]+)s", result.stdout.lines[-1]).group(1))  # type: ignore[union-attr]
    assert took < 2 * CONNECT_TIMEOUT, result.stdout.str()


# -- many runs, a share timing out: nothing left behind ---------------------------------------------


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_many_runs_with_a_share_timing_out_leave_nothing_behind(
    host: RemoteHost, own_sshd: SshServer
) -> None:
    """50 runs, every tenth timing out: every other run returns its own output, every
    timeout stays within its bound, and afterwards no command process is left on the
    server, no extra sshd session is open, and the client holds no more descriptors."""
    await host.run("true")
    fds, sessions = open_fds(), len(own_sshd.connection_pids())
    token = unique_sleep()
    for i in range(50):
        if i % 10 == 9:
            entry, took = await elapsed(host.run(f"sleep {token}", timeout=0.3))
            assert entry.only.output.startswith("Command timed out after 0.3s")
            assert took < 0.3 + RECOVERY_ALLOWANCE + SLACK
        else:
            assert (await host.run(f"echo {i}")).only.output == str(i)
    assert await sleeping(host, token) == ""
    # (the oneshot that looked may still be ending on the server: a wait, not a bound)
    assert await wait_until(lambda: len(own_sshd.connection_pids()) == sessions)
    assert open_fds() <= fds


# -- REPLs --------------------------------------------------------------------------------------


async def test_a_repl_left_running_by_send_is_left_behind_by_the_next_run(host: RemoteHost) -> None:
    """A Python REPL started with ``send`` answers the re-sync probe with errors, never
    with the probe's marker (pitfall 3); the next run gets the shell back (the REPL is
    interrupted, then killed) and returns its own output."""
    await host.run("cd /tmp")
    await host.send("python3 -i -q\n")
    await host.send("print(6 * 7)\n")
    assert "42" in await host.expect("42", timeout=PATIENCE)
    entry, took = await elapsed(host.run("echo back; pwd", timeout=5))
    assert (entry.only.status, entry.only.output) == (Status.Success, "back\n/tmp")
    assert took < 5 + RECOVERY_ALLOWANCE + RECOVERY_STEP_TIMEOUT + SLACK


# -- 20.6: channel refusals name their likely cause ------------------------------------------------


@pytest.mark.parametrize(
    ("config", "pty", "cause"),
    [
        ("MaxSessions 0", False, "(MaxSessions 0?)"),
        ("PermitTTY no", True, "sshd refused a terminal (PermitTTY no?); use pty = false here"),
    ],
)
async def test_a_refused_channel_names_the_setting_that_refused_it(
    config: str, pty: bool, cause: str
) -> None:
    server = SshServer(next(_addresses), extra_config=[config]).start()
    host = ssh_host(server, pty=pty)
    try:
        with pytest.raises(HostConnectionError, match=r"^faulty: .*cannot open a channel: ") as caught:
            await host.run("true")
        assert cause in str(caught.value)
    finally:
        await host.close()
        server.remove()


async def test_a_hop_that_does_not_forward_is_named(three_sshd: list[SshServer]) -> None:
    target, _, _ = three_sshd
    hop_server = SshServer(next(_addresses), extra_config=["DisableForwarding yes"]).start()
    hop = ssh_host(hop_server, "hop")
    host = ssh_host(target, hop=hop)
    try:
        with pytest.raises(HostConnectionError) as caught:
            await host.run("true")
        assert "through hop 'hop': the hop refused to forward it" in str(caught.value)
        assert "DisableForwarding" in str(caught.value)
    finally:
        await host.close()
        await hop.close()
        hop_server.remove()


# -- 20.6: close() racing a host's first call -------------------------------------------------------


async def test_close_during_a_first_oneshot_leaves_no_connection(own_sshd: SshServer) -> None:
    """close() while a oneshot's connection is being made: the oneshot ends with an error
    saying the host was closed, and no connection is opened after close() returned."""
    host = ssh_host(own_sshd)
    shot = asyncio.ensure_future(host.oneshot("echo hi"))
    await asyncio.sleep(0)  # the oneshot starts connecting
    await host.close()
    with pytest.raises(HostConnectionError, match=r"was closed \(close\(\) was called\)"):
        await shot
    assert not host.is_connected
    assert await wait_until(lambda: own_sshd.connection_pids() == [])
    await host.close()
