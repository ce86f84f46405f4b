"""The fixtures ``lab``, ``host``, ``hosts`` and ``local_host``, and one test node per host.

Module-level fixture functions, the way pytest documents fixtures for plugins. The
plugin registers this module in ``pytest_configure``, i.e. after every entry-point
plugin, so these win over fixtures of the same name from other plugins; a conftest
fixture still overrides them.

``pytest_generate_tests`` turns a test that uses ``host`` into one node per selected
host (``test_x[router1]``), after ``@pytest.mark.otto_hosts`` filters.
"""

from __future__ import annotations

import pytest

from ..hosts.base import Host
from ..hosts.local import LocalHost
from ..lab import Lab
from . import _compat
from .state import find_state, get_state, item_hosts

__all__ = ["host", "hosts", "lab", "local_host"]


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest) -> Lab:
    """The lab of this run (``--lab``; by default one local host ``local``), closed at the end.

    Use it for tests that need several hosts at once: ``lab.select(tags=["router"])``.
    """
    return get_state(request.config).lab


@pytest.fixture(scope="session")
def host(request: pytest.FixtureRequest) -> Host:
    """The host this test node runs on (one node per selected host: ``test_x[host_id]``).

    Session-scoped: its connection and shell stay open for the whole run. A host that
    could not be connected errors its nodes with the cause.
    """
    state = get_state(request.config)
    host_id = getattr(request, "param", None)
    if not isinstance(host_id, str) or host_id not in state.lab:
        pytest.fail(
            f"pytest-otto: the host fixture got {host_id!r}, not a host id of lab {state.lab.name!r}",
            pytrace=False,
        )
    selected = state.lab[host_id]
    if state.pattern is not None and selected not in state.selected:
        # a test that pins its host meets the job's selection too
        pytest.skip(f"host {host_id!r} is not selected by --host-pattern {state.pattern!r}")
    state.require([selected])
    return selected


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


# -- one node per host -------------------------------------------------------------------


def _parametrized_by_user(metafunc: pytest.Metafunc, name: str) -> bool:
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", "")
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",")]
        if name in names:
            return True
    return False


def _host_is_ours(metafunc: pytest.Metafunc) -> bool:
    """Whether the test's ``host`` is pytest-otto's fixture, not one of the user's own."""
    definitions = _compat.fixture_defs(metafunc, "host")
    if not definitions:
        return True
    return getattr(definitions[-1].func, "__module__", None) == __name__


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One node per selected host for tests that use ``host``: ``test_x[host_id]``.

    Not for a test whose ``host`` is a fixture of the user's own (conftest.py), or that
    pins its hosts with its own ``parametrize``.
    """
    if (
        "host" not in metafunc.fixturenames
        or _parametrized_by_user(metafunc, "host")
        or not _host_is_ours(metafunc)
    ):
        return
    state = get_state(metafunc.config)
    selected, why_none = state.selected_for(metafunc.definition)
    if selected:
        params = [pytest.param(h.id, id=h.id) for h in selected]
    else:
        # not a possible host id (those have no spaces), so -k on a host never selects it
        params = [pytest.param(None, id="no host", marks=pytest.mark.skip(reason=why_none))]
    metafunc.parametrize("host", params, indirect=True)


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
