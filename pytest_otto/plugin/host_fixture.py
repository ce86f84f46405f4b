"""The ``host`` fixture, one test node per selected host, and its rule beside pytest-testinfra.

``pytest_generate_tests`` turns a test that uses ``host`` into one node per selected
host (``test_x[router1]``), after ``@pytest.mark.otto_hosts`` filters.

pytest-testinfra also has a ``host`` fixture. Both plugins in one environment (a
shared CI image) must run both kinds of suites, so the rule is (docs/testinfra.md):

- a lab is given (``--lab``, ``$OTTO_LAB``, ini ``otto_lab``): ``host`` is pytest-otto's,
  and testinfra's ``--hosts`` as well is a usage error (one of them would be ignored);
- no lab and ``--hosts`` given: ``host`` is testinfra's; this module is not registered,
  pytest-otto's ``lab``, ``hosts`` and ``local_host`` stay available;
- otherwise ``host`` is pytest-otto's, except in a test module that sets
  ``testinfra_hosts`` (testinfra's own per-module host list): there it is testinfra's.
"""

from __future__ import annotations

from types import ModuleType

import pytest

from ..hosts.base import Host
from .state import get_state

__all__ = ["host", "testinfra_hosts_option", "testinfra_plugin"]


@pytest.fixture(scope="session")
def _otto_host() -> None:
    """Marks pytest-otto's ``host`` in a test's fixture closure (see `_host_is_ours`)."""


@pytest.fixture(scope="session")
def host(request: pytest.FixtureRequest, _otto_host: None) -> Host:
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
    if state.selection is not None and selected not in state.selected:
        # a test that pins its host meets the job's selection too
        pytest.skip(f"host {host_id!r} is not selected by {state.selection}")
    state.require([selected])
    return selected


def _parametrized_by_user(metafunc: pytest.Metafunc, name: str) -> bool:
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", "")
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",")]
        if name in names:
            return True
    return False


def _host_is_ours(metafunc: pytest.Metafunc) -> bool:
    """Whether the test's ``host`` is pytest-otto's, not the user's own nor testinfra's.

    Only pytest-otto's ``host`` brings ``_otto_host`` into the fixture closure.
    """
    return "_otto_host" in metafunc.fixturenames


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One node per selected host for tests that use ``host``: ``test_x[host_id]``.

    Not for a test whose ``host`` is a fixture of the user's own (conftest.py) or
    testinfra's, or that pins its hosts with its own ``parametrize``.
    """
    if not _host_is_ours(metafunc) or _parametrized_by_user(metafunc, "host"):
        return
    state = get_state(metafunc.config)
    selected, why_none = state.selected_for(metafunc.definition)
    if selected:
        params = [pytest.param(h.id, id=h.id) for h in selected]
    else:
        # not a possible host id (those have no spaces), so -k on a host never selects it
        params = [pytest.param(None, id="no host", marks=pytest.mark.skip(reason=why_none))]
    metafunc.parametrize("host", params, indirect=True)


# -- beside pytest-testinfra ----------------------------------------------------------------


def testinfra_plugin(config: pytest.Config) -> ModuleType | None:
    """pytest-testinfra's plugin module when it is loaded (by entry point or ``-p``)."""
    for plugin in config.pluginmanager.get_plugins():
        if isinstance(plugin, ModuleType) and plugin.__name__ == "testinfra.plugin":
            return plugin
    return None


def testinfra_hosts_option(config: pytest.Config) -> str | None:
    """testinfra's ``--hosts`` value, when pytest-testinfra is loaded and it was given."""
    if testinfra_plugin(config) is None:
        return None
    value = getattr(config.option, "hosts", None)
    return str(value) if value is not None else None


def pytest_collectstart(collector: pytest.Collector) -> None:
    """A test module that sets ``testinfra_hosts`` gets testinfra's ``host`` fixture.

    The module is a pytest-testinfra module; giving it testinfra's fixture here, before
    pytest reads the module's fixtures, is what ``from testinfra.plugin import host``
    in the module would do.
    """
    if not isinstance(collector, pytest.Module):
        return
    testinfra = testinfra_plugin(collector.config)
    if testinfra is None:
        return
    try:
        module = collector.obj
    except Exception:  # an import error: pytest reports it when it collects the module
        return
    if hasattr(module, "testinfra_hosts") and "host" not in vars(module):
        module.host = testinfra.host
