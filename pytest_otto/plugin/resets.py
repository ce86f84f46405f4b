"""A shell lost during a test is that test's ``ShellResetWarning``, not the next one's.

The library warns when the call that opens the replacement shell runs: within the
test that lost the shell, or else in the next test that uses the host, which would
then fail under ``-W error`` for what an earlier test did. So at the end of each
test's call and teardown, every shell of the run's hosts that was lost and not
replaced yet is reported here, at the line that lost it (`pytest_otto.session.LostShell`);
its replacement later opens without a second warning.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .. import loop
from ..hosts.base import Host
from ..session import LostShell
from .state import OttoRun, find_state

__all__: list[str] = []


def _run_hosts(state: OttoRun) -> list[Host]:
    hosts = list(state.lab.hosts)
    if state.local is not None and all(h is not state.local for h in hosts):
        hosts.append(state.local)
    return hosts


async def _take(hosts: list[Host]) -> list[LostShell]:
    return [lost for host in hosts for lost in host._take_lost_shells()]


def warn_lost_shells(config: pytest.Config) -> None:
    """Raise the ``ShellResetWarning`` of each shell lost and not replaced yet."""
    state = find_state(config)
    if state is None:
        return
    hosts = _run_hosts(state)
    # read without the loop first: nearly always nothing is pending, and no loop may run yet
    if not any(s._shell._reset_pending is not None for h in hosts for s in list(h._sessions.values())):
        return
    for lost in loop.wait(_take(hosts)):
        lost.warn()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[Any]:
    """After the test function: a shell it lost is its warning (its failure under ``-W error``)."""
    try:
        result = yield
    except BaseException:
        try:
            warn_lost_shells(item.config)
        except Warning:  # an error by the filters: the test's own failure says more
            pass
        raise
    warn_lost_shells(item.config)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    """After the fixtures' teardown: a shell they lost is this test's warning too."""
    yield
    warn_lost_shells(item.config)
