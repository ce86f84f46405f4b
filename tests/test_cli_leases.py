"""``otto`` and device leases: list, break, check, and the leases the device commands hold.

The real ``otto`` executable runs against the test lab's real servers (sshd, a telnet
console with ``/bin/login``, a serial line, the local machine) with both lease stores:
``flock`` files in a directory of the test's own, and a real ``redis-server`` on
loopback. The other holder is always a real process: a small script that leases
devices through the library, as a pytest run or another ``otto`` would.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pexpect
import pytest

from testlab import RedisServer, SshLab
from tests.lease_helpers import child_env, fresh_redis_url
from tests.test_cli import (  # noqa: F401 - cli_lab and serial_line: the fixtures this module shares
    PW_ENV,
    SLOW,
    cli_lab,
    closed_port,
    env_for,
    otto_argv,
    rows,
    serial_line,
)

#: A process that leases hosts of a lab and holds them until told otherwise on stdin:
#: ``use`` waits (bounded) until using the first host raises LeaseLost and prints it;
#: end of input releases.
HOLDER = textwrap.dedent(
    """
    import sys, time
    import pytest_otto
    from pytest_otto.leases import LeaseLost
    lab = pytest_otto.load_lab(sys.argv[1])
    ids = sys.argv[2:]
    leases = lab.lease(ids, wait=120)
    leases.acquire_sync()
    print("held", flush=True)
    for line in sys.stdin:
        if line.strip() == "use":
            deadline = time.monotonic() + 60
            while True:
                try:
                    lab[ids[0]].run_sync("true")
                except LeaseLost as exc:
                    print("lost:", exc, flush=True)
                    break
                if time.monotonic() > deadline:
                    print("still held", flush=True)
                    break
                time.sleep(0.2)
    leases.release_sync()
    lab.close_sync()
    """
)

JOB_URL = "https://ci.example/bench/-/jobs/4711"


@pytest.fixture(scope="module")
def lease_lab(cli_lab: Path) -> Path:  # noqa: F811 - the fixture imported above
    """test_cli's lab (ssh1, telnet1, serial1, me, dead) with a relay driven from this machine
    (leased by name, with a power switch), and Redis leases of 10 s: short enough to show a
    lease given back at once is not one that expired, long enough for a stalled machine."""
    folder = cli_lab.parent
    path = folder / "lease-lab.toml"
    text = cli_lab.read_text().replace('name = "cli-bench"', 'name = "cli-bench"\nlease_ttl = 10')
    path.write_text(
        text
        + f"""
[hosts.relay]
transport = "local"
lease = "relay-1"

[hosts.relay.power]
on = "touch {folder}/relay.on"
off = "rm -f {folder}/relay.on"
status = "test -e {folder}/relay.on"
"""
    )
    return path


@pytest.fixture(params=["file", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The lease store of one test: a lock directory of its own, or a fresh Redis database."""
    if request.param == "file":
        return f"file://{tmp_path}/leases"
    server: RedisServer = request.getfixturevalue("redis_server")
    return fresh_redis_url(server)


@pytest.fixture
def file_store(tmp_path: Path) -> str:
    """A lock directory of the test's own (for what behaves alike in both stores)."""
    return f"file://{tmp_path}/leases"


