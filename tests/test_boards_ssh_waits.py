"""wait_until_up / wait_until_down and a reboot's wait on an SSH host (a real sshd we stop and start)."""

from __future__ import annotations

import pytest

from pytest_otto import RemoteHost
from testlab import PASSWORD_USER
from testlab.sshd import SshServer


def _host(server: SshServer) -> RemoteHost:
    return RemoteHost(
        "sshbox",
        server.address,
        port=server.port,
        user=PASSWORD_USER,
        key=server.client_key_path,
        host_key_check="off",
        connect_timeout=5,
    )


async def test_waits_on_an_ssh_host_follow_its_server():
    server = SshServer("127.0.0.71").start()
    host = _host(server)
    try:
        await host.wait_until_up(30)
        await host.run("export MARK=1")
        with pytest.raises(TimeoutError, match=r"sshbox: still up after 2s: waited for its default shell"):
            await host.wait_until_down(2)
        server.kill()  # the machine went away: connections drop, new ones are refused
        await host.wait_until_down(30)
        with pytest.raises(TimeoutError) as info:
            await host.wait_until_up(2)
        assert str(info.value).startswith("sshbox: not up within 2s: waited for a shell to answer a command")
        assert "last attempt:" in str(info.value)
        server.restart()
        await host.wait_until_up(30)
        assert (await host.run("echo ${MARK-fresh}")).only.output == "fresh"  # a new session
    finally:
        await host.close()
        server.remove()
