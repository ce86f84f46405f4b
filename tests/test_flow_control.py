"""Serial flow_control: the tty driver itself holds our output at XOFF (a pty pair stands in for the UART)."""

from __future__ import annotations

import asyncio
import os
import pty
import select
import termios
import tty

import pytest

from pytest_otto.transports.serial import SerialTransport


class _Sink:
    def feed(self, data: bytes) -> None:
        pass

    def feed_eof(self, exit_status: int | None, reason: str = "") -> None:
        pass


def _read_now(fd: int, wait: float) -> bytes:
    data = b""
    while select.select([fd], [], [], wait)[0]:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
        wait = 0.2
    return data


@pytest.mark.parametrize("flow_control", ["none", "xonxoff", "rtscts"])
async def test_flow_control_sets_the_line(flow_control):
    device_side, line = pty.openpty()  # `line` is the port we open; the device writes to the other end
    tty.setraw(device_side)
    try:
        transport = SerialTransport("dut", os.ttyname(line), flow_control=flow_control)
        await transport._connect()
        try:
            attrs = termios.tcgetattr(line)
            assert bool(attrs[0] & termios.IXON) == (flow_control == "xonxoff")
            assert bool(attrs[0] & termios.IXOFF) == (flow_control == "xonxoff")
            assert bool(attrs[2] & termios.CRTSCTS) == (flow_control == "rtscts")
        finally:
            await transport._hangup()
    finally:
        os.close(device_side)
        os.close(line)


async def test_xoff_from_the_device_holds_our_output_until_xon():
    device_side, line = pty.openpty()
    tty.setraw(device_side)
    try:
        transport = SerialTransport("dut", os.ttyname(line), flow_control="xonxoff")
        transport.sink = _Sink()
        await transport._connect()
        try:
            os.write(device_side, b"\x13")  # XOFF: the device's buffer is full
            await asyncio.sleep(0.2)
            sending = asyncio.ensure_future(transport._send(b"held back\n"))
            await asyncio.sleep(0.3)
            assert await asyncio.to_thread(_read_now, device_side, 0.5) == b""  # the driver holds it
            os.write(device_side, b"\x11")  # XON
            await asyncio.wait_for(sending, 10)
            assert await asyncio.to_thread(_read_now, device_side, 5.0) == b"held back\n"
        finally:
            await transport._hangup()
    finally:
        os.close(device_side)
        os.close(line)


def test_an_unknown_flow_control_is_refused():
    with pytest.raises(ValueError, match="flow_control must be one of none, rtscts, xonxoff, not 'hw'"):
        SerialTransport("dut", "/dev/null", flow_control="hw")