def otto_with(store: str, lab: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``otto ARGS`` with the leases in ``store``, to its end."""
    return subprocess.run(
        [*otto_argv(), *args],
        capture_output=True,
        text=True,
        timeout=SLOW * 2,
        stdin=subprocess.DEVNULL,
        env=env_for(lab, OTTO_LEASES=store, **env),
        check=False,
    )


@pytest.fixture
def hold(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """``hold(store, lab, *host_ids)``: a real process holding those hosts' leases (until the test ends)."""
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    started: list[subprocess.Popen[str]] = []

    def start(store: str, lab: Path, *ids: str) -> subprocess.Popen[str]:
        env = child_env(OTTO_LEASES=store, CI_JOB_URL=JOB_URL, **{PW_ENV: "unused"})
        proc = subprocess.Popen(
            [sys.executable, str(script), str(lab), *ids],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        started.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line == "held\n", line + proc.stdout.read()
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=SLOW)


def listing(store: str, lab: Path, *args: str) -> dict[str, dict[str, object]]:
    """``otto --json lease list``: device -> its entry."""
    result = otto_with(store, lab, "--json", "lease", "list", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return {d["device"]: d for d in json.loads(result.stdout)["devices"]}


def otto_waiting(
    store: str, lab: Path, err: Path, pattern: str, wait: float, command: str
) -> subprocess.Popen[str]:
    """``otto run`` on the hosts ``pattern`` selects, started and seen waiting for a busy device."""
    with err.open("w") as errors:
        proc = subprocess.Popen(
            [*otto_argv(), "run", "-p", pattern, "--lease-wait", str(wait), "--", command],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env=env_for(lab, OTTO_LEASES=store),
        )
    wait_for(lambda: "otto leases: waiting" in err.read_text(), "otto says whom it waits for")
    return proc


def wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + SLOW
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.1)


# -- otto lease list ----------------------------------------------------------------------


def test_lease_list_names_the_holder_of_each_device_and_the_free_ones(
    store: str, lease_lab: Path, hold: Callable[..., subprocess.Popen[str]], ssh_lab: SshLab
) -> None:
    holder = hold(store, lease_lab, "ssh1", "relay")
    result = otto_with(store, lease_lab, "lease", "list")
    assert result.returncode == 0, result.stderr
    table = result.stdout.splitlines()
    assert table[0].split() == ["DEVICE", "HOSTS", "STATE", "PID", "SINCE", "AGE", "JOB"]
    by_device = {line.split()[0]: line for line in table[1:] if not line.startswith(("not leased", "5 "))}
    ssh_device = f"{ssh_lab[0].address}:{ssh_lab[0].port}"
    assert re.match(
        rf"{re.escape(ssh_device)}\s+ssh1\s+leased by \S+@\S+\s+{holder.pid}\s+"
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"
        rf"\s+\d+s\s+{re.escape(JOB_URL)}$",
        by_device[ssh_device],
    ), result.stdout
    assert re.match(rf"relay-1\s+relay\s+leased by .*{holder.pid}", by_device["relay-1"]), result.stdout
    assert re.match(r"\S+:\d+\s+telnet1\s+free$", next(v for v in by_device.values() if "telnet1" in v))
    assert f"5 devices: 2 leased, 3 free (store {store})" in result.stdout
    assert table[-1] == "not leased: me"

    entries = listing(store, lease_lab)
    relay = entries["relay-1"]
    assert relay["state"] == "leased" and relay["hosts"] == ["relay"]
    who = relay["holder"]
    assert isinstance(who, dict)
    assert (who["pid"], who["job"]) == (holder.pid, JOB_URL)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", str(who["started"]))
    assert isinstance(who["age_seconds"], float) and 0 <= who["age_seconds"] < SLOW * 4
    # a Redis lease lives until its TTL unless renewed; a file lease ends with its process
    assert (relay["expires_in"] is None) == store.startswith("file")
    assert entries[ssh_device]["holder"] is not None
    assert [d for d, e in entries.items() if e["state"] == "free"] == sorted(
        d for d in entries if d not in (ssh_device, "relay-1")
    )
    # -p selects hosts as everywhere; --all adds the store's leases of other labs' devices
    assert list(listing(store, lease_lab, "-p", "relay")) == ["relay-1"]
    other = lease_lab.parent / "other.toml"
    other.write_text('[hosts.x]\ntransport = "local"\nlease = "elsewhere-7"\n')
    hold(store, other, "x")
    assert "elsewhere-7" not in listing(store, lease_lab, "-p", "relay")
    assert listing(store, lease_lab, "-p", "relay", "--all")["elsewhere-7"]["hosts"] == []


# -- otto lease break -----------------------------------------------------------------------


def test_lease_break_refuses_without_yes_then_breaks_and_the_holder_finds_it_lost(
    store: str, lease_lab: Path, hold: Callable[..., subprocess.Popen[str]]
) -> None:
    holder = hold(store, lease_lab, "relay")
    result = otto_with(store, lease_lab, "lease", "break", "relay")
    assert result.returncode == 4, result.stdout + result.stderr
    assert re.search(
        rf"relay-1 \(relay\) is leased by \S+@\S+ pid {holder.pid} since .*pass --yes", result.stderr
    )
    assert listing(store, lease_lab)["relay-1"]["state"] == "leased"  # refused: nothing broken

    result = otto_with(store, lease_lab, "--json", "lease", "break", "--yes", "relay-1")  # by device name
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["broken"] is True and doc["hosts"] == ["relay"] and doc["holder"]["pid"] == holder.pid
    assert listing(store, lease_lab)["relay-1"]["state"] == "free"
    assert holder.stdin is not None and holder.stdout is not None
    holder.stdin.write("use\n")
    holder.stdin.flush()
    said = holder.stdout.readline()
    assert said.startswith("lost: ") and "broken on purpose" in said, said

    result = otto_with(store, lease_lab, "lease", "break", "--yes", "relay")
    assert (result.returncode, result.stdout.strip()) == (0, "relay-1 (relay) is free: no lease to break")


def test_lease_break_asks_at_a_terminal(
    tmp_path: Path, lease_lab: Path, hold: Callable[..., subprocess.Popen[str]]
) -> None:
    store = f"file://{tmp_path}/leases"
    holder = hold(store, lease_lab, "relay")
    env = env_for(lease_lab, OTTO_LEASES=store)
    argv = otto_argv()
    child = pexpect.spawn(argv[0], [*argv[1:], "lease", "break", "relay"], env=env, timeout=SLOW)
    child.expect(
        rf"Break the lease on relay-1 \(relay\), held by \S+@\S+ pid {holder.pid} since .*\? \[y/N\] "
    )
    child.sendline("n")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1 and b"relay-1 (relay): not broken" in child.before
    assert listing(store, lease_lab)["relay-1"]["state"] == "leased"
    child = pexpect.spawn(argv[0], [*argv[1:], "lease", "break", "relay"], env=env, timeout=SLOW)
    child.expect(r"\[y/N\] ")
    child.sendline("y")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert re.search(
        rf"broke the lease on relay-1 \(relay\) held by \S+@\S+ pid {holder.pid}", child.before.decode()
    )
    assert listing(store, lease_lab)["relay-1"]["state"] == "free"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("me", "host 'me' is not leased"),
        ("nonsense", "'nonsense' is neither a host of lab 'cli-bench' nor a leased device; its devices: "),
    ],
)
def test_lease_break_of_nothing_leased_is_a_usage_error(
    tmp_path: Path, lease_lab: Path, target: str, message: str
) -> None:
    result = otto_with(f"file://{tmp_path}/leases", lease_lab, "lease", "break", "--yes", target)
    assert result.returncode == 4 and message in result.stderr, result.stderr


