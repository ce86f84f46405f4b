"""Leases in real pytest runs contending for one lab (lock directory and a real redis-server).

Every run here is a real ``python -m pytest`` process; the devices are local hosts
with ``lease = "devN"`` (see `tests.lease_helpers`), and the checks read what the
runs wrote: stamps of when each test used its host, the output, the store itself.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import pytest_otto
from testlab import RedisServer
from testlab._util import free_port
from tests.lease_helpers import (
    STAMPING_TESTS,
    fresh_redis_url,
    intervals,
    overlaps,
    start_acquirer,
    start_pytest,
    write_lab,
)

#: Generous bound for a child run on a loaded 2-core machine (not a timing assertion).
RUN_BOUND = 300


@pytest.fixture(params=["file", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "file":
        return f"file://{tmp_path / 'locks'}"
    server: RedisServer = request.getfixturevalue("redis_server")
    if not server.running:
        server.start()
    return fresh_redis_url(server)


@pytest.fixture
def bench(tmp_path: Path, store: str) -> Path:
    """A folder with a lab of three leased devices and the stamping tests."""
    write_lab(tmp_path / "lab.toml", store, ["dev1", "dev2", "dev3"], extra="lease_ttl = 3")
    (tmp_path / "test_bench.py").write_text(STAMPING_TESTS)
    return tmp_path


def finish(proc: subprocess.Popen[str]) -> str:
    """The output of a run that ends (killed if it outlives the bound: no run is left behind)."""
    try:
        return proc.communicate(timeout=RUN_BOUND)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def wait_until(condition: object, what: str, proc: subprocess.Popen[str] | None = None) -> None:
    """Poll ``condition()`` (bounded generously: this is no timing assertion)."""
    deadline = time.monotonic() + RUN_BOUND
    while not condition():  # type: ignore[operator]
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the run ended before {what}:\n{proc.communicate()[0]}")
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


def test_two_runs_on_overlapping_hosts_never_overlap_in_time(bench: Path) -> None:
    lab, stamps = bench / "lab.toml", bench / "stamps"
    runs = [
        start_pytest(bench, lab, "--host-pattern=h[12]", STAMPS=str(stamps), HOLD="0.5"),
        start_pytest(bench, lab, "--host-pattern=h[23]", STAMPS=str(stamps), HOLD="0.5"),
    ]
    outputs = [finish(run) for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output
    spans = intervals(stamps)
    assert {name: len(s) for name, s in spans.items()} == {"h1": 1, "h2": 2, "h3": 1}
    assert overlaps(spans) == []


def test_a_waiting_run_says_who_holds_what_then_gets_it(bench: Path) -> None:
    lab = bench / "lab.toml"
    done = bench / "done"
    holder = start_acquirer(bench, lab, bench / "held", done, ["h1"])
    wait_until(lambda: pytest_otto.load_lab(lab).leases_sync(), "the holder has dev1", holder)
    log = bench / "run.log"
    run = start_pytest(bench, lab, "--host-pattern=h1", STAMPS=str(bench / "stamps"), log=log)
    wait_until(lambda: "otto leases: waiting" in log.read_text(), "the run waits", run)
    done.touch()
    run.wait(timeout=RUN_BOUND)
    output = log.read_text()
    assert run.returncode == 0, output
    assert re.search(
        rf"otto leases: waiting up to \d+s for dev1 \(host h1\), held by \S+@\S+ pid {holder.pid} since",
        output,
    )
    assert re.search(r"otto leases: got dev1 \(host h1\) after \d+\.\ds", output), output
    finish(holder)
    (held,) = intervals(bench / "held")["h1"]
    (used,) = intervals(bench / "stamps")["h1"]
    assert used[0] >= held[1]


def run_while_held(bench: Path, host_id: str, *args: str) -> tuple[int, subprocess.Popen[str], str]:
    """A pytest run on ``bench`` while another process holds ``host_id``'s device:
    ``(the holder's pid, the run, its output)``."""
    lab = bench / "lab.toml"
    holder = start_acquirer(bench, lab, bench / "held", 600, [host_id])
    try:
        wait_until(lambda: pytest_otto.load_lab(lab).leases_sync(), f"the holder has {host_id}", holder)
        run = start_pytest(bench, lab, *args, STAMPS=str(bench / "stamps"))
        return holder.pid, run, finish(run)
    finally:
        holder.kill()
        holder.wait()


def test_a_device_not_obtained_in_time_errors_only_its_hosts_tests(bench: Path) -> None:
    holder_pid, run, output = run_while_held(bench, "h2", "--lease-wait=0.5", "-rA")
    assert run.returncode == 1, output
    assert "PASSED test_bench.py::test_use[h1]" in output and "PASSED test_bench.py::test_use[h3]" in output
    assert re.search(
        rf"ERROR at setup of test_use\[h2\].*\n.*host 'h2' is leased by another run: "
        rf"device 'dev2' is leased by \S+ pid {holder_pid} since",
        output,
    ), output
    assert set(intervals(bench / "stamps")) == {"h1", "h3"}


def test_lease_any_takes_free_devices_and_the_node_ids_say_which(bench: Path) -> None:
    _, run, output = run_while_held(bench, "h1", "--lease-any=2", "-v")
    assert run.returncode == 0, output
    assert "otto leases: any 2 of h1, h2, h3: obtained h2, h3" in output
    assert "test_use[h2] PASSED" in output and "test_use[h3] PASSED" in output and "[h1]" not in output


def test_under_xdist_the_controller_holds_the_leases_once(bench: Path) -> None:
    (bench / "test_bench.py").write_text(
        "import os\n\n"
        "def test_holder(host, lab):\n"
        "    holders = {info.device: info.holder.pid for info in lab.leases_sync()}\n"
        "    with open(os.environ['STAMPS'], 'a') as f:\n"
        "        f.write(f'{host.id} {os.getpid()} {holders}\\n')\n"
    )
    stamps = bench / "stamps"
    run = start_pytest(bench, bench / "lab.toml", "-n", "2", STAMPS=str(stamps))
    output = finish(run)
    assert run.returncode == 0, output
    lines = stamps.read_text().splitlines()
    assert len(lines) == 3
    for line in lines:
        _host_id, worker_pid, holders = line.split(" ", 2)
        assert int(worker_pid) != run.pid
        assert holders == str({"dev1": run.pid, "dev2": run.pid, "dev3": run.pid})


def test_a_lost_lease_fails_the_running_test_and_nothing_more_is_sent(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """SIGSTOP of a holder past its TTL; another run takes the device; SIGCONT: the holder stops."""
    if not redis_server.running:
        redis_server.start()
    lab = write_lab(tmp_path / "lab.toml", fresh_redis_url(redis_server), ["dev1"], extra="lease_ttl = 2")
    sent = tmp_path / "sent"
    (tmp_path / "test_loop.py").write_text(
        "import time\n\n"
        "def test_keeps_sending(host):\n"
        "    for i in range(100000):\n"
        f"        host.run_sync('echo ' + str(i) + ' >> {sent}')\n"
        "        time.sleep(0.05)\n\n"
        "def test_later(host):\n"
        f"    host.run_sync('echo later >> {sent}')\n"
    )
    run = start_pytest(tmp_path, lab, "-p", "no:randomly")
    other = pytest_otto.load_lab(lab)
    try:
        wait_until(lambda: sent.exists() and len(sent.read_text().splitlines()) >= 3, "the run sends", run)
        run.send_signal(signal.SIGSTOP)
        wait_until(lambda: not other.leases_sync(), "the frozen run's lease expired")
        with other.lease(["h1"], wait=0):
            before = sent.read_text()
            run.send_signal(signal.SIGCONT)
            output = finish(run)
            assert sent.read_text() == before  # nothing more reached the device
    finally:
        run.send_signal(signal.SIGCONT)
        run.kill()
        run.wait()
    assert run.returncode == 1, output
    assert re.search(rf"lease on host h1 lost \(now held by \S+ pid {os.getpid()} since", output), output
    assert "1 failed, 1 error" in output, output  # the running test fails, the later one errors


def test_a_restarted_redis_does_not_let_a_second_run_in(tmp_path: Path, redis_server: RedisServer) -> None:
    if not redis_server.running:
        redis_server.start()
    lab = write_lab(tmp_path / "lab.toml", fresh_redis_url(redis_server), ["dev1"], extra="lease_ttl = 3")
    go, stamps = tmp_path / "go", tmp_path / "stamps"
    (tmp_path / "test_bench.py").write_text(
        STAMPING_TESTS.replace(
            'time.sleep(float(os.environ.get("HOLD", "0.3")))',
            f"while not os.path.exists({str(go)!r}): time.sleep(0.05)",
        )
    )
    observer = pytest_otto.load_lab(lab)
    first = start_pytest(tmp_path, lab, STAMPS=str(stamps))
    wait_until(lambda: observer.leases_sync(), "the first run holds dev1", first)
    redis_server.restart()
    wait_until(lambda: observer.leases_sync(), "the first run took dev1 again", first)
    assert [info.holder.pid for info in observer.leases_sync()] == [first.pid]
    log = tmp_path / "second.log"
    second = start_pytest(tmp_path, lab, STAMPS=str(stamps), log=log)
    wait_until(lambda: "waiting up to" in log.read_text(), "the second run waits", second)
    go.touch()
    second.wait(timeout=RUN_BOUND)
    outputs = [finish(first), log.read_text()]
    assert (first.returncode, second.returncode) == (0, 0), outputs
    assert overlaps(intervals(stamps)) == [] and len(intervals(stamps)["h1"]) == 2


def test_an_unreachable_redis_is_a_clear_error_and_no_device_is_touched(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    lab = write_lab(tmp_path / "lab.toml", url, ["dev1"])
    touched = tmp_path / "touched"
    (tmp_path / "test_touch.py").write_text(f"def test_touch(host):\n    host.run_sync('touch {touched}')\n")
    run = start_pytest(tmp_path, lab)
    output = finish(run)
    assert run.returncode == 4, output
    assert f"cannot reach the lease store {url}" in output and "no device was touched" in output
    assert not touched.exists()


def test_an_ssh_host_is_leased_as_its_endpoint(
    ssh_lab_toml: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTTO_LEASES", f"file://{tmp_path / 'locks'}")
    lab = pytest_otto.load_lab(ssh_lab_toml)
    ssh1 = lab["ssh1"]
    try:
        with lab.lease(["ssh1"]):
            (info,) = lab.leases_sync()
            assert info.device == f"{ssh1.address}:{ssh1.port}"  # type: ignore[attr-defined]
            assert ssh1.run_sync("echo leased").only.output == "leased"
    finally:
        lab.close_sync()


@pytest.fixture(autouse=True)
def _no_store_override(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("OTTO_LEASES", raising=False)
    yield


def test_ctrl_c_gives_the_leases_back(bench: Path) -> None:
    """SIGINT (Ctrl-C) in the middle of a test: the run ends and its devices are free."""
    lab, go = bench / "lab.toml", bench / "go"
    (bench / "test_bench.py").write_text(
        f"import os, time\n\ndef test_wait(host):\n    open({str(go)!r}, 'w').close()\n    time.sleep(600)\n"
    )
    run = start_pytest(bench, lab, "--host-pattern=h1")
    wait_until(go.exists, "the test runs", run)
    observer = pytest_otto.load_lab(lab)
    assert [info.holder.pid for info in observer.leases_sync()] == [run.pid]
    run.send_signal(signal.SIGINT)
    output = finish(run)
    assert run.returncode == 2, output  # interrupted
    assert observer.leases_sync() == []
    with observer.lease(["h1"], wait=0) as leases:
        assert leases.obtained == ["h1"]
