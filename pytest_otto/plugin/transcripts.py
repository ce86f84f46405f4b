"""What each host ran during a test, added to the test's report (one section per host)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .state import find_state

__all__: list[str] = []


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Start the test with a clean watch: what ran between tests belongs to none of them."""
    state = find_state(item.config)
    if state is not None:
        state.watch.take()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """Add what each host ran during this phase as a report section, one per host.

    The hosts are the ones the test used, however it reached them (its ``host``,
    ``hosts``, ``local_host``, the ``lab``, a host it made itself), in lab order;
    finding them costs nothing per idle host. pytest shows the sections of a failing
    test, and of every test with ``-rA``. Entries are masked by the host, so no
    secret reaches the report.
    """
    state = find_state(item.config)
    if state is not None:
        sections: dict[str, list[str]] = {}
        for _transcript, entries in state.watch.take():
            for entry in entries:
                sections.setdefault(entry.host_id, []).append(entry.format())
        for host_id in sorted(sections, key=state.report_order):
            item.add_report_section(call.when, f"otto transcript {host_id}", "\n".join(sections[host_id]))
    return (yield)
