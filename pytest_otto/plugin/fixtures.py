"""The fixtures ``lab``, ``hosts`` and ``local_host``; the host properties of each test.

Module-level fixture functions, the way pytest documents fixtures for plugins. The
plugin registers this module in ``pytest_configure``, i.e. after every entry-point
plugin, so these win over fixtures of the same name from other plugins; a conftest
fixture still overrides them. The ``host`` fixture has a module of its own
(`host_fixture`): it is the one name pytest-otto shares with pytest-testinfra.
"""

from __future__ import annotations

import pytest

from ..hosts.base import Host
from ..hosts.local import LocalHost
from ..lab import Lab
from .state import find_state, get_state, item_hosts

__all__ = ["hosts", "lab", "local_host"]


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest) -> Lab:
    """The lab of this run (``--lab``; by default one local host ``local``), closed at the end.

    Use it for tests that need several hosts at once: ``lab.select(tags=["router"])``.
    """
    return get_state(request.config).lab


@pytest.fixture
def hosts(request: pytest.FixtureRequest) -> list[Host]:
    """All selected hosts this test may use (``otto_hosts`` applies), connected; one node.

    For tests that need several hosts at once; skipped when none is selected.
    """
    state = get_state(request.config)
    selected, why_none = state.selected_for(request.node)
    if not selected:
        pytest.skip(why_none)
    state.require(selected)
    return selected


@pytest.fixture(scope="session")
def local_host(request: pytest.FixtureRequest) -> LocalHost:
    """The machine pytest runs on: one persistent local shell for the whole run."""
    state = get_state(request.config)
    if state.local is None:
        state.local = LocalHost("local")
    return state.local


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give each host test case the properties ``otto_lab`` and ``otto_host``.

    User properties reach every report: JUnit XML and any reporting plugin.
    """
    state = find_state(config)
    if state is None:
        return
    for item in items:
        bound = item_hosts(item, state)
        if bound:
            item.user_properties.append(("otto_lab", state.lab.name))
        for one in bound:
            item.user_properties.append(("otto_host", one.id))
