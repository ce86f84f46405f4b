"""The board keys of a lab file: power, bootloader, recover, flow_control and transport = "tcp"."""

from __future__ import annotations

import pytest

from pytest_otto import Lab, SerialHost, TcpHost, TelnetHost
from pytest_otto.bootloader import BootloaderConfig
from pytest_otto.config import LabError, parse_lab
from pytest_otto.power import CommandPower, QmpPower

BOARDS = """
[hosts.pdu-box]
address = "10.0.0.2"

[hosts.board1]
transport = "telnet"
address = "10.0.0.9"
port = 7001
single_connection = true
user = "root"
recover = "power-cycle"
vars = { outlet = 3 }

[hosts.board1.power]
via = "pdu-box"
on = "pdu-ctl --outlet {vars.outlet} on"
off = "pdu-ctl --outlet {vars.outlet} off"
status = "pdu-ctl --outlet {vars.outlet} status"
status_on = "ON"
off_delay = 2.5

[hosts.board1.bootloader]
interrupt = "Hit any key to stop autoboot"
interrupt_send = " "
prompt = "=> $"
boot = "run bootcmd"

[hosts.board2]
transport = "tcp"
address = "127.0.0.1"
port = 4001
power = { qmp = "unix:/run/boards/board2.qmp" }

[hosts.board3]
transport = "serial"
device = "/dev/ttyUSB0"
flow_control = "rtscts"
power = { qmp = "127.0.0.1:4444" }
"""


def test_a_lab_file_describes_boards_with_power_and_bootloader():
    lab = Lab.from_config(parse_lab(BOARDS))
    board1, board2, board3 = lab["board1"], lab["board2"], lab["board3"]
    assert isinstance(board1, TelnetHost) and board1.recover == "power-cycle"
    power = board1.power_control
    assert isinstance(power, CommandPower)
    assert power.via_name == "pdu-box" and power.off_delay == 2.5
    assert power.describe() == "commands on pdu-box"
    assert board1.bootloader_config == BootloaderConfig(boot="run bootcmd")
    assert isinstance(board2, TcpHost) and board2.one_line  # a raw console port: one connection
    assert isinstance(board2.power_control, QmpPower)
    assert board2.power_control.address == "unix:/run/boards/board2.qmp"
    assert isinstance(board3, SerialHost) and board3.flow_control == "rtscts"
    assert board3._make_shell_transport().flow_control == "rtscts"
    assert lab["pdu-box"].power_control is None
    # written back and read again: the same lab
    assert parse_lab(lab.config.to_toml()) == lab.config


@pytest.mark.parametrize(
    ("table", "key", "message"),
    [
        ('power = { on = "a" }', "power", "power.off: missing (power needs on and off commands, or qmp)"),
        ('power = { on = "a", off = "b", reboot = "c" }', "power", "power.reboot: unknown key"),
        ('power = { qmp = "unix:/q", on = "a" }', "power", "QMP power takes no other keys (got on)"),
        ('power = { qmp = "localhost" }', "power", 'neither "unix:PATH" nor "HOST:PORT"'),
        ('power = { on = "a", off = "b", status_on = "ON" }', "power", "status_on: needs a status command"),
        ('power = { on = "a", off = "b", status = "s", status_on = "(" }', "power", "not a valid regular"),
        ('power = { on = "a", off = "b", off_delay = -1 }', "power", "power.off_delay: expected a number"),
        ('recover = "reboot"', "recover", "expected one of 'power-cycle'"),
        ('bootloader = { prompt = "=> ", wait = 3 }', "bootloader", "bootloader.wait: unknown key"),
        ("bootloader = { line_limit = 4 }", "bootloader", "bootloader.line_limit: expected an integer >= 16"),
        ('flow_control = "rtscts"', "flow_control", "not valid for transport 'telnet'"),
    ],
)
def test_board_key_mistakes_name_the_host_and_the_key(table, key, message):
    text = f'[hosts.b1]\ntransport = "telnet"\naddress = "x"\n{table}\n'
    with pytest.raises(LabError) as info:
        parse_lab(text)
    assert info.value.host_id == "b1" and info.value.key == key
    assert message in str(info.value)


def test_mistakes_found_when_the_lab_is_built_name_host_and_key():
    missing_var = '[hosts.b1]\naddress = "x"\npower = { on = "pdu {vars.outlet} on", off = "pdu off" }\n'
    with pytest.raises(LabError, match=r"host 'b1': key 'power': power.on: \{vars.outlet\} is not in this"):
        Lab.from_config(parse_lab(missing_var))
    no_power = '[hosts.b1]\naddress = "x"\nrecover = "power-cycle"\n'
    with pytest.raises(LabError, match=r"host 'b1': key 'recover': needs power control: add a \[hosts"):
        Lab.from_config(parse_lab(no_power))
    unknown_via = '[hosts.b1]\naddress = "x"\npower = { via = "pdu", on = "a", off = "b" }\n'
    with pytest.raises(LabError, match=r"host 'b1': key 'power': power.via: no host 'pdu' in this lab"):
        Lab.from_config(parse_lab(unknown_via))


def test_tcp_and_serial_keys():
    with pytest.raises(LabError, match="a tcp host needs the console's port"):
        parse_lab('[hosts.c1]\ntransport = "tcp"\naddress = "127.0.0.1"\n')
    with pytest.raises(LabError, match="key 'flow_control': 'hw' is not one of none, rtscts, xonxoff"):
        parse_lab('[hosts.s1]\ntransport = "serial"\ndevice = "/dev/ttyS0"\nflow_control = "hw"\n')
    shared = parse_lab('[hosts.c1]\ntransport = "tcp"\naddress = "h"\nport = 7\nsingle_connection = false\n')
    assert not Lab.from_config(shared)["c1"].one_line
