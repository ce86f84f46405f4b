"""Device leases in the library: keys, stores (a lock directory, a real redis-server), contention.

Every store behaviour runs against both stores: ``flock`` files in a temp directory
and a real ``redis-server`` the suite starts on loopback (`testlab.RedisServer`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import pytest_otto
from pytest_otto.config import parse_lab
from pytest_otto.leases import (
    Holder,
    LeaseError,
    LeaseLost,
    LeaseStoreError,
    ci_job_url,
    device_of,
    lease_settings,
)
from pytest_otto.leases.holder import this_holder
from testlab import RedisServer
from tests.lease_helpers import child_env, fresh_redis_url, intervals, overlaps, start_acquirer, write_lab

# -- keys and settings (plain data) -------------------------------------------------


def test_device_is_the_endpoint_by_default_and_a_name_is_shared(tmp_path: Path) -> None:
    tty = tmp_path / "ttyUSB0"
    tty.touch()
    (tmp_path / "by-id").symlink_to(tty)
    config = parse_lab(
        f"""
        [hosts.r1]
        address = "10.0.0.1"
        [hosts.r1-console]
        transport = "telnet"
        address = "cs1"
        port = 7001
        lease = "board-17"
        [hosts.r1-ssh]
        address = "10.0.0.17"
        lease = "board-17"
        [hosts.serial]
        transport = "serial"
        device = "{tmp_path / "by-id"}"
        [hosts.jump]
        address = "jump"
        lease = false
        [hosts.me]
        transport = "local"
        """
    )
    devices = {cfg.id: device_of(cfg) for cfg in config.hosts}
    assert devices == {
        "r1": "10.0.0.1:22",
        "r1-console": "board-17",
        "r1-ssh": "board-17",
        "serial": str(tty),  # the real path: two names of one tty are one device
        "jump": None,
        "me": None,
    }


def test_lab_keys_are_checked_at_load_time_naming_the_key() -> None:
    with pytest.raises(pytest_otto.LabError, match="key 'lease': expected a device name or false"):
        parse_lab('[hosts.a]\naddress = "x"\nlease = 3\n')
    for table, key in (
        ("leases = 5", "leases"),
        ("lease_ttl = -1", "lease_ttl"),
        ("lease_wait = 'x'", "lease_wait"),
    ):
        with pytest.raises(pytest_otto.LabError, match=f"key '{key}'"):
            lease_settings(parse_lab(f"[lab]\n{table}\n"), env={})
    with pytest.raises(pytest_otto.LabError, match="never the password itself"):
        lease_settings(parse_lab('[lab]\nleases = { url = "redis://r", password = "hunter2" }\n'), env={})


def test_settings_defaults_and_the_environment_override() -> None:
    config = parse_lab(
        '[lab]\nleases = { url = "redis://r:6379/0", password = { env = "PW" } }\nlease_ttl = 9\n'
    )
    settings = lease_settings(config, env={})
    assert (
        settings.store,
        settings.password.env if settings.password else None,
        settings.ttl,
        settings.wait,
    ) == (
        "redis://r:6379/0",
        "PW",
        9.0,
        600.0,
    )
    assert lease_settings(parse_lab(""), env={}).store == "file"
    assert lease_settings(config, env={"OTTO_LEASES": "off"}).off


def test_holder_names_the_ci_job_from_the_environment() -> None:
    assert ci_job_url({"CI_JOB_URL": "https://gitlab/x/-/jobs/7"}) == "https://gitlab/x/-/jobs/7"
    github = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "o/r", "GITHUB_RUN_ID": "42"}
    assert ci_job_url(github) == "https://github.com/o/r/actions/runs/42"
    assert ci_job_url({"BUILD_URL": "https://jenkins/job/9/"}) == "https://jenkins/job/9/"
    assert ci_job_url({}) is None
    holder = this_holder()
    assert Holder.from_json(holder.to_json()) == holder
    text = holder.describe()
    assert f"pid {os.getpid()}" in text and "since" in text and holder.machine in text


# -- against the stores ----------------------------------------------------------------


@pytest.fixture(params=["file", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A lease store URL: a lock directory of this test, or the suite's real redis-server (flushed)."""
    if request.param == "file":
        yield f"file://{tmp_path / 'locks'}"
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    if not server.running:
        server.start()
    yield fresh_redis_url(server)


