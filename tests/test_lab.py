"""The Lab (lookup, selection, dump, active lab) and the fan-out helpers (B24-B26).

Edge cases use small fake hosts whose timing the test controls; the same semantics
are then shown on real `LocalHost`s running real commands, and on real sshd
servers (testlab) when the SSH host is available.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_behaviour import PATIENCE, barrier_command

import pytest_otto.lab as lab_module
from pytest_otto import Host, LocalHost, RunResult, Status, registry
from pytest_otto.config import HostConfig, LabError, LocalConfig, load_lab_config, parse_lab
from pytest_otto.fanout import host_method_name
from pytest_otto.lab import (
    Lab,
    all_hosts,
    build_host,
    default_lab,
    do_for_all_hosts,
    get_active_lab,
    get_host,
    load_lab,
    register_transport,
    run_on_all_hosts,
    set_active_lab,
)

ROOT = Path(__file__).resolve().parent.parent


class Fake:
    """A host stand-in: ``work(delay, fail)`` records start/end and overlap."""

    def __init__(self, host_id: str, tags: tuple[str, ...] = (), probe: Probe | None = None) -> None:
        self.id = host_id
        self.tags = tags
        self.probe = probe or Probe()
        self.connected = False
        self.closed = False
        self.cancelled = False

    async def connect(self) -> None:
        await self.probe.enter(self.id, 0.1)
        if "bad" in self.id:
            raise ConnectionError(f"{self.id}: refused")
        self.connected = True

    async def close(self) -> None:
        self.closed = True

    async def run(self, cmds: Any, timeout: float | None = None) -> Any:
        return ("ran", self.id, cmds, timeout)


class Probe:
    """Counts how many calls are in flight at once and in which order they start."""

    def __init__(self) -> None:
        self.active = 0
        self.peak = 0
        self.started: list[str] = []
        self.finished: list[str] = []

    async def enter(self, host_id: str, delay: float) -> None:
        self.started.append(host_id)
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await asyncio.sleep(delay)
        finally:
            self.active -= 1
        self.finished.append(host_id)


def fake_lab(n: int = 4, **kwargs: Any) -> tuple[Lab, Probe]:
    probe = Probe()
    hosts = [Fake(f"h{i}", probe=probe, **kwargs) for i in range(n)]
    return Lab(hosts, name="fakes"), probe  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def clean_active_lab(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with no active lab and no cached $OTTO_LAB lab; the plugin's is restored after."""
    monkeypatch.delenv("OTTO_LAB", raising=False)
    monkeypatch.setattr(lab_module, "_env_lab", None)
    monkeypatch.setattr(lab_module, "_default", None)
    monkeypatch.setattr(lab_module, "_active", None)
    yield


@pytest.fixture
def fake_transports(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[HostConfig]]:
    """ssh/telnet/serial factories that build local stand-ins and record their configs."""
    built: dict[str, list[HostConfig]] = {"ssh": [], "telnet": [], "serial": []}
    factories = dict(lab_module._factories)
    monkeypatch.setattr(lab_module, "_factories", factories)

    def factory(cfg: HostConfig, lab: Lab) -> Host:
        hop = getattr(cfg, "hop", None)
        if hop is not None:
            assert hop in lab, "a hop is built before the hosts behind it"
        built[cfg.transport].append(cfg)
        return LocalHost(cfg.id, tags=cfg.tags, vars=cfg.vars)

    for name in built:
        register_transport(name, factory)
    return built


# -- Lab: lookup and selection ---------------------------------------------------------


def test_lab_order_lookup_and_len() -> None:
    lab, _ = fake_lab(3)
    assert [h.id for h in lab] == ["h0", "h1", "h2"]
    assert len(lab) == 3 and lab.ids == ["h0", "h1", "h2"]
    assert lab["h1"] is lab.get("h1") is lab.hosts[1]
    assert "h2" in lab and "zz" not in lab
    with pytest.raises(KeyError, match=r"no host 'zz' in lab 'fakes'; hosts: h0, h1, h2"):
        lab["zz"]
    assert "fakes" in repr(lab)


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="two hosts with id 'a'"):
        Lab([Fake("a"), Fake("a")])  # type: ignore[list-item]


