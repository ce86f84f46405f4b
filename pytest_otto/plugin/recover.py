"""``recover = "power-cycle"``: a board that stops answering during a test is brought back.

When a test fails, each host it used that has power control and ``recover =
"power-cycle"`` is checked: the failure was its connection being lost, or its shell
does not answer a command within `PROBE`. Such a host is power-cycled once and
awaited (bounded by its ``boot_timeout``); the test fails with what happened (a
`HostRecovered` error chained to the original one), and the tests after it run on the
rebooted board. The power events are in the host's transcript, so the report shows them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from .. import loop
from ..errors import HostConnectionError, OttoError
from ..hosts.base import Host
from .state import find_state, item_hosts

__all__ = ["HostRecovered"]

#: How long a host may take to answer ``true`` before it is taken for hung, seconds.
PROBE = 10.0


class HostRecovered(OttoError):
    """A host stopped answering during the test and was power-cycled (``recover``)."""


def _wants_recovery(host: Host) -> bool:
    return host.recover == "power-cycle" and host.power_control is not None


async def _answers(host: Host) -> str | None:
    """None when the host's shell answers; else why not."""
    try:
        result = await asyncio.wait_for(host.default_session._run("true", PROBE), PROBE + 1)
    except (HostConnectionError, TimeoutError, OSError) as exc:
        return str(exc) or f"no answer within {PROBE:g}s"
    status = result.only
    return None if status.ok else (status.output.strip() or status.status.name)


async def _recover(host: Host, cause: str) -> str:
    """Power-cycle ``host`` and wait for it; the sentence for the test's failure."""
    started = time.monotonic()
    what = f'{host.id} stopped answering ({cause}); recover = "power-cycle": '
    try:
        await host._power_action("cycle")
        await host._wait_up(host.boot_timeout)
    except Exception as exc:
        return what + f"power-cycling it did not bring it back: {exc}"
    return what + f"it was power-cycled and answers again after {time.monotonic() - started:.1f}s"


def _lost_host(exc: BaseException, hosts: list[Host]) -> tuple[Host, str] | None:
    """The host whose connection the exception (or one it chains to) reports lost."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, HostConnectionError):
            for host in hosts:
                if seen.host_id == host.id:
                    return host, seen.cause
        seen = seen.__cause__ or seen.__context__
    return None


def recover_hosts(exc: BaseException, hosts: list[Host]) -> list[str]:
    """Check the hosts that want it after a failure, recover those that hang; what was done."""
    candidates = [h for h in hosts if _wants_recovery(h)]
    lost = _lost_host(exc, candidates)
    done: list[str] = []
    for host in candidates:
        cause = lost[1] if lost is not None and lost[0] is host else loop.wait(_answers(host))
        if cause is not None:
            done.append(loop.wait(_recover(host, cause)))
    return done


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[Any]:
    """After a failed test: bring back the hosts it used that stopped answering."""
    try:
        return (yield)
    except Exception as exc:
        state = find_state(item.config)
        if state is None:
            raise
        done = recover_hosts(exc, item_hosts(item, state))
        if not done:
            raise
        raise HostRecovered("; ".join(done)) from exc
