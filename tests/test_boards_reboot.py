"""Reboot with wait, and the waits' bounds, against real QEMU boards (telnet, pty, raw TCP consoles)."""

from __future__ import annotations

import os
import termios
import warnings

from boards_helpers import BOOT, board_host

from pytest_otto import ShellResetWarning

BOOT_ID = "cat /proc/sys/kernel/random/boot_id"


async def _boot_id(host):
    result = (await host.run(BOOT_ID)).only
    assert result.ok, result
    return result.output.strip()


async def _check_reboots(host):
    """Soft then hard reboot with wait: new boots, fresh sessions, no ShellResetWarning."""
    await host.run(["cd /tmp", "export OTTO_MARK=before"])
    named = await host.open_session("other") if not host.one_line else None
    first = await _boot_id(host)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ShellResetWarning)  # a reboot we asked for is no reset to warn of
        await host.reboot(timeout=BOOT)
        second = await _boot_id(host)
        state = (await host.run("pwd; echo ${OTTO_MARK-unset}")).only.output.split()
        if named is not None:
            assert (await named.run("echo fresh")).only.output == "fresh"
        await host.reboot(hard=True, timeout=BOOT)
        third = await _boot_id(host)
    assert len({first, second, third}) == 3
    assert state == ["/root", "unset"]
    kinds = [(e.kind, e.command) for e in host.transcript if e.kind == "power"]
    assert kinds == [("power", "power cycle")]


async def test_soft_and_hard_reboot_on_a_telnet_console(boards):
    host = board_host(boards("linux", console="telnet"))
    try:
        await host.wait_until_up(BOOT)
        await _check_reboots(host)
    finally:
        await host.close()


async def test_soft_and_hard_reboot_on_a_pty_serial_console_with_xonxoff(boards):
    board = boards("linux", console="pty")
    host = board_host(board, flow_control="xonxoff")
    try:
        await host.wait_until_up(BOOT)
        fd = os.open(board.device, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:  # the line's settings, as the host left them while it holds the line
            iflag = termios.tcgetattr(fd)[0]
        finally:
            os.close(fd)
        assert iflag & termios.IXON and iflag & termios.IXOFF
        await _check_reboots(host)
    finally:
        await host.close()