def test_select_by_pattern_and_tags() -> None:
    hosts = [
        Fake("router1", ("router", "edge")),
        Fake("switch1", ("switch",)),
        Fake("router2", ("router",)),
        Fake("dut-router", ("dut", "edge")),
    ]
    lab = Lab(hosts)  # type: ignore[arg-type]
    ids = lambda selected: [h.id for h in selected]  # noqa: E731
    assert ids(lab.select()) == ["router1", "switch1", "router2", "dut-router"]
    assert ids(lab.select("router")) == ["router1", "router2", "dut-router"]  # re.search, lab order
    assert ids(lab.select("^router")) == ["router1", "router2"]
    assert ids(lab.select(re.compile(r"\d$"))) == ["router1", "switch1", "router2"]
    assert ids(lab.select(tags=["router"])) == ["router1", "router2"]
    assert ids(lab.select(tags=["router", "edge"])) == ["router1"]  # all given tags
    assert ids(lab.select(tags="edge")) == ["router1", "dut-router"]  # one tag as a str
    assert ids(lab.select("router", tags=["edge"])) == ["router1", "dut-router"]
    assert lab.select("nothing") == []
    with pytest.raises(TypeError):
        lab.select(3)  # type: ignore[arg-type]


def test_all_hosts_yields_in_lab_order() -> None:
    lab = Lab([Fake("b"), Fake("a"), Fake("ab")])  # type: ignore[list-item]
    gen = lab.all_hosts()
    assert iter(gen) is gen  # a generator, as B24 says "yields"
    assert [h.id for h in gen] == ["b", "a", "ab"]
    assert [h.id for h in lab.all_hosts(re.compile("a"))] == ["a", "ab"]
    assert [h.id for h in lab.all_hosts("^a")] == ["a", "ab"]


# -- do_for_all_hosts on fakes ------------------------------------------------------------


async def test_results_in_lab_order_whatever_the_finish_order() -> None:
    lab, probe = fake_lab(5)

    async def work(host: Fake, scale: float) -> str:
        await probe.enter(host.id, scale * (5 - int(host.id[1:])))  # h4 finishes first
        return host.id.upper()

    results = await lab.do_for_all_hosts(work, 0.02)
    assert list(results) == ["h0", "h1", "h2", "h3", "h4"]
    assert results == {f"h{i}": f"H{i}" for i in range(5)}
    assert probe.finished == ["h4", "h3", "h2", "h1", "h0"]


async def test_one_exception_does_not_cancel_the_others() -> None:
    lab, probe = fake_lab(4)
    boom = RuntimeError("h1 broke")

    async def work(host: Fake) -> str:
        if host.id == "h1":
            raise boom
        await probe.enter(host.id, 0.1)
        return "done"

    results = await lab.do_for_all_hosts(work)
    assert results["h1"] is boom
    assert [results[h] for h in ("h0", "h2", "h3")] == ["done"] * 3
    assert sorted(probe.finished) == ["h0", "h2", "h3"]


async def test_concurrent_calls_overlap() -> None:
    lab, probe = fake_lab(20)

    async def work(host: Fake) -> None:
        await probe.enter(host.id, 0.2)

    await lab.do_for_all_hosts(work)
    assert probe.peak == 20  # all twenty were in flight at once


async def test_serial_runs_one_at_a_time_in_lab_order() -> None:
    lab, probe = fake_lab(4)

    async def work(host: Fake) -> str:
        await probe.enter(host.id, 0.05)
        return host.id

    results = await lab.do_for_all_hosts(work, concurrent=False)
    assert probe.peak == 1
    assert probe.started == ["h0", "h1", "h2", "h3"]
    assert list(results) == ["h0", "h1", "h2", "h3"]


async def test_serial_one_exception_does_not_stop_the_rest() -> None:
    lab, _ = fake_lab(3)

    async def work(host: Fake) -> str:
        if host.id == "h0":
            raise ValueError("first fails")
        return "ok"

    results = await lab.do_for_all_hosts(work, concurrent=False)
    assert isinstance(results["h0"], ValueError)
    assert results["h1"] == results["h2"] == "ok"


