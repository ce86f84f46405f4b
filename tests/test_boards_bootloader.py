"""The bootloader session against Debian's U-Boot on a QEMU board, booting Debian's Linux."""

from __future__ import annotations

import pytest
from boards_helpers import BOOT, board_host

from pytest_otto import Status
from pytest_otto.bootloader import BootloaderConfig, BootloaderError
from pytest_otto.reboot import AtBootloader
from testlab.boards import UBOOT_BOOT


async def test_stop_autoboot_run_commands_with_exit_codes_then_boot_linux(boards):
    board = boards("uboot", console="telnet", on=False)
    host = board_host(board)
    host.bootloader_config = BootloaderConfig(boot=UBOOT_BOOT)
    try:
        async with host.bootloader() as bl:  # power-cycles, stops the countdown, waits for '=> '
            version = await bl.run("version")
            assert version.ok and version.retcode == 0
            assert version.output.startswith("U-Boot 20")
            assert (await bl.run("false")) == ("false", "", Status.Failed, 1)
            unknown = await bl.run("nosuchcmd")
            assert unknown.retcode == 1 and "Unknown command 'nosuchcmd'" in unknown.output
            assert (await bl.run("setenv otto_x 41; echo x=$otto_x")).output == "x=41"
            assert (await bl.run("test 1 -eq 1")).retcode == 0
            await bl.send("echo typed by hand\r")
            assert "typed by hand" in await bl.expect(r"typed by hand\n")
            await bl.expect("=> ")
            await bl.boot(timeout=BOOT)
        uname = (await host.run("uname -sm; cat /proc/cmdline")).only
        assert uname.ok and uname.output.startswith("Linux x86_64")
        kinds = [e.kind for e in host.transcript]
        assert kinds[0] == "power" and kinds.count("bootloader") == 6
    finally:
        await host.close()


async def test_a_line_longer_than_the_bootloader_keeps_is_refused_and_never_runs(boards):
    board = boards("uboot", console="tcp", on=False)
    host = board_host(board)
    try:
        async with host.bootloader() as bl:
            long_line = "setenv otto_half 1; echo " + "x" * 575
            assert len(long_line) == 600
            refused = r"board1: bootloader command of 600 characters \(624 with the exit status echo\)"
            with pytest.raises(BootloaderError, match=refused + " refused before typing it: .* keeps 511"):
                await bl.run(long_line)
            # told a wrong limit, we type it: U-Boot rings BEL past 511 characters and keeps
            # the first 511; the echo check cancels the line with Ctrl-C instead of Enter
            bl.config = BootloaderConfig(line_limit=4096)
            with pytest.raises(BootloaderError, match=r"rang BEL or dropped .*cancelled with Ctrl-C"):
                await bl.run(long_line)
            bl.config = BootloaderConfig()
            never_set = await bl.run("printenv otto_half")
            assert never_set.retcode == 1 and "not defined" in never_set.output
            assert (await bl.run("echo still here")).output == "still here"
        # left at the prompt: waiting for the OS says so at once, not after the whole timeout
        with pytest.raises(AtBootloader, match=r"board1: tcp .* shows the bootloader's prompt \('=> '\)"):
            await host.wait_until_up(BOOT)
        board.freeze()  # U-Boot busy-polls its UART: no idle core burnt by a stopped test
    finally:
        await host.close()
