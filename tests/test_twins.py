"""Blocking twins: every public coroutine has a ``<name>_sync`` with the same signature.

The Lab's fan-out twins are shown on real local shells and real sshd servers.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import pytest_otto
from pytest_otto import Host, Lab, LocalHost, RunResult, load_lab
from pytest_otto.lab import set_active_lab

#: Bound on waiting for what must happen; never a measure of speed.
PATIENCE = 120.0


def public_coroutines() -> Iterator[tuple[str, Callable[..., Any], Callable[..., Any] | None]]:
    """``(qualified name, coroutine function, its twin or None)`` for everything pytest-otto exports."""
    for name in pytest_otto.__all__:
        obj = getattr(pytest_otto, name)
        if inspect.isclass(obj):
            for attr, member in inspect.getmembers(obj, inspect.iscoroutinefunction):
                if not attr.startswith("_"):
                    yield f"{name}.{attr}", member, getattr(obj, f"{attr}_sync", None)
        elif inspect.iscoroutinefunction(obj):
            yield name, obj, getattr(pytest_otto, f"{name}_sync", None)


def test_every_public_coroutine_has_a_twin_with_the_same_signature() -> None:
    seen = list(public_coroutines())
    names = {n for n, _, _ in seen}
    assert {"Host.run", "Lab.run_on_all_hosts", "run_on_all_hosts", "RemoteHost.put"} <= names
    missing = [name for name, _, twin in seen if twin is None]
    assert not missing, f"no blocking twin: {missing}"
    for name, coro, twin in seen:
        assert twin is not None and not inspect.iscoroutinefunction(twin), name
        theirs, ours = inspect.signature(coro), inspect.signature(twin)
        assert ours.parameters == theirs.parameters, f"{name}_sync{ours} differs from {name}{theirs}"
        assert ours.return_annotation == theirs.return_annotation, name


@pytest.fixture
def local_lab() -> Iterator[Lab]:
    lab = Lab([LocalHost(f"loc{i}") for i in range(4)], name="locals")
    try:
        yield lab
    finally:
        lab.close_sync()


def test_lab_twins_on_real_local_shells(local_lab: Lab) -> None:
    assert local_lab.connect_all_sync() == {f"loc{i}": None for i in range(4)}
    assert all(h.default_session.is_open for h in local_lab)
    results = local_lab.run_on_all_hosts_sync(["cd /tmp", "pwd", "false"], pattern="loc[12]")
    assert list(results) == ["loc1", "loc2"]
    for result in results.values():
        assert isinstance(result, RunResult) and [s.output for s in result] == ["", "/tmp", ""]
        assert not result and result.statuses[2].retcode == 1


def test_a_plain_function_runs_for_every_host_at_once_and_may_block(local_lab: Lab) -> None:
    """``do_for_all_hosts_sync`` with a plain function: each host's call runs in its own thread,
    so it may use blocking twins, and all four run at the same time (each waits at a barrier
    that only opens when all four are there: a one-at-a-time run would break it)."""
    barrier = threading.Barrier(4, timeout=PATIENCE)

    def work(host: Host, word: str) -> str:
        barrier.wait()
        return host.run_sync(f"echo {word}-$((1 + 1))").only.output

    results = local_lab.do_for_all_hosts_sync(work, "two")
    assert results == {f"loc{i}": "two-2" for i in range(4)}
    order: list[str] = []
    one_at_a_time = local_lab.do_for_all_hosts_sync(lambda h: order.append(h.id), concurrent=False)
    assert one_at_a_time == dict.fromkeys(local_lab.ids) and order == local_lab.ids


def test_one_host_exception_is_its_result_in_the_twin(local_lab: Lab) -> None:
    def work(host: Host) -> str:
        if host.id == "loc1":
            raise RuntimeError(f"{host.id} refuses")
        return host.oneshot_sync("echo fine").output

    results = local_lab.do_for_all_hosts_sync(work)
    assert isinstance(results["loc1"], RuntimeError) and "loc1 refuses" in str(results["loc1"])
    assert [results[h] for h in ("loc0", "loc2", "loc3")] == ["fine"] * 3
    # coroutine functions and unbound host methods run as in the async helper
    assert local_lab.do_for_all_hosts_sync(Host.oneshot, "echo m", pattern="loc3")["loc3"].output == "m"


def test_module_twins_act_on_the_active_lab(local_lab: Lab) -> None:
    set_active_lab(local_lab)
    try:
        results = pytest_otto.run_on_all_hosts_sync("echo $((6 * 7))", pattern="loc0")
        assert {k: v.only.output for k, v in results.items()} == {"loc0": "42"}
        outputs = pytest_otto.do_for_all_hosts_sync(LocalHost.run_sync, "echo sync", pattern="loc[23]")
        assert {k: v.only.output for k, v in outputs.items()} == {"loc2": "sync", "loc3": "sync"}
    finally:
        set_active_lab(None)


def test_lab_twins_over_real_sshd(ssh_lab: Any, tmp_path: Path) -> None:
    lab = load_lab(ssh_lab.write_lab_toml(tmp_path / "lab.toml"))
    try:
        assert lab.connect_all_sync(pattern="ssh[12]") == {"ssh1": None, "ssh2": None}
        results = lab.run_on_all_hosts_sync(["cd /tmp", "pwd"])
        assert {k: v.statuses[1].output for k, v in results.items()} == dict.fromkeys(lab.ids, "/tmp")
        users = lab.do_for_all_hosts_sync(lambda host: host.run_sync("id -un").only.output, pattern="ssh3")
        assert users == {"ssh3": "root"}
    finally:
        lab.close_sync()
