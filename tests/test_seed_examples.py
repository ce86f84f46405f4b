"""The seed document's lab-helper code blocks, executed exactly as docs/async-patterns.md shows them.

The `>>>` examples of that page run as doctests; the code blocks below them (which
need a lab) are extracted from the page and run here against real hosts: local
shells and real sshd servers, plus one unreachable host.
"""

from __future__ import annotations

import ast
import asyncio
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_otto import Lab, LocalHost, RemoteHost
from pytest_otto.lab import get_active_lab, set_active_lab

DOC = Path(__file__).parent.parent / "docs" / "async-patterns.md"


def code_blocks() -> list[str]:
    """The ```python blocks of the page, in order."""
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def block_defining(name: str) -> str:
    (block,) = [b for b in code_blocks() if re.search(rf"^(async )?def {name}\b", b, flags=re.M)]
    return block


def execute(block: str, namespace: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run a block as a module would (top-level await allowed, as in the document).

    A block that relies on the imports of the block before it gets that block's namespace.
    """
    namespace = {"__name__": "seed_example"} if namespace is None else namespace
    code = compile(block, str(DOC), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, namespace)  # a coroutine when the block awaits at top level
    if asyncio.iscoroutine(result):
        asyncio.run(result)
    return namespace


def stub_path(tmp_path: Path, **scripts: str) -> dict[str, str]:
    """An environment whose PATH finds the given stub commands first."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in scripts.items():
        script = bin_dir / name
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(0o755)
    import os

    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


@pytest.fixture
def active_lab() -> Iterator[list[Lab]]:
    """Lets a test install the active lab; restores the previous one after."""
    installed: list[Lab] = []
    previous = get_active_lab()
    yield installed
    for lab in installed:
        lab.close_sync()
    set_active_lab(previous)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def install_seed_lab(active_lab: list[Lab], ssh_lab: Any, index: int, live: str, dead: str) -> Lab:
    """The active lab of the seed's examples: the local host, a real sshd host, an unreachable one."""
    server = ssh_lab[index]
    lab = Lab(
        [
            LocalHost("local"),
            RemoteHost(
                live,
                server.address,
                port=server.port,
                user="root",
                key=ssh_lab.client_key_path,
                host_key_check="off",
            ),
            RemoteHost(
                dead, "127.0.0.1", port=closed_port(), user="root", host_key_check="off", connect_timeout=3
            ),
        ],
        name="seed",
    )
    active_lab.append(lab)
    set_active_lab(lab)
    return lab


def test_all_code_blocks_are_covered() -> None:
    names = {m for b in code_blocks() for m in re.findall(r"^(?:async )?def (\w+)", b, flags=re.M)}
    assert names == {
        "check_all_hosts",
        "check_routers_only",
        "deploy_firmware",
        "install_and_verify",
        "mixed_workload",
    }
    for block in code_blocks():
        assert "otto.configmodule" not in block and "otto.host" not in block


def test_run_on_all_hosts_examples(
    ssh_lab: Any, active_lab: list[Lab], capsys: pytest.CaptureFixture[str]
) -> None:
    lab = install_seed_lab(active_lab, ssh_lab, 0, "router1", "router-dead")
    namespace = execute(block_defining("check_all_hosts"))
    asyncio.run(namespace["check_all_hosts"]())
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["local", "router1", "router-dead"]
    assert lines[0].startswith("local: Linux") and lines[1].startswith("router1: Linux")
    assert lines[2].startswith("router-dead: ERROR - ") and "refused" in lines[2]
    assert asyncio.run(namespace["check_routers_only"]()) is None
    routers = [e.command for e in lab["router1"].transcript]
    assert routers[-2:] == ["uname -a", "uptime"]
    assert all(e.command != "uptime" for e in lab["local"].transcript)


def test_deploy_firmware_example(
    ssh_lab: Any,
    active_lab: list[Lab],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    payload = b"\x7fFIRMWARE" + bytes(range(256)) * 64
    monkeypatch.chdir(tmp_path)
    (tmp_path / "firmware.bin").write_bytes(payload)
    lab = install_seed_lab(active_lab, ssh_lab, 1, "board1", "board-dead")
    remote = lab["board1"]
    namespace = execute(block_defining("deploy_firmware"))
    asyncio.run(namespace["deploy_firmware"]())
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["local: transfer succeeded", "board1: transfer succeeded"]
    assert lines[2].startswith("board-dead: ") and len(lines) == 3
    assert "succeeded" not in lines[2]
    assert Path("/tmp/firmware.bin").read_bytes() == payload
    check = remote.oneshot_sync("sha256sum /tmp/firmware.bin")
    import hashlib

    assert check.output.split()[0] == hashlib.sha256(payload).hexdigest()


def test_install_and_verify_example(active_lab: list[Lab], tmp_path: Path) -> None:
    # sudo and dpkg are stubs: the example runs as written without installing anything.
    env = stub_path(
        tmp_path,
        sudo='echo "stub-sudo $*"',
        dpkg='echo "Package: $2"; echo "Status: install ok installed"',
    )
    lab = Lab([LocalHost("dut1", env=env), LocalHost("dut2", env=env)], name="seed")
    active_lab.append(lab)
    set_active_lab(lab)
    # the document's block uses the imports of the deploy_firmware block above it
    namespace = execute(block_defining("deploy_firmware"))
    namespace = execute(block_defining("install_and_verify"), namespace)
    assert namespace["results"] == {
        "dut1": "Package: nginx\nStatus: install ok installed",
        "dut2": "Package: nginx\nStatus: install ok installed",
    }
    ran = [e.command for e in lab["dut1"].transcript]
    assert ran == ["sudo apt-get install -y nginx", "dpkg -s nginx"]
    assert lab["dut1"].transcript.since(0)[0].output == "stub-sudo apt-get install -y nginx"


def test_mixed_workload_example(active_lab: list[Lab], tmp_path: Path) -> None:
    env = stub_path(tmp_path, show='echo "$(hostname) shows $1"')
    lab = Lab([LocalHost(name, env=env) for name in ("switch-a", "switch-b", "router1")], name="seed")
    active_lab.append(lab)
    set_active_lab(lab)
    namespace = execute(block_defining("mixed_workload"))
    assert asyncio.run(namespace["mixed_workload"]()) is None
    (a,) = list(lab["switch-a"].transcript)
    (b,) = list(lab["switch-b"].transcript)
    assert (a.command, a.output.endswith("shows vlan")) == ("show vlan", True)
    assert (b.command, b.output.endswith("shows mac")) == ("show mac", True)
    assert len(lab["router1"].transcript) == 0
