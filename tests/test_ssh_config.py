"""``~/.ssh/config`` for SSH hosts, against real sshd servers: aliases, ProxyJump, the lab winning.

Each test writes its own ssh config (and, for ``~``, its own HOME), so the machine's
real ``~/.ssh`` is never read or written.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from pytest_otto import RemoteHost
from pytest_otto.errors import LabError
from pytest_otto.lab import load_lab
from testlab import PASSWORD_USER
from testlab.sshd import SshLab, SshServer

HostMaker = Callable[..., RemoteHost]


@pytest.fixture
async def make_host() -> AsyncIterator[HostMaker]:
    """RemoteHosts made by the test, closed after it."""
    made: list[RemoteHost] = []

    def make(host_id: str, address: str, **options: object) -> RemoteHost:
        options.setdefault("host_key_check", "off")
        options.setdefault("agent", False)
        options.setdefault("connect_timeout", 10)
        made.append(RemoteHost(host_id, address, **options))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for host in made:
        await host.close()


@pytest.fixture
def jump_server() -> Iterator[SshServer]:
    """A private sshd, so its log's logins are this test's own."""
    server = SshServer("127.0.0.42").start()
    try:
        yield server
    finally:
        server.remove()


def _alias(name: str, server: SshServer, **settings: object) -> str:
    lines = [f"Host {name}", f"    HostName {server.address}", f"    Port {server.port}"]
    lines += [f"    {key} {value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


async def test_an_alias_brings_hostname_port_user_and_identityfile(
    ssh_lab: SshLab, tmp_path: Path, make_host: HostMaker
) -> None:
    server = ssh_lab[0]
    config = tmp_path / "config"
    config.write_text(_alias("bench-box", server, User=PASSWORD_USER, IdentityFile=server.client_key_path))
    host = make_host("box", "bench-box", ssh_config=config)
    assert (host.address, host.port, host.user) == (server.address, server.port, PASSWORD_USER)
    assert (await host.run("id -un")).only.output == PASSWORD_USER
    assert f"{server.address}:{server.port}" in repr(host)


async def test_the_labs_keys_win_over_the_ssh_config(
    ssh_lab: SshLab, tmp_path: Path, make_host: HostMaker
) -> None:
    server = ssh_lab[1]
    config = tmp_path / "config"
    # Everything here is wrong for this server except HostName: the lab's own values must win.
    config.write_text(
        f"Host bench-box\n    HostName {server.address}\n    Port 9\n    User nobody-here\n"
        f"    IdentityFile {tmp_path / 'no-such-key'}\n"
    )
    host = make_host(
        "box", "bench-box", ssh_config=config, port=server.port, user="root", key=server.client_key_path
    )
    assert (await host.run("id -un")).only.output == "root"
    assert host.port == server.port


async def test_opting_out_leaves_the_alias_unresolved(
    ssh_lab: SshLab, tmp_path: Path, make_host: HostMaker
) -> None:
    config = tmp_path / "config"
    config.write_text(_alias("bench-box", ssh_lab[0], User="root"))
    host = make_host("box", "bench-box", ssh_config=False)
    assert (host.address, host.port, host.user) == ("bench-box", 22, None)


async def test_proxyjump_from_the_default_file_goes_through_the_jump_host(
    ssh_lab: SshLab,
    jump_server: SshServer,
    tmp_path: Path,
    make_host: HostMaker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``~/.ssh/config`` (HOME is the test's): the target's ProxyJump names another alias."""
    target = ssh_lab[2]
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(
        _alias("jump", jump_server, User="root", IdentityFile=jump_server.client_key_path)
        + _alias("inner", target, User="root", IdentityFile=target.client_key_path, ProxyJump="jump")
    )
    # asyncssh checks the jump host's key against ~/.ssh/known_hosts, as ssh does
    (home / ".ssh" / "known_hosts").write_text(jump_server.known_hosts_line() + "\n")
    monkeypatch.setenv("HOME", str(home))
    logins_before = len(re.findall(r"Accepted \S+ for root", jump_server.log))
    host = make_host("inner", "inner")
    assert (await host.run("id -un")).only.output == "root"
    assert len(re.findall(r"Accepted \S+ for root", jump_server.log)) == logins_before + 1


def test_a_broken_ssh_config_is_a_lab_error_naming_host_and_key(tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text("Host box\n    Port not-a-number\n")
    lab = tmp_path / "lab.toml"
    lab.write_text(f'[hosts.box]\naddress = "box"\nssh_config = "{config.name}"\n')
    with pytest.raises(LabError) as caught:
        load_lab(lab)
    message = str(caught.value)
    assert "host 'box'" in message and "key 'ssh_config'" in message and "not-a-number" in message


def test_a_missing_named_file_is_an_error_and_a_missing_default_file_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh/config there
    assert RemoteHost("a", "box", ssh_config=True).address == "box"
    with pytest.raises(LabError, match=r"host 'a'.*no-such-file is not a readable file"):
        RemoteHost("a", "box", ssh_config=tmp_path / "no-such-file")
