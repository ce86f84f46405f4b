"""The pytest plugin: ``--lab``, ``--host-pattern``, host fixtures, one test node per host.

The plugin is thin: loading a lab file, selecting hosts, connecting them and recording
what they ran are library features (`pytest_otto.lab`, `Host`, `Transcript`). This
package wires them into pytest, one module per concern, each registered as a plugin
of its own in ``pytest_configure`` only when the run needs it (as pytest registers
its JUnit writer, and pytest-xdist its ``DSession``):

- `session`: options, loading the lab, the header, pre-flight connection, closing;
- `fixtures`: ``lab``, ``hosts``, ``local_host`` and the host properties of each test;
- `host_fixture`: ``host`` and one node per host; its rule beside pytest-testinfra;
- `async_tests`: ``async def`` tests run with no decorator (otto loop or pytest-asyncio);
- `xdist_groups`: with pytest-xdist, the tests of one host run on one worker;
- `transcripts`: what each host ran, as sections of the test's report;
- `pytest_otto.reports.pytest_hooks`: the matrix, host logs, HTML report, JUnit transcripts;
- `resets`: a shell lost during a test is that test's ``ShellResetWarning``;
- `recover`: a host with ``recover = "power-cycle"`` that hangs is power-cycled;
- `masking`: secrets masked in every report and log record pytest writes;
- `pytest_otto.leases.pytest_plugin`: device leases taken before the first connection;
- `_compat`: every use of private pytest / pytest-asyncio API, in one place.

The entry point (``pytest11``: ``otto = pytest_otto.plugin``) is this module.
"""

from __future__ import annotations

from types import ModuleType

import pytest

from ..leases import pytest_plugin as leases
from ..reports import pytest_hooks as reports
from . import async_tests, fixtures, host_fixture, masking, recover, resets, session, transcripts
from .session import OTTO_LAB_ENV

__all__ = ["OTTO_LAB_ENV"]


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--lab``, ``--host-pattern`` and the ``otto_lab`` ini option; the reports' and leases' options."""
    session.add_options(parser)
    reports.add_options(parser)
    leases.add_options(parser)


def _parts(config: pytest.Config) -> dict[str, ModuleType]:
    """The plugin modules this run needs, by the name each is registered under."""
    parts: dict[str, ModuleType] = {
        "otto-session": session,
        "otto-fixtures": fixtures,
        "otto-async-tests": async_tests,
        "otto-transcripts": transcripts,
        "otto-reports": reports,
        "otto-recover": recover,
        "otto-resets": resets,
        "otto-masking": masking,
        "otto-leases": leases,
    }
    if session.owns_host_fixture(config):
        parts["otto-host-fixture"] = host_fixture
    if config.pluginmanager.hasplugin("xdist"):
        from . import xdist_groups

        parts["otto-xdist"] = xdist_groups
    return parts


@pytest.hookimpl(tryfirst=True)  # before pytest-asyncio's pytest_configure warns
def pytest_configure(config: pytest.Config) -> None:
    """Register the marker and the parts of the plugin this run needs."""
    async_tests.quiet_fixture_loop_scope_warning()
    config.addinivalue_line(
        "markers",
        "otto_hosts(pattern=None, tags=None): run this test only on the selected hosts whose id "
        "matches the regex pattern (re.search) and that carry every tag in tags.",
    )
    for name, part in _parts(config).items():
        if not config.pluginmanager.is_registered(part):
            config.pluginmanager.register(part, name)
    session.warn_if_lab_path_chose_rootdir(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Unregister the parts registered in ``pytest_configure``."""
    for name in _parts(config):
        plugin = config.pluginmanager.get_plugin(name)
        if plugin is not None:
            config.pluginmanager.unregister(plugin, name)
