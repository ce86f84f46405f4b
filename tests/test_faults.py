"""The fault suite (issue 20): real sshd servers that die, freeze and misbehave.

Run it alone with ``pytest -m faults``. Every test here breaks a server of its
own (`own_sshd`: killed, paused, refused) or feeds a host what a device can do to
it: commands that ignore INT and QUIT, REPLs, floods of binary output, a share of
commands that time out. Each bound is asserted with the allowance the docs give
(`docs/faults.md`): these are bounds that must hold on a loaded machine, not speed
targets (speed is measured in benchmarks/).
"""

from __future__ import annotations

import asyncio
import itertools
import warnings
from collections.abc import AsyncIterator, Iterator

import pytest
from test_behaviour import PATIENCE, unique, wait_until

from pytest_otto import RemoteHost, ShellResetWarning, Status
from testlab import PASSWORD_USER
from testlab.sshd import SshServer

pytestmark = [pytest.mark.faults, pytest.mark.filterwarnings("ignore::pytest_otto.ShellResetWarning")]

#: Loopback addresses of this module's own servers (one per test, so a killed or
#: paused server never meets another test; ports are free ones, so xdist workers
#: may share an address).
_addresses = (f"127.0.0.{n}" for n in itertools.cycle(range(150, 200)))


@pytest.fixture
def own_sshd() -> Iterator[SshServer]:
    """A private sshd this test may kill, pause or stop."""
    server = SshServer(next(_addresses)).start()
    try:
        yield server
    finally:
        server.resume()
        server.remove()


def ssh_host(server: SshServer, host_id: str = "faulty", **options: object) -> RemoteHost:
    """A host on ``server`` as the password user, with the lab's client key."""
    settings: dict[str, object] = {
        "port": server.port,
        "user": PASSWORD_USER,
        "key": server.client_key_path,
        "host_key_check": "off",
        "command_timeout": 30,
        "connect_timeout": 10,
    }
    settings.update(options)
    return RemoteHost(host_id, server.address, **settings)  # type: ignore[arg-type]


@pytest.fixture(params=["pipes", "pty"])
async def host(request: pytest.FixtureRequest, own_sshd: SshServer) -> AsyncIterator[RemoteHost]:
    """An SSH host on `own_sshd`, its shells on pipes or on a pty."""
    target = ssh_host(own_sshd, pty=request.param == "pty")
    try:
        yield target
    finally:
        await target.close()


# -- 20.1: an abandoned shell never reaches its replacement ---------------------------------


async def test_an_abandoned_shell_that_ends_later_leaves_its_replacement_alone(host: RemoteHost) -> None:
    """A command that ignores HUP, INT and QUIT outlives the recovery: the session gives
    its shell up and opens a fresh one. When the old shell finally dies, its end must
    not end the new shell, whose cwd and variables the test set meanwhile."""
    token = unique()
    flag, pattern = f"/tmp/otto-release-{token}", f"[o]tto-release-{token}"  # cannot match pgrep itself
    # the shell ignores the signals too (as in the report), and the waiting process inherits that
    stuck = f"trap '' HUP INT QUIT; sh -c 'while [ ! -e {flag} ]; do sleep 0.1; done'; echo late"
    entry = (await host.run(stuck, timeout=1)).only
    assert entry.status is Status.Error and "will be replaced by a fresh shell" in entry.output
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert (await host.run(["cd /tmp", "export FOO=kept"])).status is Status.Success
    assert any(issubclass(w.category, ShellResetWarning) for w in caught)
    assert (await host.oneshot(f"pgrep -f '{pattern}' >/dev/null")).status is Status.Success
    await host.oneshot(f"touch {flag}")  # the old shell's command ends, and its shell with it

    async def old_shell_gone() -> bool:
        return (await host.oneshot(f"pgrep -f '{pattern}' >/dev/null")).status is Status.Failed

    assert await wait_until(old_shell_gone)
    # the old channel's close reaches the client while this runs
    entry = (await host.run("sleep 1; echo ok; pwd; echo $FOO")).only
    assert (entry.status, entry.output) == (Status.Success, "ok\n/tmp\nkept")
    await host.oneshot(f"rm -f {flag}")


_unused = (asyncio, PATIENCE)
