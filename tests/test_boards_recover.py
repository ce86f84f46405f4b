"""``recover = "power-cycle"`` in a pytest run, against a real QEMU board frozen with QMP ``stop``."""

from __future__ import annotations

import textwrap

from testlab.boards import Board


def test_a_frozen_board_is_power_cycled_and_the_next_tests_run(boards, pytester):
    board: Board = boards("linux", console="telnet")
    pytester.makefile(
        ".toml",
        lab=textwrap.dedent(
            f"""
            [hosts.board1]
            transport = "telnet"
            address = "{board.address}"
            port = {board.port}
            single_connection = true
            user = "root"
            password = "board123"
            connect_timeout = 60
            command_timeout = 30
            recover = "power-cycle"
            power = {{ qmp = "unix:{board.qmp_path}" }}
            """
        ),
    )
    pytester.makepyfile(
        textwrap.dedent(
            f"""
            from pytest_otto.power import qmp_execute

            BOOT_ID = "cat /proc/sys/kernel/random/boot_id"

            async def test_1_the_board_hangs(host):
                host.boot_timeout = 180
                assert (await host.run(BOOT_ID)).ok
                await qmp_execute("unix:{board.qmp_path}", "stop")  # frozen: no output, no input
                result = await host.run("echo still there", timeout=5)
                assert result.ok, result

            def test_2_runs_on_the_rebooted_board(host):
                assert host.run_sync("echo back").only.output == "back"
                assert host.run_sync("cut -d. -f1 /proc/uptime").ok
            """
        )
    )
    result = pytester.runpytest_subprocess("--lab", "lab.toml", "-p", "no:randomly", "-p", "no:xdist", "-rA")
    result.assert_outcomes(passed=1, failed=1)
    output = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            '*HostRecovered: board1 stopped answering (*); recover = "power-cycle": it was power-cycled'
            " and answers again after *s",
        ]
    )
    assert "::test_2_runs_on_the_rebooted_board[board1]" in output.split("PASSED", 1)[1]
    assert "power 'power cycle' -> Success" in output  # the transcript in the report shows it