async def test_args_kwargs_and_pattern_are_passed() -> None:
    lab, _ = fake_lab(4)

    async def work(host: Fake, a: int, *, b: int) -> tuple[str, int]:
        return host.id, a + b

    results = await lab.do_for_all_hosts(work, 1, b=2, pattern=r"h[13]")
    assert results == {"h1": ("h1", 3), "h3": ("h3", 3)}


async def test_plain_functions_and_lambdas_work() -> None:
    lab, _ = fake_lab(2)
    assert await lab.do_for_all_hosts(lambda h: h.id * 2) == {"h0": "h0h0", "h1": "h1h1"}


@pytest.mark.parametrize("concurrent", [True, False])
async def test_caller_cancellation_propagates_and_stops_every_host(concurrent: bool) -> None:
    lab, probe = fake_lab(4)
    cancelled: list[str] = []

    async def work(host: Fake) -> None:
        try:
            await probe.enter(host.id, 30)
        except asyncio.CancelledError:
            cancelled.append(host.id)
            raise

    task = asyncio.ensure_future(lab.do_for_all_hosts(work, concurrent=concurrent))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled == (["h0", "h1", "h2", "h3"] if concurrent else ["h0"])
    assert probe.active == 0  # nothing left running
    assert probe.finished == []


async def test_wait_for_timeout_around_the_helper_is_not_swallowed() -> None:
    lab, probe = fake_lab(3)

    async def work(host: Fake) -> None:
        await probe.enter(host.id, 30)

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(lab.do_for_all_hosts(work, concurrent=False), 0.1)
    assert probe.active == 0


async def test_a_host_own_cancelled_error_is_its_result() -> None:
    """A CancelledError raised by one host's work (nobody cancelled the caller) is that host's outcome."""
    lab, _ = fake_lab(3)

    async def work(host: Fake) -> str:
        if host.id == "h1":
            raise asyncio.CancelledError("inner work was cancelled")
        await asyncio.sleep(0.05)
        return "ok"

    results = await lab.do_for_all_hosts(work)
    assert isinstance(results["h1"], asyncio.CancelledError)
    assert results["h0"] == results["h2"] == "ok"


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
@pytest.mark.parametrize("concurrent", [True, False])
def test_keyboard_interrupt_and_system_exit_are_never_swallowed(
    exc_type: type[BaseException], concurrent: bool
) -> None:
    lab, _ = fake_lab(3)

    async def work(host: Fake) -> str:
        if host.id == "h1":
            raise exc_type()
        await asyncio.sleep(0.01)
        return "ok"

    with pytest.raises(exc_type):
        asyncio.run(lab.do_for_all_hosts(work, concurrent=concurrent))


async def test_connect_all_is_concurrent_for_100_hosts() -> None:
    probe = Probe()
    hosts = [Fake(f"n{i:03}", probe=probe) for i in range(99)] + [Fake("bad-one", probe=probe)]
    lab = Lab(hosts)  # type: ignore[arg-type]
    results = await lab.connect_all()
    assert probe.peak == 100  # all at once
    assert list(results) == [h.id for h in hosts]
    assert isinstance(results["bad-one"], ConnectionError)
    assert all(results[h.id] is None for h in hosts[:-1])
    assert all(h.connected for h in hosts[:-1])


async def test_connect_all_pattern_and_serial() -> None:
    lab, probe = fake_lab(4)
    results = await lab.connect_all(pattern="h[02]", concurrent=False)
    assert results == {"h0": None, "h2": None}
    assert probe.peak == 1
    assert [h.connected for h in lab] == [True, False, True, False]  # type: ignore[attr-defined]


async def test_close_closes_every_host() -> None:
    lab, _ = fake_lab(3)
    await lab.close()
    assert all(h.closed for h in lab)  # type: ignore[attr-defined]


