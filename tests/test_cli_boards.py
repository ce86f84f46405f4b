"""``otto power`` and ``otto reboot``, and ``otto console`` on a raw TCP console, run as real processes.

Power through commands runs real processes on the local machine (a state file is the
switch); reboot and the TCP console run against a real QEMU board (Linux, console on a
raw TCP port, power through its QMP monitor).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from test_cli import leave_and_check_restored, otto, spawn_console

from testlab.boards import Board

BOOT_ID = "cat /proc/sys/kernel/random/boot_id"


def power_lab(tmp_path: Path) -> tuple[Path, Path]:
    """A lab whose ``lamp`` is switched by commands on this machine (a file is its power)."""
    state = tmp_path / "lamp.on"
    lab = tmp_path / "lab.toml"
    lab.write_text(
        f"""
[hosts.lamp]
transport = "local"
vars = {{ state = "{state}" }}

[hosts.lamp.power]
on = "touch {{vars.state}}"
off = "rm -f {{vars.state}}"
status = "test -e {{vars.state}}"
off_delay = 0.1

[hosts.broken]
transport = "local"

[hosts.broken.power]
on = "echo relay 3 is stuck; exit 5"
off = "true"

[hosts.plain]
transport = "local"
"""
    )
    return lab, state


def test_power_on_off_cycle_and_status_through_commands(tmp_path: Path) -> None:
    lab, state = power_lab(tmp_path)
    status = otto("power", "lamp", "status", lab=lab)
    assert (status.returncode, status.stdout) == (0, "lamp: power off\n"), status.stderr
    result = otto("power", "lamp", "on", lab=lab)
    assert (result.returncode, result.stdout) == (0, "lamp: power on: ok\n"), result.stderr
    assert state.exists()
    assert otto("power", "lamp", "status", lab=lab).stdout == "lamp: power on\n"
    doc = json.loads(otto("--json", "power", "lamp", "cycle", lab=lab).stdout)
    assert doc == {"host": "lamp", "action": "cycle", "ok": True, "state": "cycled"}
    assert state.exists()
    assert otto("power", "lamp", "off", lab=lab).returncode == 0
    assert not state.exists()
    assert json.loads(otto("--json", "power", "lamp", "status", lab=lab).stdout)["state"] == "off"


def test_a_failing_power_command_and_a_host_without_power(tmp_path: Path) -> None:
    lab, _ = power_lab(tmp_path)
    result = otto("power", "broken", "on", lab=lab)
    assert result.returncode == 1
    assert result.stdout.startswith("broken: power on failed: ")
    assert "relay 3 is stuck" in result.stdout and "echo relay 3 is stuck; exit 5" in result.stdout
    result = otto("power", "plain", "off", lab=lab)
    assert result.returncode == 1
    assert "no power control (add [hosts.plain.power])" in result.stdout
    result = otto("power", "lamp", "explode", lab=lab)
    assert result.returncode == 4 and "invalid choice: 'explode'" in result.stderr
    result = otto("reboot", "nohost", lab=lab)
    assert result.returncode == 4 and "no host 'nohost'" in result.stderr


def board_lab(tmp_path: Path, board: Board) -> Path:
    lab = tmp_path / "lab.toml"
    lab.write_text(
        f"""
[hosts.board1]
transport = "tcp"
address = "{board.address}"
port = {board.port}
user = "{board.user}"
password = "{board.password}"
connect_timeout = 30.0

[hosts.board1.power]
qmp = "unix:{board.qmp_path}"
"""
    )
    return lab


def boot_id(lab: Path) -> str:
    result = otto("--json", "run", "--", BOOT_ID, lab=lab)
    (host,) = json.loads(result.stdout)["hosts"]
    assert host["status"] == "Success", host
    return str(host["output"]).strip()


def test_reboot_a_qemu_board_and_sit_at_its_tcp_console(boards: Callable[..., Board], tmp_path: Path) -> None:
    board = boards("linux", console="tcp")
    lab = board_lab(tmp_path, board)
    check = otto("check", lab=lab)
    assert check.returncode == 0, check.stdout
    assert "board1  tcp" in check.stdout and " ok " in check.stdout and "Linux" in check.stdout
    first = boot_id(lab)

    result = otto("reboot", "board1", "--hard", "--timeout", "120", lab=lab)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("board1: hard (power cycle) reboot up again after ")
    second = boot_id(lab)
    assert second != first  # a new boot, not the old system still answering

    start = time.monotonic()
    result = otto("--json", "reboot", "board1", "--timeout", "120", lab=lab)
    assert result.returncode == 0, result.stdout
    doc = json.loads(result.stdout)
    assert doc["ok"] is True and doc["hard"] is False and doc["waited"] is True
    assert doc["seconds"] <= time.monotonic() - start
    assert boot_id(lab) not in (first, second)

    child = spawn_console(lab, "board1")  # the raw TCP line itself, as the last user left it
    # otto run left its (prompt-less) shell logged in on the line: leave it for the login
    child.send("exit\n")
    if child.expect(["login: ", "assword: "]) == 1:  # it was at the login prompt already
        child.send("\r")
        child.expect("login: ")
    child.send(f"{board.user}\r")
    child.expect("assword: ")
    child.send(f"{board.password}\r")
    child.expect(r"# ")
    child.send("echo sum=$((40+2))\r")
    child.expect("sum=42")
    child.send("exit\r")  # the board's getty asks again: the line stays open
    child.expect("login: ")
    leave_and_check_restored(child)

    result = otto(
        "reboot", "board1", "--timeout", "1", lab=lab
    )  # the wait is bounded and says what it awaited
    assert result.returncode == 1
    assert "reboot failed" in result.stdout and "1s" in result.stdout


def test_power_status_of_a_board_through_qmp(boards: Callable[..., Board], tmp_path: Path) -> None:
    board = boards("linux", console="tcp", on=False)
    lab = board_lab(tmp_path, board)
    assert otto("power", "board1", "status", lab=lab).stdout == "board1: power off\n"
    assert otto("power", "board1", "on", lab=lab).returncode == 0
    assert otto("power", "board1", "status", lab=lab).stdout == "board1: power on\n"
