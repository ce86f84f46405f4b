"""The leases of a pytest run: taken before the first connection, held to the end.

Registered by the pytest-otto plugin. At session start (after the lab is loaded,
before any host is connected, before pytest-xdist starts its workers) the run
leases the devices of every selected host, in one global order, waiting up to
``--lease-wait`` / ``lease_wait`` and printing who holds what. A host whose device
was not obtained errors its own tests, naming the holder; the others run. With
``--lease-any N`` the run takes any N free devices among the selected hosts, and
only those hosts get test nodes. Under pytest-xdist the controller holds the
leases; each worker watches them, so a lost lease still stops its tests there.
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from typing import Any

import pytest

from ..config import LabError
from .errors import LeaseError, LeaseLost
from .holder import Holder
from .leaseset import LeaseSet
from .settings import LEASE_WAIT_HELP, lease_settings

__all__ = ["LEASES"]

#: The run's leases (controller, or a process without xdist; a watching set on workers).
LEASES = pytest.StashKey[LeaseSet]()
#: host id -> its lease lost while a test ran (filled on the lease thread).
_LOST = pytest.StashKey[dict[str, LeaseLost]]()
#: Hosts found lost before the current test began.
_LOST_BEFORE = pytest.StashKey[set[str]]()


def add_options(parser: pytest.Parser) -> None:
    """``--lease-wait SECONDS`` and ``--lease-any N`` (called from the plugin's ``pytest_addoption``)."""
    group = parser.getgroup("otto")
    group.addoption(
        "--lease-wait",
        dest="otto_lease_wait",
        metavar="SECONDS",
        type=float,
        default=None,
        help=f"{LEASE_WAIT_HELP}; a device still busy then errors its host's tests, naming the holder.",
    )
    group.addoption(
        "--lease-any",
        dest="otto_lease_any",
        metavar="N",
        type=int,
        default=None,
        help="Lease any N free devices among the selected hosts (--host-pattern) and test only those.",
    )


def _otto_state(config: pytest.Config) -> Any:
    from ..plugin.state import find_state

    return find_state(config)


def _say(config: pytest.Config, line: str) -> None:
    """A line on the terminal, at once (a waiting job shows why it waits)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line)
        reporter._tw.flush()
    else:
        print(line, file=sys.stderr, flush=True)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Take the leases of the selected hosts' devices, or watch the controller's (workers)."""
    config = session.config
    state = _otto_state(config)
    any_n = config.option.otto_lease_any
    if state is None or (config.option.collectonly and any_n is None):
        return
    try:
        settings = lease_settings(state.lab.config)
    except LabError as exc:
        raise pytest.UsageError(f"pytest-otto: {exc}") from None
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        _watch(config, state, settings, workerinput.get("otto_leases"))
        return
    try:
        leases = _lease_set(config, state, settings, any_n)
    except ValueError as exc:  # --lease-any beyond the devices there are
        raise pytest.UsageError(f"pytest-otto: --lease-any: {exc} among the selected hosts") from None
    try:
        leases.acquire_sync()
    except LeaseError as exc:
        raise pytest.UsageError(f"pytest-otto: {exc}; no device was touched") from None
    config.stash[LEASES] = leases
    _apply(state, leases, any_n is not None)


def _lease_set(config: pytest.Config, state: Any, settings: Any, any_n: int | None) -> LeaseSet:
    from . import host_devices

    config.stash[_LOST] = {}
    leases = LeaseSet(
        host_devices(state.lab, state.selected),
        settings,
        wait=config.option.otto_lease_wait,
        any=any_n,
        partial=True,
        report=lambda line: _say(config, line),
        hosts=state.selected,
    )
    leases.on_lost(lambda host_id, error: config.stash[_LOST].__setitem__(host_id, error))
    return leases


def _apply(state: Any, leases: LeaseSet, only_obtained: bool) -> None:
    """Hosts not obtained error their tests (as unreachable ones do); ``--lease-any`` narrows."""
    for host_id, error in leases.failed.items():
        state.connected[host_id] = error
    if only_obtained:
        obtained = set(leases.obtained)
        state.selected = [h for h in state.selected if h.id in obtained]


def _watch(config: pytest.Config, state: Any, settings: Any, shared: dict[str, Any] | None) -> None:
    """A worker: use the controller's leases (never take them again), and watch for loss."""
    if not shared:
        return
    leases = _lease_set(config, state, settings, None)
    leases.adopt_sync(Holder.from_json(shared["holder"]), shared["obtained"])
    config.stash[LEASES] = leases
    for host_id, cause in shared["failed"].items():
        state.connected[host_id] = LeaseError(host_id, None, None, cause)
    if shared["any"]:
        obtained = set(shared["obtained"])
        state.selected = [h for h in state.selected if h.id in obtained]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: hand the controller's leases to each worker."""
    leases = node.config.stash.get(LEASES, None)
    if leases is not None:
        node.workerinput["otto_leases"] = {
            "holder": leases.holder.to_json(),
            "obtained": leases.obtained,
            "failed": {host_id: error.cause for host_id, error in leases.failed.items()},
            "any": leases.any is not None,
        }


@pytest.hookimpl(tryfirst=True)  # pytest prints the headers in reverse: after the lab's lines
def pytest_report_header(config: pytest.Config) -> list[str] | None:
    """Where the leases live, which hosts the run holds and which it could not get."""
    leases = config.stash.get(LEASES, None)
    if leases is None or hasattr(config, "workerinput"):
        return None
    lines = [f"otto leases: {leases.settings.store}, held by {leases.holder.describe()}"]
    if leases.any is not None:
        candidates = ", ".join(h for hosts in leases.devices.values() for h in hosts)
        lines.append(f"otto leases: any {leases.any} of {candidates}: obtained {', '.join(leases.obtained)}")
    else:
        lines.append(f"otto leases: obtained {', '.join(leases.obtained) or 'none'}")
    for host_id, error in leases.failed.items():
        lines.append(f"otto leases: not obtained {host_id}: {error.cause}")
    return lines


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Give the leases back once the hosts are closed (the plugin closes them before)."""
    _release(session.config)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Every other exit path (a usage error after the leases were taken)."""
    _release(config)


def _release(config: pytest.Config) -> None:
    leases = config.stash.get(LEASES, None)
    if leases is not None:
        del config.stash[LEASES]
        leases.release_sync()


def _item_host_ids(item: pytest.Item) -> list[str]:
    from ..plugin.state import item_hosts

    state = _otto_state(item.config)
    if state is None:
        return []
    return [h.id for h in item_hosts(item, state)]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test on a host whose lease was lost errors at once."""
    lost = item.config.stash.get(_LOST, None)
    if lost is None:
        return
    item.stash[_LOST_BEFORE] = set(lost)
    for host_id in _item_host_ids(item):
        if host_id in lost:
            pytest.fail(f"pytest-otto: {lost[host_id]}; nothing more is sent to it", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A test whose host lost its lease while it ran fails, saying so (whatever it caught)."""
    report: pytest.TestReport = yield
    lost = item.config.stash.get(_LOST, None)
    if not lost or call.when != "call":
        return report
    before = item.stash.get(_LOST_BEFORE, set())
    newly = [lost[h] for h in _item_host_ids(item) if h in lost and h not in before]
    if newly:
        why = "; ".join(str(error) for error in newly)
        shown = f"pytest-otto: {why}; nothing more was sent to it"
        if report.failed and report.longrepr is not None:
            shown += f"\n\n{report.longreprtext}"
        report.outcome = "failed"
        report.longrepr = shown
    return report