async def test_run_on_all_hosts_passes_timeout_only_when_given() -> None:
    lab, _ = fake_lab(2)
    results = await lab.run_on_all_hosts(["a", "b"], pattern="h1")
    assert results == {"h1": ("ran", "h1", ["a", "b"], None)}
    results = await lab.run_on_all_hosts("x", timeout=5)
    assert results["h0"] == ("ran", "h0", "x", 5)


# -- unbound host methods dispatch by name -----------------------------------------------


class MarkedHost(LocalHost):
    """A host kind with its own ``oneshot`` and ``put``, like RemoteHost has."""

    async def oneshot(self, command: str, timeout: Any = None) -> Any:  # type: ignore[override]
        return f"marked oneshot {command}"

    async def put(self, src_files: Any, dest_dir: Any, timeout: Any = None) -> Any:  # type: ignore[override]
        return (Status.Success, f"marked put to {dest_dir}")


def test_host_method_name_detection() -> None:
    assert host_method_name(Host.run) == "run"
    assert host_method_name(LocalHost.run) == "run"  # inherited: the same function
    assert host_method_name(MarkedHost.put) == "put"
    assert host_method_name(LocalHost.from_config) is None  # a classmethod, bound to the class

    async def helper(host: Host) -> None: ...

    assert host_method_name(helper) is None
    assert host_method_name(lambda h: h) is None
    assert host_method_name(len) is None

    class NotAHost:
        async def put(self) -> None: ...

    assert host_method_name(NotAHost.put) is None


async def test_unbound_method_of_another_host_class_runs_each_host_own_method(tmp_path: Path) -> None:
    src = tmp_path / "firmware.bin"
    src.write_bytes(b"\x00\x01firmware")
    local, marked = LocalHost("plain"), MarkedHost("marked")
    lab = Lab([local, marked])
    try:
        # MarkedHost.put (like RemoteHost.put in the seed) on a LocalHost runs LocalHost.put.
        results = await lab.do_for_all_hosts(MarkedHost.put, src_files=[src], dest_dir=tmp_path / "out")
        assert results["plain"] == (Status.Success, "")
        assert (tmp_path / "out" / "firmware.bin").read_bytes() == b"\x00\x01firmware"
        assert results["marked"] == (Status.Success, f"marked put to {tmp_path / 'out'}")
        # Host.oneshot dispatches to the override on MarkedHost, the real one on LocalHost.
        results = await lab.do_for_all_hosts(Host.oneshot, "echo hi")
        assert results["plain"].output == "hi"
        assert results["marked"] == "marked oneshot echo hi"
    finally:
        await lab.close()


async def test_unbound_method_missing_on_a_host_is_that_host_error() -> None:
    fake = Fake("f")
    local = LocalHost("l")
    lab = Lab([fake, local])  # type: ignore[list-item]
    try:
        results = await lab.do_for_all_hosts(Host.oneshot, "echo ok")
        assert isinstance(results["f"], AttributeError)
        assert "'oneshot'" in str(results["f"])
        assert results["l"].output == "ok"
    finally:
        await lab.close()


# -- real LocalHosts --------------------------------------------------------------------


@pytest.fixture
def local_lab() -> Iterator[Lab]:
    lab = Lab([LocalHost(f"loc{i}", tags=("even",) if i % 2 == 0 else ()) for i in range(4)], name="locals")
    try:
        yield lab
    finally:
        lab.close_sync()


async def test_run_on_all_local_hosts(local_lab: Lab) -> None:
    results = await local_lab.run_on_all_hosts(["cd /tmp", "pwd", "false", "echo $((6*7))"])
    assert list(results) == ["loc0", "loc1", "loc2", "loc3"]
    for result in results.values():
        assert isinstance(result, RunResult)
        assert [s.output for s in result.statuses] == ["", "/tmp", "", "42"]
        assert result.status is Status.Failed and result.statuses[2].retcode == 1
    # state persists per host, as the sessions are the hosts' own
    again = await local_lab.run_on_all_hosts("pwd", pattern=re.compile("loc[12]"))
    assert {k: v.only.output for k, v in again.items()} == {"loc1": "/tmp", "loc2": "/tmp"}