# -- otto check -----------------------------------------------------------------------------


def test_check_shows_devices_leased_by_another_process_without_logging_in(
    file_store: str, lease_lab: Path, hold: Callable[..., subprocess.Popen[str]]
) -> None:
    store = file_store
    holder = hold(store, lease_lab, "ssh1", "telnet1", "serial1", "relay")
    result = otto_with(store, lease_lab, "check", "-p", "^(ssh1|telnet1|serial1|relay|me)$")
    assert result.returncode == 0, result.stdout + result.stderr
    table = rows(result.stdout)
    for host_id, probe in (
        ("ssh1", "endpoint answers"),
        ("telnet1", "endpoint answers"),
        ("serial1", "device present"),
        ("relay", "this machine"),
    ):
        cells = table[host_id]
        assert re.fullmatch(rf"leased by \S+@\S+ \(pid {holder.pid}, since \d\d:\d\d:\d\d UTC\)", cells[3]), (
            cells
        )
        assert cells[4:] == ["-", f"not logged in (leased); {probe}"], cells
    assert table["me"][3] == "ok"
    assert result.stdout.splitlines()[-1] == "5 hosts: all ok (4 leased by another run)"
    # checking took nothing and broke nothing: the holder still holds every device
    held = listing(store, lease_lab)
    assert sum(1 for e in held.values() if e["state"] == "leased") == 4
    assert all(e["holder"]["pid"] == holder.pid for e in held.values() if e["holder"])  # type: ignore[index]


