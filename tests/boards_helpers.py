"""Helpers of the board tests: a pytest-otto host for a `testlab.boards.Board`."""

from __future__ import annotations

from typing import Any

from pytest_otto import SerialHost, TcpHost, TelnetHost
from pytest_otto.hosts.console import ConsoleHost
from pytest_otto.power import QmpPower
from testlab.boards import Board

#: Boards boot in seconds alone, but the machine is shared: generous bounds.
BOOT = 120.0


def board_host(board: Board, host_id: str = "board1", qmp: bool = True, **options: Any) -> ConsoleHost:
    """A host on ``board``'s console (telnet, tcp or pty) logging in as root, power through QMP."""
    options = {"user": board.user, "password": board.password, "connect_timeout": 30, **options}
    host: ConsoleHost
    if board.console == "telnet":
        assert board.port is not None
        host = TelnetHost(host_id, board.address, port=board.port, single_connection=True, **options)
    elif board.console == "tcp":
        assert board.port is not None
        host = TcpHost(host_id, board.address, port=board.port, **options)
    else:
        host = SerialHost(host_id, board.device, **options)
    if qmp:
        host.power_control = QmpPower(f"unix:{board.qmp_path}")
    host.boot_timeout = BOOT
    return host


def socat_qmp(board: Board, *commands: str) -> str:
    """A shell command that runs QMP ``commands`` on the board's power socket with socat."""
    lines = "".join(f'{{"execute":"{c}"}}\\n' for c in ("qmp_capabilities", *commands))
    return f"printf '{lines}' | socat -t 0.5 - UNIX-CONNECT:{board.qmp_path}"