async def test_real_commands_overlap_across_hosts(local_lab: Lab, tmp_path: Path) -> None:
    """Each host's command waits at a barrier until all four have started: only a
    concurrent run gets "4" from each (a slow machine cannot fail this, a serial run must)."""
    results = await local_lab.run_on_all_hosts(barrier_command(str(tmp_path), "$$", 4), timeout=2 * PATIENCE)
    assert {k: r.only.output for k, r in results.items()} == dict.fromkeys(local_lab.ids, "4")


async def test_real_commands_serial(local_lab: Lab) -> None:
    """One at a time, in lab order: no host's command starts before the previous one ended."""
    stamp = "$(date +%s%N)"
    results = await local_lab.run_on_all_hosts(f"echo {stamp}; sleep 0.1; echo {stamp}", concurrent=False)
    spans = [tuple(map(int, r.only.output.split())) for r in results.values()]
    assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans)), spans


async def test_real_timeout_applies_to_every_host(local_lab: Lab) -> None:
    results = await local_lab.run_on_all_hosts("sleep 30", timeout=0.5, pattern="loc[01]")
    for result in results.values():
        assert result.only.status is Status.Error
        assert result.only.output.startswith("Command timed out after 0.5")
    after = await local_lab.run_on_all_hosts("echo ok", pattern="loc[01]")
    assert [r.only.output for r in after.values()] == ["ok", "ok"]


async def test_real_failing_host_does_not_spoil_the_others() -> None:
    broken = LocalHost("broken", shell=["/nonexistent/shell"], connect_timeout=5)
    lab = Lab([LocalHost("good1"), broken, LocalHost("good2")])
    try:
        connected = await lab.connect_all()
        assert connected["good1"] is None and connected["good2"] is None
        assert isinstance(connected["broken"], Exception)
        assert "broken" in str(connected["broken"])
        results = await lab.run_on_all_hosts("echo fine")
        assert results["good1"].only.output == results["good2"].only.output == "fine"
        bad = results["broken"]
        assert isinstance(bad, Exception) or not bad.ok
    finally:
        await lab.close()


async def test_real_cancellation_leaves_hosts_usable(local_lab: Lab) -> None:
    task = asyncio.ensure_future(local_lab.run_on_all_hosts("sleep 30"))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    results = await local_lab.run_on_all_hosts("echo back")
    assert [r.only.output for r in results.values()] == ["back"] * 4


async def test_user_coroutine_with_host_first(local_lab: Lab) -> None:
    async def install_and_verify(host: Host, package: str) -> str:
        await host.oneshot(f"true {package}")
        result = await host.oneshot(f"echo {package}-on-{host.id}")
        return result.output

    results = await local_lab.do_for_all_hosts(install_and_verify, "nginx", pattern="loc[23]")
    assert results == {"loc2": "nginx-on-loc2", "loc3": "nginx-on-loc3"}


# -- building labs from files -----------------------------------------------------------


def test_load_lab_of_local_hosts(tmp_path: Path) -> None:
    path = tmp_path / "lab.toml"
    path.write_text(
        '[lab]\nname = "mini"\n[defaults]\ncommand_timeout = 7\n'
        '[hosts.b]\ntransport = "local"\ntags = ["x"]\n[hosts.b.vars]\nslot = 3\n'
        '[hosts.a]\ntransport = "local"\ncommand_timeout = 9\n'
    )
    lab = load_lab(path)
    try:
        assert lab.name == "mini" and lab.path == path
        assert lab.ids == ["b", "a"]
        b, a = lab.hosts
        assert isinstance(b, LocalHost)
        assert b.tags == ("x",) and b.vars == {"slot": 3} and b.command_timeout == 7.0
        assert a.command_timeout == 9.0 and a.connect_timeout == 10.0
        assert b.run_sync("echo hi").only.output == "hi"
    finally:
        lab.close_sync()