def test_check_a_leased_host_whose_endpoint_does_not_answer_is_not_ok(
    file_store: str, lease_lab: Path, hold: Callable[..., subprocess.Popen[str]]
) -> None:
    store = file_store
    holder = hold(store, lease_lab, "dead")
    result = otto_with(store, lease_lab, "--json", "check", "-p", "^(dead|me)$")
    assert result.returncode == 1, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    by_id = {h["id"]: h for h in doc["hosts"]}
    gone = by_id["dead"]
    assert gone["state"].startswith("leased by ") and f"(pid {holder.pid}, since " in gone["state"]
    assert gone["reachable"] is False and "refused" in gone["error"]
    assert gone["lease"]["holder"]["pid"] == holder.pid and gone["lease"]["holder"]["job"] == JOB_URL
    assert doc["ok"] is False and by_id["me"]["state"] == "ok"


# -- commands that drive devices hold their leases ---------------------------------------------------


def test_run_waits_for_a_busy_device_then_runs(
    store: str, lease_lab: Path, hold: Callable[..., subprocess.Popen[str]], tmp_path: Path
) -> None:
    holder = hold(store, lease_lab, "relay")
    err = tmp_path / "otto.err"
    proc = otto_waiting(store, lease_lab, err, "^(relay|me)$", SLOW * 2, "echo ran")
    assert proc.poll() is None
    assert re.search(
        r"otto leases: waiting up to \d+s for relay-1 \(host relay\), "
        rf"held by \S+@\S+ pid {holder.pid} since "
        rf".*job {re.escape(JOB_URL)}",
        err.read_text(),
    ), err.read_text()
    assert holder.stdin is not None
    holder.stdin.close()  # the holder gives the device back
    out, _ = proc.communicate(timeout=SLOW * 2)
    assert proc.returncode == 0, out + err.read_text()
    assert re.search(r"otto leases: got relay-1 \(host relay\) after \d+\.\ds", err.read_text())
    assert "== relay: Success (exit 0" in out and "2/2 hosts ok" in out


def test_ctrl_c_while_waiting_gives_back_what_was_already_taken(
    store: str, lease_lab: Path, hold: Callable[..., subprocess.Popen[str]], tmp_path: Path, ssh_lab: SshLab
) -> None:
    hold(store, lease_lab, "relay")
    ssh_device = f"{ssh_lab[0].address}:{ssh_lab[0].port}"  # sorts before relay-1: taken first
    err = tmp_path / "otto.err"
    proc = otto_waiting(store, lease_lab, err, "^(ssh1|relay)$", SLOW * 4, "true")
    held = listing(store, lease_lab, "-p", "^(ssh1|relay)$")
    assert held[ssh_device]["holder"]["pid"] == proc.pid  # type: ignore[index]
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=SLOW)
    assert proc.returncode == 2 and "otto: interrupted" in err.read_text(), out + err.read_text()
    assert out == ""  # no command ran anywhere
    # the device it held while waiting is free at once, in Redis too (not after the TTL)
    assert listing(store, lease_lab, "-p", "ssh1")[ssh_device]["state"] == "free"