@pytest.fixture
def lab(tmp_path: Path, store: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest_otto.Lab]:
    monkeypatch.delenv("OTTO_LEASES", raising=False)
    path = write_lab(tmp_path / "lab.toml", store, ["dev1", "dev2", "dev3"], extra="lease_ttl = 3")
    lab = pytest_otto.load_lab(path)
    yield lab
    lab.close_sync()


def test_a_lease_is_listed_with_its_holder_and_released_at_the_end(lab: pytest_otto.Lab) -> None:
    with lab.lease(["h1", "h2"]) as leases:
        assert leases.obtained == ["h1", "h2"]
        listed = lab.leases_sync()
        assert [info.device for info in listed] == ["dev1", "dev2"]
        assert {info.holder.pid for info in listed} == {os.getpid()}
        assert lab["h1"].run_sync("echo ok").only.output == "ok"
    assert lab.leases_sync() == []


async def test_async_lease_and_a_busy_device_names_host_device_and_holder(
    lab: pytest_otto.Lab, tmp_path: Path
) -> None:
    holder = start_acquirer(tmp_path, lab.path, tmp_path / "stamps", 60, ["h2"])  # type: ignore[arg-type]
    try:
        while not any(info.device == "dev2" for info in await lab.leases()):
            assert holder.poll() is None, holder.communicate()[0]
            time.sleep(0.05)
        with pytest.raises(LeaseError) as caught:
            async with lab.lease(["h1", "h2"], wait=0.3):
                pytest.fail("got a device another process holds")
        error = caught.value
        assert (error.host_id, error.device, error.holder and error.holder.pid) == ("h2", "dev2", holder.pid)
        assert str(error).startswith("h2: device 'dev2' is leased by ")
        assert f"pid {holder.pid} since" in str(error)
        # all or nothing: the device it did get is free again
        assert [info.device for info in await lab.leases()] == ["dev2"]
    finally:
        holder.kill()
        holder.wait()


def test_a_broken_lease_is_lost_and_nothing_more_is_sent(lab: pytest_otto.Lab, tmp_path: Path) -> None:
    marker = tmp_path / "sent"
    with lab.lease(["h1"]) as leases:
        lab["h1"].run_sync(f"echo 1 >> {marker}")
        holder = lab.break_lease_sync("dev1")
        assert holder is not None and holder.pid == os.getpid()
        deadline = time.monotonic() + 60
        while leases.error("h1") is None:
            assert time.monotonic() < deadline, "the break was never noticed"
            time.sleep(0.05)
        with pytest.raises(LeaseLost, match=r"h1: lease on host h1 lost \(broken on purpose"):
            lab["h1"].run_sync(f"echo 2 >> {marker}")
        with pytest.raises(LeaseLost):
            lab["h1"].oneshot_sync(f"echo 3 >> {marker}")
    assert marker.read_text() == "1\n"


def test_nested_leases_of_one_process_share_the_device(lab: pytest_otto.Lab) -> None:
    with lab.lease(["h1", "h2"]), lab.lease(["h2"], wait=0) as inner:
        assert inner.obtained == ["h2"]
    assert lab.leases_sync() == []


def test_twenty_concurrent_acquirers_on_five_devices_take_turns(tmp_path: Path, store: str) -> None:
    devices = [f"dev{i}" for i in range(1, 6)]
    lab = write_lab(tmp_path / "lab.toml", store, devices)
    stamps = tmp_path / "stamps"
    procs = []
    for n in range(20):
        ids = [f"h{1 + n % 5}", f"h{1 + (n * 2 + 1) % 5}"]  # two devices each, overlapping sets
        procs.append(start_acquirer(tmp_path, lab, stamps, 0.05, sorted(set(ids))))
    for proc in procs:
        output = proc.communicate(timeout=300)[0]
        assert proc.returncode == 0, output
    spans = intervals(stamps)
    assert sum(len(s) for s in spans.values()) == sum(
        len(set([1 + n % 5, 1 + (n * 2 + 1) % 5])) for n in range(20)
    )
    assert overlaps(spans) == []