def test_hosts_built_in_file_order_with_hops_first(fake_transports: dict[str, list[HostConfig]]) -> None:
    text = (
        '[hosts.inner]\naddress = "i"\nhop = "mid"\n'
        '[hosts.mid]\naddress = "m"\nhop = "jump"\n'
        '[hosts.jump]\naddress = "j"\n'
        '[hosts.con]\ntransport = "telnet"\naddress = "c"\n'
    )
    lab = Lab.from_config(parse_lab(text))
    assert lab.ids == ["inner", "mid", "jump", "con"]  # the file's order
    assert [c.id for c in fake_transports["ssh"]] == ["jump", "mid", "inner"]  # built hops first
    assert [c.id for c in fake_transports["telnet"]] == ["con"]


def test_missing_transport_module_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lab_module, "_factories", {})
    missing = registry.TransportEntry("ssh", "pytest_otto.config:SshConfig", "pytest_otto.no_such_module:X")
    monkeypatch.setitem(registry._transports, "ssh", missing)
    config = parse_lab('[hosts.r1]\naddress = "x"\n', Path("/labs/lab.toml"))
    with pytest.raises(LabError) as info:
        Lab.from_config(config)
    err = info.value
    assert (err.host_id, err.key) == ("r1", "transport")
    assert "no_such_module" in str(err) and "'ssh'" in str(err) and "/labs/lab.toml" in str(err)


def test_transport_not_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lab_module, "_factories", {})
    monkeypatch.delitem(registry._transports, "local")
    cfg = LocalConfig(id="me")
    with pytest.raises(LabError, match="transport 'local' is not registered"):
        build_host(cfg, Lab([]))


def test_example_file_builds_a_lab(fake_transports: dict[str, list[HostConfig]]) -> None:
    lab = load_lab(ROOT / "lab.toml.example")
    assert lab.ids == ["router1", "jumpbox", "dut1", "qemu-board", "switch-a", "me"]
    assert isinstance(lab["me"], LocalHost)
    assert lab["router1"].vars["mgmt_vlan"] == 10
    lab.close_sync()


# -- dump -------------------------------------------------------------------------------


def test_dump_round_trips_a_loaded_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_transports: dict[str, list[HostConfig]]
) -> None:
    monkeypatch.setenv("ROUTER1_PASSWORD", "do-not-write-me")
    lab = load_lab(ROOT / "lab.toml.example")
    text = lab.dump()
    assert "do-not-write-me" not in text
    assert 'env = "ROUTER1_PASSWORD"' in text
    assert "[defaults]" in text
    out = tmp_path / "dumped.toml"
    assert lab.dump(out) == out.read_text()
    again = load_lab_config(out)
    original = load_lab_config(ROOT / "lab.toml.example")
    assert again.hosts == original.hosts  # relative known_hosts made absolute for the new folder
    assert again.defaults == original.defaults and again.name == original.name
    lab.close_sync()


def test_dump_elsewhere_keeps_relative_default_paths_pointing_at_the_same_files(tmp_path: Path) -> None:
    (tmp_path / "bench").mkdir()
    source = tmp_path / "bench" / "lab.toml"
    source.write_text('[defaults]\nkey = "keys/id"\nknown_hosts = "~/kh"\n[hosts.r1]\naddress = "x"\n')
    lab = load_lab(source)
    assert 'key = "keys/id"' in lab.dump()  # same folder: as written
    moved = tmp_path / "other" / "lab.toml"
    moved.parent.mkdir()
    lab.dump(moved)
    again = load_lab_config(moved)
    assert again.hosts[0].key == tmp_path / "bench" / "keys" / "id" == load_lab_config(source).hosts[0].key
    assert again.defaults["known_hosts"] == "~/kh"  # ~ and absolute paths stay as written
    lab.close_sync()


