"""Power control against real QEMU boards: QMP, and commands run on the local host."""

from __future__ import annotations

import pytest
from boards_helpers import BOOT, board_host, socat_qmp

from pytest_otto import LocalHost, load_lab
from pytest_otto.power import CommandPower, PowerError


async def test_qmp_power_on_off_cycle_and_status_and_the_waits_bounds(boards):
    board = boards("linux", console="telnet", on=False)
    host = board_host(board)
    try:
        assert await host.power_status() is False  # frozen at start: the switch is off
        with pytest.raises(TimeoutError) as up:
            await host.wait_until_up(4)
        message = str(up.value)
        assert message.startswith("board1: not up within 4s: waited for a shell to answer a command on")
        assert "last attempt:" in message
        await host.power("on")
        assert await host.power_status() is True
        await host.wait_until_up(BOOT)
        first = (await host.run("cat /proc/sys/kernel/random/boot_id")).only.output
        await host.power("cycle")
        await host.wait_until_up(BOOT)
        second = (await host.run("cat /proc/sys/kernel/random/boot_id")).only.output
        assert first != second  # a new boot
        with pytest.raises(TimeoutError) as down:
            await host.wait_until_down(6)
        assert str(down.value).startswith(
            f"board1: still up after 6s: waited for telnet {board.address}:{board.port} to stop answering"
        )
        with pytest.raises(TimeoutError, match=r"board1: not up within 0.5s: waited for a shell on a new"):
            await host.reboot(timeout=0.5)  # too short for any boot
        await host.power("off")
        assert await host.power_status() is False
        assert board.status() in ("paused", "prelaunch")  # held at reset
        await host.wait_until_down(BOOT)
        assert [e.command for e in host.transcript if e.kind == "power"] == [
            "power on",
            "power cycle",
            "power off",
        ]
        with pytest.raises(TimeoutError, match="board1: not up within 2s"):
            host.wait_until_up_sync(2)
    finally:
        await host.close()


async def test_command_power_through_a_lab_file(boards, tmp_path):
    """on/off/cycle/status commands run on the local host (socat to the QMP socket)."""
    board = boards("linux", console="tcp", on=False)
    lab_file = tmp_path / "lab.toml"
    lab_file.write_text(
        f"""
[hosts.board1]
transport = "tcp"
address = "{board.address}"
port = {board.port}
user = "root"
password = "board123"
connect_timeout = 30
vars = {{ qmp = "{board.qmp_path}" }}

[hosts.board1.power]
on = '''{socat_qmp(board, "cont").replace(str(board.qmp_path), "{vars.qmp}")}'''
off = '''{socat_qmp(board, "stop", "system_reset").replace(str(board.qmp_path), "{vars.qmp}")}'''
status = '''{socat_qmp(board, "query-status").replace(str(board.qmp_path), "{vars.qmp}")}'''
status_on = '"running": true'
off_delay = 0.2
"""
    )
    lab = load_lab(lab_file)
    host = lab["board1"]
    assert isinstance(host.power_control, CommandPower)
    try:
        assert await host.power_status() is False
        await host.power("on")
        assert await host.power_status() is True
        await host.wait_until_up(BOOT)
        assert (await host.run("echo $((6*7))")).only.output == "42"
        await host.power("cycle")  # no cycle command: off, off_delay, on
        assert board.status() == "running"
        await host.wait_until_up(BOOT)
        booted = (await host.run("cat /proc/sys/kernel/random/boot_id")).only.output
        await host.reboot(timeout=BOOT)  # soft, on the raw TCP console
        assert (await host.run("cat /proc/sys/kernel/random/boot_id")).only.output != booted
        host.power_sync("off")
        assert host.power_status_sync() is False
    finally:
        await lab.close()


async def test_a_failing_power_command_names_host_command_and_output():
    host = LocalHost(id="dut")
    local = LocalHost(id="pdu")
    host.power_control = CommandPower(
        lambda: local,
        on="true",
        off="echo 'outlet {vars.outlet}: relay stuck' >&2; exit 4",
        status="exit 2",
        values={"id": "dut", "vars": {"outlet": 3}},
        via_name="pdu",
    )
    try:
        with pytest.raises(PowerError) as info:
            await host.power("off")
        message = str(info.value)
        assert message.startswith("dut: power off: command ")
        assert "echo 'outlet 3: relay stuck' >&2; exit 4" in message  # as run, expanded
        assert "on pdu" in message and "exit code 4" in message
        assert "outlet 3: relay stuck" in message.split("exit code 4")[1]  # its output
        with pytest.raises(PowerError, match=r"dut: power status: .*exit code 2"):
            await host.power_status()
        await host.power("on")  # the working command still works
        with pytest.raises(ValueError, match="one of on, off, cycle"):
            await host.power("reset")
    finally:
        await local.close()


async def test_a_host_without_power_control_says_what_to_add():
    host = LocalHost(id="plain")
    missing = r"plain: power cycle: this host has no power control \(add \[hosts\.plain\.power\]\)"
    with pytest.raises(PowerError, match=missing):
        await host.power("cycle")
    with pytest.raises(PowerError, match=r"plain: power status: this host has no power control"):
        host.power_status_sync()
