"""Shared by the lease tests: lab files of leased local hosts, contending processes, stamps.

The hosts are ``transport = "local"`` hosts with ``lease = "devN"``: each names a
device (as a USB relay driven by local tools would), so contention is real (real
flock, a real redis-server) and a test needs no SSH round trip per run.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path

from testlab import RedisServer

REPO = Path(__file__).resolve().parent.parent

#: A script that leases some hosts of a lab, stamps the interval it held them and
#: runs a command on each (argv: lab, stamps file, hold: seconds or a file to wait for, host ids...).
ACQUIRER = textwrap.dedent(
    """
    import os, sys, time
    import pytest_otto
    lab_path, stamps, hold, *ids = sys.argv[1:]
    lab = pytest_otto.load_lab(lab_path)
    with lab.lease(ids, wait=300) as leases:
        start = time.monotonic()
        for host_id in ids:
            assert lab[host_id].run_sync("true").ok
        print("holding", flush=True)  # the commands ran: nothing of ours is starting any more
        if hold.replace(".", "").isdigit():
            time.sleep(float(hold))
        else:  # a file: hold until it exists
            while not os.path.exists(hold):
                time.sleep(0.05)
        end = time.monotonic()
        with open(stamps, "a") as f:
            for host_id in ids:
                f.write(f"{host_id} {start!r} {end!r}\\n")
    lab.close_sync()
    """
)


_databases = itertools.count(1)


def fresh_redis_url(server: RedisServer) -> str:
    """A database of ``server`` of its own for one test, emptied: a run another test left
    behind (still renewing its leases) cannot hold this test's devices."""
    import redis

    url = f"redis://{server.address}:{server.port}/{next(_databases) % 16}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


def write_lab(path: Path, store: str, devices: Iterable[str], *, extra: str = "") -> Path:
    """A lab file with one local host per device (host ``hN`` leased as ``devN``)."""
    lines = [
        "[lab]",
        'name = "leased"',
        f"leases = {store!r}" if not store.startswith("{") else f"leases = {store}",
    ]
    lines.append(extra)
    for device in devices:
        lines += [f"[hosts.{device.replace('dev', 'h')}]", 'transport = "local"', f'lease = "{device}"']
    path.write_text("\n".join(lines) + "\n")
    return path


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child process: this checkout importable, no lease store override."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTTO_", "PYTEST_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def start_acquirer(
    tmp: Path, lab: Path, stamps: Path, hold: float | Path, ids: Sequence[str]
) -> subprocess.Popen[str]:
    """One process that leases ``ids``, holds them ``hold`` seconds (or until file ``hold``
    exists) and stamps that."""
    script = tmp / "acquirer.py"
    if not script.exists():
        script.write_text(ACQUIRER)
    argv = [sys.executable, str(script), str(lab), str(stamps), str(hold), *ids]
    return subprocess.Popen(
        argv, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def intervals(stamps: Path) -> dict[str, list[tuple[float, float]]]:
    """``{host or device: [(start, end), ...]}`` sorted, from a stamps file."""
    found: dict[str, list[tuple[float, float]]] = {}
    for line in stamps.read_text().splitlines():
        name, start, end = line.split()
        found.setdefault(name, []).append((float(start), float(end)))
    return {name: sorted(spans) for name, spans in found.items()}


def overlaps(spans: dict[str, list[tuple[float, float]]]) -> list[str]:
    """Every pair of intervals on one name that overlap in time (empty: they took turns)."""
    bad = []
    for name, sorted_spans in spans.items():
        for (s1, e1), (s2, e2) in itertools.pairwise(sorted_spans):
            if s2 < e1:
                bad.append(f"{name}: [{s1:.3f}, {e1:.3f}] overlaps [{s2:.3f}, {e2:.3f}]")
    return bad


#: Tests for the contending pytest runs: each stamps the interval it used its host.
STAMPING_TESTS = textwrap.dedent(
    """
    import os, time

    STAMPS = os.environ["STAMPS"]

    def test_use(host):
        start = time.monotonic()
        assert host.run_sync("true").ok
        time.sleep(float(os.environ.get("HOLD", "0.3")))
        assert host.run_sync("true").ok
        with open(STAMPS, "a") as f:
            f.write(f"{host.id} {start!r} {time.monotonic()!r}\\n")
    """
)


def start_pytest(
    folder: Path, lab: Path, *args: str, log: Path | None = None, **env: str
) -> subprocess.Popen[str]:
    """A real pytest process on ``folder``'s tests with ``lab`` (output on its stdout, or in ``log``)."""
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-W", "ignore", f"--lab={lab}", *args]
    out = log.open("w") if log is not None else subprocess.PIPE
    try:
        return subprocess.Popen(
            argv, cwd=folder, env=child_env(**env), stdout=out, stderr=subprocess.STDOUT, text=True
        )
    finally:
        if log is not None:
            out.close()  # type: ignore[union-attr]
