"""pytest-xdist: the tests of one host run on one worker, by a scheduler of our own.

Registered only when pytest-xdist is loaded. A host's shell state (B7: ``cd``,
variables) lives in one process, so every test of a host must go to the worker that
holds its connection, and a console line (one holder at a time) must be reached from
one worker only.

Why a scheduler of our own: pytest-xdist's ``--dist loadgroup`` learns the groups from
a suffix it writes into the test ids, which pytest >= 9.2 ignores, so it silently
degrades to ``load``. Here each worker computes the group of every test it collected
(`group_table`) and hands the table to the controller through a file in a directory
the controller names in ``workerinput``; the controller's `HostGroupScheduling` reads
it and keeps each group on one worker (a worker on another machine, ``--tx ssh=...``,
cannot reach that directory: then all tests run on one worker, and the run says why).
The controller checks where each group really
ran and says so at the end of the run (``pytest_terminal_summary``): the header only
states what was asked.

Used with ``-n N`` alone (pytest-xdist's default ``load``) and with ``--dist loadgroup``
(the user's ``xdist_group`` marks are honoured too); any other ``--dist`` the user
chose is left alone, and the header says the hosts are not grouped.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from ..hosts.base import Host
from . import _compat
from .state import OttoRun, find_state, item_hosts

__all__ = ["GroupingController", "HostGroupScheduling", "group_table"]

#: The ``workerinput`` key naming the directory where workers leave their group tables.
_GROUPS_DIR = "otto_groups_dir"

#: The group of tests whose table could not be read: all on one worker, the safe side.
_FALLBACK_GROUP = "pytest-otto: groups unknown"


def _groups_hosts(config: pytest.Config) -> bool:
    """Whether this run distributes with our scheduler: ``-n`` alone, or ``--dist loadgroup``."""
    dist = getattr(config.option, "dist", "no")
    if dist == "loadgroup":
        return True
    chosen = getattr(config.known_args_namespace, "dist", "no") != "no"
    return dist == "load" and not chosen and not getattr(config.known_args_namespace, "distload", False)


def pytest_configure(config: pytest.Config) -> None:
    """On the controller of a grouped run, register the `GroupingController`."""
    if not hasattr(config, "workerinput") and _groups_hosts(config):
        config.pluginmanager.register(GroupingController(), GroupingController.NAME)


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    """What was asked of the scheduling; the end of the run says what happened."""
    dist = getattr(config.option, "dist", "no")
    if find_state(config) is None or hasattr(config, "workerinput") or dist == "no":
        return None
    if config.pluginmanager.has_plugin(GroupingController.NAME):
        return ["otto xdist: pytest-otto schedules the tests of one host on one worker (checked at the end)"]
    return [f"otto xdist: --dist {dist}: the tests of one host may run on several workers"]


class GroupingController:
    """The controller's side of a grouped run (a plugin object, as xdist's ``DSession``).

    It names the directory for the workers' group tables, makes the scheduler, notes
    the worker each group's tests ran on, and says at the end whether each group held.
    """

    NAME = "otto-xdist-controller"

    def __init__(self) -> None:
        self.groups_dir = Path(tempfile.mkdtemp(prefix="pytest-otto-xdist-"))
        self.scheduler: HostGroupScheduling | None = None
        #: group -> the workers its tests ran on (from the test reports).
        self.ran_on: dict[str, set[str]] = {}

    def pytest_unconfigure(self) -> None:
        shutil.rmtree(self.groups_dir, ignore_errors=True)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """Tell each worker where to leave the group table of what it collected."""
        node.workerinput[_GROUPS_DIR] = str(self.groups_dir)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        """Schedule with `HostGroupScheduling` (pytest-xdist's own come after: trylast)."""
        self.scheduler = HostGroupScheduling(config, log, groups_dir=self.groups_dir)
        return self.scheduler

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Note the worker each group's tests ran on."""
        worker = getattr(report, "worker_id", None)  # set by pytest-xdist
        group = self.scheduler.groups.get(report.nodeid) if self.scheduler else None
        if group is not None and isinstance(worker, str):
            self.ran_on.setdefault(group, set()).add(worker)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Say whether each group's tests really ran on one worker."""
        for line in self.verdict():
            terminalreporter.write_line(line)

    def verdict(self) -> list[str]:
        """One line when every group held; else one line per problem."""
        if self.scheduler is None:
            return ["otto xdist: NOT grouped: another plugin chose the xdist scheduler"]
        lines = [f"otto xdist: NOT grouped: {problem}" for problem in self.scheduler.problems]
        for group, workers in sorted(self.ran_on.items()):
            if len(workers) > 1:
                names = ", ".join(sorted(workers))
                lines.append(f"otto xdist: the tests of {group!r} ran on workers {names}")
        if not lines and self.ran_on:
            used = {w for ws in self.ran_on.values() for w in ws}
            lines.append(
                f"otto xdist: each of {len(self.ran_on)} host group(s) ran on one worker "
                f"({len(used)} worker(s) used)"
            )
        return lines


class HostGroupScheduling(_compat.scope_scheduling()):  # type: ignore[misc]
    """pytest-xdist's scope scheduling with the groups the workers computed.

    A group (a host, consoles used together, a user's ``xdist_group``) is a scope: all
    its tests go to one worker. A test in no group is a scope of its own, so it runs
    wherever a worker is free, as with ``--dist load``. A worker whose table cannot be
    read puts every test in one group (correct, but serial) and says so at the end.
    """

    def __init__(self, config: pytest.Config, log: Any, *, groups_dir: Path) -> None:
        super().__init__(config, log)
        self.groups_dir = groups_dir
        self.groups: dict[str, str] = {}
        self.problems: list[str] = []

    def add_node_collection(self, node: Any, collection: Sequence[str]) -> None:
        """Read the node's group table before xdist records its collection."""
        worker = str(node.workerinput.get("workerid", "?"))
        try:
            table = json.loads((self.groups_dir / f"{worker}.json").read_text())
        except (OSError, ValueError) as exc:
            why = _remote(node) or str(exc)
            self.problems.append(f"no group table from worker {worker} ({why}); all tests on one worker")
            table = dict.fromkeys(collection, _FALLBACK_GROUP)
        self.groups.update(table)
        super().add_node_collection(node, collection)

    def scope_of(self, nodeid: str) -> str:
        """The group of a test, or its own id when it belongs to none."""
        return self.groups.get(nodeid, nodeid)


def _remote(node: Any) -> str | None:
    """Why a worker on another machine leaves no table, or None for a local one."""
    spec = getattr(getattr(node, "gateway", None), "spec", None)
    ssh, socket = getattr(spec, "ssh", None), getattr(spec, "socket", None)
    if ssh:
        where = f"ssh {str(ssh).split()[-1]}"  # the destination, after ssh's options
    elif socket:
        where = f"socket {socket}"
    else:
        return None
    return f"it runs on {where}, and the tables go through a directory on this machine"


# -- worker ----------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist sends the collection to the controller
def pytest_collection_finish(session: pytest.Session) -> None:
    """On a worker: leave the group of every collected test for the controller."""
    config = session.config
    groups_dir = getattr(config, "workerinput", {}).get(_GROUPS_DIR)
    if not groups_dir:
        return
    table = group_table(session.items, find_state(config))
    worker = str(config.workerinput.get("workerid", os.getpid()))  # type: ignore[attr-defined]
    path = Path(groups_dir) / f"{worker}.json"
    partial = path.with_suffix(".partial")
    try:
        partial.write_text(json.dumps(table))
        partial.replace(path)  # the controller never reads half a table
    except OSError:
        # Not this machine's directory: a remote worker (``--tx ssh=...``). The controller
        # finds no table, runs every test on one worker, and says so at the end.
        return


def group_table(items: Iterable[pytest.Item], state: OttoRun | None) -> dict[str, str]:
    """The group of each test that must share a worker with others: node id -> group name.

    A test's keys are its host (``host``), the consoles it may reach (``hosts`` or the
    whole ``lab``: a console line takes one holder at a time) and its ``xdist_group``
    marks; tests sharing a key share a group, and so do the keys of one test. A group
    is named after its first host in lab order, else its first mark.
    """
    order: dict[str, int] = {f"host:{h.id}": i for i, h in enumerate(state.lab)} if state else {}
    keyed = [(item, _keys(item, state)) for item in items]
    leader: dict[str, str] = {}

    def find(key: str) -> str:
        leader.setdefault(key, key)
        while leader[key] != key:
            key = leader[key]
        return key

    def rank(key: str) -> tuple[int, str]:
        return (order.get(key, len(order)), key)

    for _item, keys in keyed:
        roots = sorted({find(k) for k in keys}, key=rank)
        for root in roots[1:]:
            leader[root] = roots[0]
    return {item.nodeid: find(keys[0]).split(":", 1)[1] for item, keys in keyed if keys}


def _keys(item: pytest.Item, state: OttoRun | None) -> list[str]:
    keys: list[str] = []
    if state is not None:
        fixturenames = getattr(item, "fixturenames", ())
        bound = item_hosts(item, state)
        if "host" in fixturenames and len(bound) == 1:
            keys.append(f"host:{bound[0].id}")
        reach: Iterable[Host] = state.lab if "lab" in fixturenames else bound
        keys += [f"host:{h.id}" for h in reach if h.single_holder and f"host:{h.id}" not in keys]
    for mark in item.iter_markers("xdist_group"):
        keys.append(f"mark:{mark.args[0] if mark.args else mark.kwargs.get('name', 'default')}")
    return keys