def test_run_on_a_device_not_obtained_fails_that_host_only(
    file_store: str, lease_lab: Path, hold: Callable[..., subprocess.Popen[str]], ssh_lab: SshLab
) -> None:
    store = file_store
    holder = hold(store, lease_lab, "ssh1")
    result = otto_with(store, lease_lab, "run", "-p", "^(ssh1|me)$", "--lease-wait", "0.5", "--", "echo ran")
    assert result.returncode == 1, result.stdout + result.stderr
    blocks = dict(b.split("\n", 1) for b in re.split(r"^== ", result.stdout, flags=re.M)[1:])
    device = f"{ssh_lab[0].address}:{ssh_lab[0].port}"
    assert blocks["ssh1: leased (no exit code)"].startswith(f"device '{device}' is leased by "), result.stdout
    assert f"pid {holder.pid} since " in blocks["ssh1: leased (no exit code)"]
    assert "ran" not in blocks["ssh1: leased (no exit code)"]
    assert any(k.startswith("me: Success") and v.startswith("ran") for k, v in blocks.items())
    assert "otto leases: gave up on" in result.stderr
    doc = json.loads(
        otto_with(store, lease_lab, "--json", "run", "-p", "ssh1", "--lease-wait", "0", "--", "true").stdout
    )
    assert doc["hosts"][0]["status"] == "leased" and doc["ok"] is False


def test_every_device_command_refuses_a_device_held_by_another(
    tmp_path: Path, lease_lab: Path, hold: Callable[..., subprocess.Popen[str]]
) -> None:
    store = f"file://{tmp_path}/leases"
    holder = hold(store, lease_lab, "relay", "ssh1")
    (tmp_path / "file.txt").write_text("data\n")
    busy = rf"is leased by \S+@\S+ pid {holder.pid} since "
    for args in (
        ["put", "-p", "relay", str(tmp_path / "file.txt"), str(tmp_path / "inbox")],
        ["get", "relay", str(tmp_path / "file.txt"), str(tmp_path / "fetched")],
        ["power", "relay", "on"],
        ["reboot", "relay", "--no-wait"],
    ):
        result = otto_with(store, lease_lab, *args, "--lease-wait", "0")
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert re.search(rf"relay: .*device 'relay-1' {busy}", result.stdout), (args, result.stdout)
    assert not (tmp_path / "inbox").exists() and not (tmp_path / "fetched").exists()
    assert not (lease_lab.parent / "relay.on").exists()  # the switch was not touched

    env = env_for(lease_lab, OTTO_LEASES=store, TERM="xterm")
    shell = f"stty -g; {' '.join(otto_argv())} console ssh1 --lease-wait 0; echo rc=$?; stty -g"
    child = pexpect.spawn("bash", ["--norc", "--noprofile", "-c", shell], env=env, timeout=SLOW)
    child.expect(r"([0-9a-f:]{40,})\r\n")
    saved = child.match.group(1)
    child.expect(r"rc=(\d+)\r\n")
    assert child.match.group(1) == b"1"
    assert re.search(rf"otto: ssh1: leased: device '\S+' {busy}", child.before.decode()), child.before
    child.expect(r"([0-9a-f:]{40,})\r\n")
    assert child.match.group(1) == saved
    child.expect(pexpect.EOF)


def test_a_device_command_holds_the_lease_and_gives_it_back_on_ctrl_c_and_sigterm(
    store: str, lease_lab: Path, tmp_path: Path
) -> None:
    for sig, said in ((signal.SIGINT, "otto: interrupted"), (signal.SIGTERM, "otto: interrupted by SIGTERM")):
        flag = tmp_path / f"started-{sig.name}"
        proc = subprocess.Popen(
            [*otto_argv(), "run", "-p", "relay", "--", f"touch {flag}; sleep 120"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env_for(lease_lab, OTTO_LEASES=store),
        )
        wait_for(lambda: flag.exists() or proc.poll() is not None, "the command started")  # noqa: B023
        held = listing(store, lease_lab, "-p", "relay")["relay-1"]
        assert held["state"] == "leased" and held["holder"]["pid"] == proc.pid  # type: ignore[index]
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=SLOW)
        assert proc.returncode == 2 and said in err, (sig, out, err)
        # given back at once, a Redis lease too (not after its TTL)
        assert listing(store, lease_lab, "-p", "relay")["relay-1"]["state"] == "free"


