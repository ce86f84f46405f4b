"""Pitfall 11 (docs/behaviour.md): sshd refuses, it does not queue.

An OpenSSH server with its default ``MaxStartups 10:30:100`` randomly drops
connections while more than 10 are still unauthenticated: 100 simultaneous
connects to ONE server lose about 40%. A bench that puts 100 host ids behind
one jump address, or one big DUT with many sessions, hits exactly that. The
fan-out helpers and the plugin's pre-flight must survive it (bounded retries
with backoff on a connection lost during the handshake), and this file shows it
against a real sshd with default limits.
"""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from pytest_otto import RunResult
from pytest_otto.lab import load_lab
from testlab import PASSWORD_USER
from testlab.labfile import write_lab_toml
from testlab.sshd import SshServer

HOSTS = 100
DROP_LINE = "past MaxStartups"


@pytest.fixture(scope="module")
def crowded_server() -> Iterator[SshServer]:
    """One sshd with default MaxStartups/MaxSessions (none configured), its own address."""
    with SshServer("127.0.3.7", log_level="VERBOSE") as server:
        assert "MaxStartups" not in server.config_text()
        yield server


@pytest.fixture
def crowded_lab_toml(crowded_server: SshServer, tmp_path: Path) -> Path:
    """A lab of 100 host ids that all reach the same sshd."""
    servers = {f"dut{i:03d}": crowded_server for i in range(HOSTS)}
    return write_lab_toml(
        tmp_path / "lab.toml",
        servers,
        user=PASSWORD_USER,
        defaults={"connect_timeout": 60.0, "command_timeout": 60.0},
    )


def _drops(server: SshServer, since: int = 0) -> int:
    return server.log[since:].count(DROP_LINE)


async def test_default_maxstartups_drops_simultaneous_connections(crowded_server: SshServer) -> None:
    """Control: without retries, 100 simultaneous asyncssh logins to this server lose some."""
    since = len(crowded_server.log)

    async def login() -> None:
        conn = await asyncssh.connect(
            crowded_server.address,
            crowded_server.port,
            username=PASSWORD_USER,
            client_keys=[str(crowded_server.client_key_path)],
            known_hosts=None,
            agent_path=None,
            config=[],
        )
        conn.close()
        await conn.wait_closed()

    logins = asyncio.gather(*(login() for _ in range(HOSTS)), return_exceptions=True)
    results = await asyncio.wait_for(logins, 60)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert failures, "sshd accepted 100 simultaneous connections; MaxStartups was not exercised"
    assert all(isinstance(f, (asyncssh.Error, OSError)) for f in failures), failures[:3]
    assert _drops(crowded_server, since) > 0


async def test_fan_out_survives_maxstartups(crowded_server: SshServer, crowded_lab_toml: Path) -> None:
    """``run_on_all_hosts`` over 100 hosts behind one default sshd: every host answers."""
    lab = load_lab(crowded_lab_toml)
    since = len(crowded_server.log)
    try:
        results = await asyncio.wait_for(lab.run_on_all_hosts("echo hi"), 120)
    finally:
        await asyncio.gather(*(host.close() for host in lab.all_hosts()), return_exceptions=True)
    assert list(results) == [f"dut{i:03d}" for i in range(HOSTS)]
    failed = {host_id: r for host_id, r in results.items() if not isinstance(r, RunResult) or not r}
    assert not failed, f"{len(failed)} hosts failed, e.g. {list(failed.items())[:3]}"
    assert all(r.only.output == "hi" for r in results.values())
    print(f"sshd dropped {_drops(crowded_server, since)} handshakes during the fan-out")


def test_preflight_survives_maxstartups(pytester: pytest.Pytester, crowded_lab_toml: Path) -> None:
    """A pytest run with 100 ``host`` nodes behind one default sshd: every node passes."""
    pytester.makepyfile(
        test_crowd=textwrap.dedent(
            """
            def test_echo(host):
                assert host.run_sync("echo hi").only.output == "hi"
            """
        )
    )
    result = pytester.runpytest_subprocess(
        "--lab", str(crowded_lab_toml), "-p", "no:pytest11.testinfra", "-q", timeout=180
    )
    result.assert_outcomes(passed=HOSTS)