def test_a_killed_holder_frees_its_device(tmp_path: Path, store: str) -> None:
    """kill -9: a flock ends with its process at once; a Redis key within its TTL."""
    lab_path = write_lab(tmp_path / "lab.toml", store, ["dev1"], extra="lease_ttl = 2")
    lab = pytest_otto.load_lab(lab_path)
    holder = start_acquirer(tmp_path, lab_path, tmp_path / "stamps", 600, ["h1"])
    try:
        # not while it starts its shell: a child between fork and exec shares the lock for a moment
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    if store.startswith("file"):
        with lab.lease(["h1"], wait=0) as leases:  # at once: no waiting allowed
            assert leases.obtained == ["h1"]
    else:
        assert [info.holder.pid for info in lab.leases_sync()] == [holder.pid]  # until the TTL runs out
        with lab.lease(["h1"], wait=60) as leases:
            assert leases.obtained == ["h1"]
    lab.close_sync()


# -- Redis only ---------------------------------------------------------------------------


def test_an_unreachable_redis_is_named_at_once_and_no_host_is_touched(tmp_path: Path) -> None:
    from testlab._util import free_port

    url = f"redis://127.0.0.1:{free_port()}/0"
    lab = pytest_otto.load_lab(write_lab(tmp_path / "lab.toml", url, ["dev1"]))
    with pytest.raises(LeaseStoreError, match=f"cannot reach the lease store {url}"), lab.lease(["h1"]):
        pytest.fail("leased without a store")
    assert not lab["h1"].default_session.is_open


def test_a_redis_password_comes_from_the_environment_and_is_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "lease-Secret-99"
    with RedisServer(password=secret) as server:
        store = f'{{ url = "{server.url}", password = {{ env = "OTTO_TEST_REDIS_PW" }} }}'
        lab = pytest_otto.load_lab(write_lab(tmp_path / "lab.toml", store, ["dev1"]))
        monkeypatch.setenv("OTTO_TEST_REDIS_PW", secret)
        with lab.lease(["h1"]) as leases:
            assert leases.obtained == ["h1"] and secret not in repr(leases)
        monkeypatch.setenv("OTTO_TEST_REDIS_PW", "wrong")
        with pytest.raises(LeaseStoreError) as caught:
            lab.leases_sync()
        assert server.url in str(caught.value) and secret not in str(caught.value)


def test_a_restarted_redis_forgets_nothing_a_holder_still_holds(
    tmp_path: Path,
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv("OTTO_LEASES", raising=False)
    lab = pytest_otto.load_lab(
        write_lab(tmp_path / "lab.toml", fresh_redis_url(redis_server), ["dev1"], extra="lease_ttl = 3")
    )
    with lab.lease(["h1"]) as leases:
        redis_server.restart()  # the store forgets it...
        deadline = time.monotonic() + 60
        while "dev1 was gone from" not in caplog.text:  # ...and the renewal takes it again
            assert time.monotonic() < deadline, caplog.text
            time.sleep(0.1)
        assert leases.error("h1") is None
        assert [info.holder.pid for info in lab.leases_sync()] == [os.getpid()]
        assert lab["h1"].run_sync("echo still mine").only.output == "still mine"
    lab.close_sync()


def test_without_redis_py_the_error_names_the_extra(tmp_path: Path) -> None:
    lab_path = write_lab(tmp_path / "lab.toml", "redis://127.0.0.1:1/0", ["dev1"])
    script = (
        "import sys; sys.modules['redis'] = None\n"
        "import pytest_otto\n"
        f"lab = pytest_otto.load_lab({str(lab_path)!r})\n"
        "try:\n    lab.leases_sync()\nexcept Exception as e:\n    print(type(e).__name__, e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], env=child_env(), capture_output=True, text=True, timeout=60
    )
    assert "LeaseStoreError" in out.stdout and "pip install 'pytest-otto[redis]'" in out.stdout, out


def test_a_forked_child_does_not_keep_the_lease_after_its_parent(tmp_path: Path) -> None:
    """A child made by os.fork (multiprocessing) drops its copy of the lock file."""
    lab = pytest_otto.load_lab(write_lab(tmp_path / "lab.toml", f"file://{tmp_path / 'locks'}", ["dev1"]))
    with lab.lease(["h1"]):
        child = os.fork()
        if child == 0:  # pragma: no cover - the child
            time.sleep(600)
            os._exit(0)
    try:
        with lab.lease(["h1"], wait=0) as again:  # released by the parent; the child holds nothing
            assert again.obtained == ["h1"]
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