def test_console_holds_the_lease_while_you_sit_at_the_host(tmp_path: Path, lease_lab: Path) -> None:
    store = f"file://{tmp_path}/leases"
    env = env_for(lease_lab, OTTO_LEASES=store, TERM="xterm")
    argv = otto_argv()
    child = pexpect.spawn(argv[0], [*argv[1:], "console", "relay"], env=env, timeout=SLOW)
    child.expect(r"\[otto: connected to ")
    child.expect(r"[$#] ")
    held = listing(store, lease_lab, "-p", "relay")["relay-1"]
    assert held["holder"]["pid"] == child.pid  # type: ignore[index]
    child.send("\x1dq")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert listing(store, lease_lab, "-p", "relay")["relay-1"]["state"] == "free"


# -- the store itself ---------------------------------------------------------------------------


def test_a_lease_store_that_cannot_be_reached_is_named_and_nothing_is_touched(
    lease_lab: Path, tmp_path: Path
) -> None:
    store = f"redis://127.0.0.1:{closed_port()}/0"
    flag = tmp_path / "ran"
    result = otto_with(store, lease_lab, "run", "-p", "relay", "--", f"touch {flag}")
    assert result.returncode == 4, result.stdout + result.stderr
    assert (
        f"cannot reach the lease store {store}" in result.stderr and "no device was touched" in result.stderr
    )
    assert not flag.exists()
    result = otto_with(store, lease_lab, "lease", "list")
    assert result.returncode == 4 and store in result.stderr
    result = otto_with(store, lease_lab, "check", "-p", "^me$")
    assert result.returncode == 1 and "cannot read the leases" in result.stderr
    assert result.stdout.splitlines()[-1] == "1 host: all ok; not ok: the lease store could not be read"


def test_the_lease_store_password_is_masked(lease_lab: Path, tmp_path: Path) -> None:
    secret = "redis-s3cret-pw"
    server = RedisServer(password=secret).start()
    try:
        lab = tmp_path / "lab.toml"
        lab.write_text(
            lease_lab.read_text().replace(
                "lease_ttl = 10",
                f'lease_ttl = 10\nleases = {{ url = "{server.url}", '
                'password = { env = "OTTO_CLI_REDIS_PW" } }',
            )
        )
        env = env_for(lab, OTTO_CLI_REDIS_PW=secret)
        run = [*otto_argv(), "run", "-p", "relay", "--", f"echo {secret}"]
        result = subprocess.run(run, capture_output=True, text=True, env=env, timeout=SLOW, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "********" in result.stdout and secret not in result.stdout + result.stderr
        listed = [*otto_argv(), "--json", "lease", "list"]
        result = subprocess.run(listed, capture_output=True, text=True, env=env, timeout=SLOW, check=False)
        assert result.returncode == 0 and json.loads(result.stdout)["store"] == server.url
    finally:
        server.remove()


def test_with_leases_off_nothing_is_leased_or_listed(
    file_store: str, lease_lab: Path, hold: Callable[..., subprocess.Popen[str]]
) -> None:
    hold(file_store, lease_lab, "relay")  # held in the lock directory a bench of one's own ignores
    result = otto_with("off", lease_lab, "run", "-p", "relay", "--lease-wait", "0", "--", "echo mine")
    assert result.returncode == 0 and "mine" in result.stdout, result.stdout + result.stderr
    assert "otto leases" not in result.stderr
    result = otto_with("off", lease_lab, "lease", "list")
    assert result.returncode == 0
    assert result.stdout.strip() == "leases are off for lab 'cli-bench' ($OTTO_LEASES=off): nothing is leased"
    result = otto_with("off", lease_lab, "lease", "break", "--yes", "relay")
    assert result.returncode == 4 and "leases are off for lab 'cli-bench'" in result.stderr
    assert listing(file_store, lease_lab, "-p", "relay")["relay-1"]["state"] == "leased"