async def test_line_limit_from_the_lab_file_reaches_the_shell(tmp_path: Path) -> None:
    """line_limit (lab key) on a local pty: a small shell gets a 3 KB command whole in
    pieces of that size; 0 turns the pieces off; unset, the host's own default holds."""
    path = tmp_path / "lab.toml"
    path.write_text(
        '[hosts.small]\ntransport = "local"\npty = true\nline_limit = 200\n'
        '[hosts.whole]\ntransport = "local"\npty = true\nline_limit = 0\n'
        '[hosts.plain]\ntransport = "local"\npty = true\n'
    )
    lab = load_lab(path)
    assert [h.line_limit for h in lab.hosts] == [200, None, 512]
    for wrong, error in (("512", TypeError), (True, TypeError), (10, ValueError)):
        with pytest.raises(error, match="line_limit"):
            LocalHost(pty=True, line_limit=wrong)
    try:
        small = lab["small"]
        await small.send("exec busybox sh\n")
        entry = (await small.run(f"echo {'y' * 3000} | wc -c", timeout=30)).only
        assert (entry.status, entry.output) == (Status.Success, "3001")
    finally:
        await lab.close()


def test_dump_of_a_code_built_lab_needs_a_config() -> None:
    with pytest.raises(ValueError, match="not built from a lab file"):
        Lab([LocalHost("x")]).dump()


def test_default_lab_is_one_local_host() -> None:
    lab = default_lab()
    assert lab.name == "local" and lab.ids == ["local"]
    assert isinstance(lab["local"], LocalHost)
    assert "[hosts.local]" in lab.dump()


# -- the active lab and module-level helpers ---------------------------------------------


def test_active_lab_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    default = get_active_lab()
    assert default.ids == ["local"]
    assert get_active_lab() is default  # cached
    path = tmp_path / "env-lab.toml"
    path.write_text('[lab]\nname = "from-env"\n[hosts.e1]\ntransport = "local"\n')
    monkeypatch.setenv("OTTO_LAB", str(path))
    env_lab = get_active_lab()
    assert env_lab.name == "from-env" and env_lab.ids == ["e1"]
    assert get_active_lab() is env_lab  # loaded once
    mine = Lab([LocalHost("set1")], name="set")
    set_active_lab(mine)
    assert get_active_lab() is mine
    assert get_host("set1") is mine["set1"]
    with pytest.raises(KeyError, match="set1"):
        get_host("nope")
    set_active_lab(None)
    assert get_active_lab() is env_lab


def test_bad_otto_lab_file_is_a_lab_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[hosts.a]\ntransport = "local"\ncommand_timeout = -1\n')
    monkeypatch.setenv("OTTO_LAB", str(path))
    with pytest.raises(LabError, match="command_timeout"):
        get_active_lab()


async def test_module_helpers_act_on_the_active_lab() -> None:
    lab, probe = fake_lab(3)
    set_active_lab(lab)
    assert [h.id for h in all_hosts()] == ["h0", "h1", "h2"]
    assert [h.id for h in all_hosts(re.compile("h[12]"))] == ["h1", "h2"]

    async def work(host: Fake, x: int) -> int:
        await probe.enter(host.id, 0.05)
        return x

    assert await do_for_all_hosts(work, 5, pattern="h0") == {"h0": 5}
    await do_for_all_hosts(work, 1, concurrent=False)
    assert probe.peak == 1
    results = await run_on_all_hosts("uname", pattern="h2", timeout=3)
    assert results == {"h2": ("ran", "h2", "uname", 3)}


# -- the seed document's lab-helper examples, imports changed ----------------------------


async def test_seed_examples_on_the_default_lab(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_otto.lab import all_hosts, do_for_all_hosts, run_on_all_hosts

    async def check_all_hosts() -> None:
        results = await run_on_all_hosts("uname -a")
        for host_id, result in results.items():
            if isinstance(result, BaseException):
                print(f"{host_id}: ERROR - {result}")
            else:
                print(f"{host_id}: {result.statuses[0].output.strip()}")

    await check_all_hosts()
    assert capsys.readouterr().out.startswith("local: Linux")

    results = await run_on_all_hosts(["uname -a", "uptime"], pattern=re.compile(r"router"))
    assert results == {}

    firmware = tmp_path / "firmware.bin"
    firmware.write_bytes(b"fw")
    results = await do_for_all_hosts(Host.put, src_files=[firmware], dest_dir=tmp_path / "dest")
    for host_id, result in results.items():
        match result:
            case BaseException():
                print(f"{host_id}: transfer failed - {result}")
            case (status, _) if status.is_ok:
                print(f"{host_id}: transfer succeeded")
            case (status, error_str):
                print(f"{host_id}: {status} - {error_str}")
    assert capsys.readouterr().out == "local: transfer succeeded\n"
    assert (tmp_path / "dest" / "firmware.bin").read_bytes() == b"fw"

    hosts = list(all_hosts())
    cmds = {"local": "echo mixed"}
    mixed = await asyncio.gather(
        *(h.oneshot(cmds[h.id]) for h in hosts if h.id in cmds),
        return_exceptions=True,
    )
    assert [r.output for r in mixed] == ["mixed"]
    await get_active_lab().close()


# -- real sshd servers (testlab) ---------------------------------------------------------


def _ssh_available() -> bool:
    try:
        import pytest_otto.hosts.ssh  # noqa: F401
        import testlab  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _ssh_available(), reason="pytest_otto.hosts.ssh or testlab not available")
