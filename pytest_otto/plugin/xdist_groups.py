"""pytest-xdist: the tests of one host run on one worker.

Registered only when pytest-xdist is active. A host's shell state (B7) lives in one
process, so every test of a host goes to the worker that holds its connection.
"""

from __future__ import annotations

from typing import Any

import pytest

from ..hosts.base import Host
from . import _compat
from .state import OttoRun, find_state, item_hosts

__all__: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    """Group each host's nodes on one xdist worker."""
    option = config.option
    if (
        getattr(option, "dist", "no") == "load"
        and getattr(option, "numprocesses", None)
        and getattr(config.known_args_namespace, "dist", "no") == "no"
        and not getattr(config.known_args_namespace, "distload", False)
    ):
        # -n without --dist: pytest-xdist chose "load"; keep a host's nodes on one worker.
        option.dist = "loadgroup"
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and workerinput.get("otto_loadgroup"):
        # Workers re-parse the command line, which has no --dist loadgroup: say it here.
        option.loadgroup = True


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: tell each worker that the controller switched to ``--dist loadgroup``."""
    node.workerinput["otto_loadgroup"] = node.config.getoption("dist") == "loadgroup"


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    """Say how the hosts' tests are spread over the workers."""
    if find_state(config) is None or getattr(config.option, "dist", "no") != "loadgroup":
        return None
    return ["otto xdist: --dist loadgroup, the tests of one host run on one worker"]


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep the tests that reach a console on that console's worker."""
    state = find_state(config)
    if state is None:
        return
    if config.getoption("loadgroup", False) or getattr(config.option, "dist", "no") == "loadgroup":
        _group_single_holder_hosts(state, [(item, item_hosts(item, state)) for item in items])


def _group_single_holder_hosts(state: OttoRun, bound: list[tuple[pytest.Item, list[Host]]]) -> None:
    """Keep every test that may reach a console host on that host's xdist worker.

    A serial line (or a console server's port) takes one holder at a time. A test
    that uses ``hosts`` or the whole ``lab`` would otherwise run on any worker and
    find the line held by the worker of that host's own tests, or take it from
    them. Such a test joins the console host's group; consoles that one test uses
    together share a group, named after the first of them in lab order.
    """
    order = {h.id: i for i, h in enumerate(state.lab)}
    whole_lab = [h for h in state.lab if h.single_holder]
    leader: dict[str, str] = {h.id: h.id for h in whole_lab}

    def find(host_id: str) -> str:
        while leader[host_id] != host_id:
            host_id = leader[host_id]
        return host_id

    touched: list[tuple[pytest.Item, list[str]]] = []
    for item, bound_hosts in bound:
        if "lab" in getattr(item, "fixturenames", ()):
            consoles = [h.id for h in whole_lab]
        else:
            consoles = [h.id for h in bound_hosts if h.single_holder]
        if not consoles:
            continue
        touched.append((item, consoles))
        roots = sorted({find(c) for c in consoles}, key=order.__getitem__)
        for root in roots[1:]:
            leader[root] = roots[0]
    for item, consoles in touched:
        _compat.set_xdist_group(item, find(consoles[0]))
    for item, bound_hosts in bound:  # a test that pins its host still runs on that host's worker
        pinned = bound_hosts if "host" in getattr(item, "fixturenames", ()) else []
        if len(pinned) == 1 and item.get_closest_marker("xdist_group") is None:
            _compat.set_xdist_group(item, pinned[0].id)