async def test_fan_out_across_real_sshd_hosts_one_unreachable(ssh_lab: Any, tmp_path: Path) -> None:
    import hashlib
    import socket

    from pytest_otto.hosts.ssh import RemoteHost

    # A loopback port nobody listens on: the unreachable host.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    path = ssh_lab.write_lab_toml(
        tmp_path / "lab.toml",
        tags=lambda host_id, server: ["ssh", "even" if host_id in ("ssh2", "ssh4") else "odd"],
    )
    text = path.read_text() + (
        f'\n[hosts.dead]\naddress = "127.0.0.1"\nport = {dead_port}\nuser = "root"\n'
        f'host_key_check = "off"\nconnect_timeout = 3.0\n'
    )
    path.write_text(text)
    lab = load_lab(path)
    try:
        assert lab.ids == ["ssh1", "ssh2", "ssh3", "ssh4", "dead"]
        assert all(isinstance(h, RemoteHost) for h in lab)
        meeting = f"/tmp/otto-lab-barrier-{time.monotonic_ns()}"
        await lab["ssh1"].oneshot(f"mkdir {meeting}")  # the servers share this machine's /tmp
        together = barrier_command(meeting, "$$", 4)
        results = await lab.run_on_all_hosts(["cd /tmp", "pwd", together], timeout=2 * PATIENCE)
        await lab["ssh1"].oneshot(f"rm -rf {meeting}")
        assert list(results) == ["ssh1", "ssh2", "ssh3", "ssh4", "dead"]
        for host_id in ("ssh1", "ssh2", "ssh3", "ssh4"):
            result = results[host_id]
            assert isinstance(result, RunResult), f"{host_id}: {result!r}"
            assert result.statuses[1].output == "/tmp"
            assert result.statuses[2].output == "4"  # all four at the barrier at once
            assert result.ok
        dead = results["dead"]
        assert isinstance(dead, BaseException) or not dead.ok
        assert "dead" in str(dead)

        src = tmp_path / "payload.bin"
        src.write_bytes(bytes(range(256)) * 16)
        dest = f"/tmp/otto-lab-test-{time.monotonic_ns()}"
        puts = await lab.do_for_all_hosts(RemoteHost.put, src_files=[src], dest_dir=dest, pattern="ssh")
        assert puts == {h: (Status.Success, "") for h in ("ssh1", "ssh2", "ssh3", "ssh4")}
        # The servers share this machine's /tmp: read everywhere first, clean up after.
        sums = await lab.run_on_all_hosts(f"md5sum < {dest}/payload.bin", pattern="ssh")
        await lab["ssh1"].oneshot(f"rm -rf {dest}")

        expected = hashlib.md5(src.read_bytes()).hexdigest()
        for host_id in ("ssh1", "ssh2", "ssh3", "ssh4"):
            assert sums[host_id].statuses[0].output.split()[0] == expected
        evens = await lab.do_for_all_hosts(Host.oneshot, "echo even", pattern="^ssh[24]$")
        assert {k: v.output for k, v in evens.items()} == {"ssh2": "even", "ssh4": "even"}
        assert [h.id for h in lab.select(tags=["odd"])] == ["ssh1", "ssh3"]
    finally:
        await lab.close()
