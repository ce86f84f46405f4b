"""B5-B23 of the behaviour contract (docs/behaviour.md), run on every host kind.

``any_host`` (conftest.py) gives each test a local host (bash on pipes and on a pty),
an SSH host on a real sshd (pipes and pty), a telnet console behind busybox telnetd
with ``/bin/login``, and a serial line (a pty) with a getty and ``login``. The few
statements a serial line meets differently (it carries one shell) say so inline.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import math
import os
import re
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
from host_kinds import is_serial

from pytest_otto import (
    CommandFailed,
    ExpectTimeout,
    Host,
    HostConnectionError,
    LineHeld,
    OttoTimeout,
    SendTimeout,
    Session,
    ShellResetWarning,
    Status,
    TransferFailed,
)

#: Bound on waiting for what must happen: far above any plausible delay, so only a
#: broken behaviour comes near it. Speed is measured in benchmarks/, never here.
PATIENCE = 120.0


@dataclass(frozen=True)
class Volume:
    """How much output and data the volume tests move (a serial line gets less, see B10)."""

    line_bytes: int = 1_000_000
    lines: int = 200_000
    transfer_bytes: int = 200_000


#: A serial line (like a UART without RTS/CTS) drops what the reader does not drain in
#: time: output of megabytes at full speed is not what a serial console can promise.
SERIAL_VOLUME = Volume(line_bytes=20_000, lines=3000, transfer_bytes=6_000)


@pytest.fixture
def volume(any_host: Host) -> Volume:
    """How much the volume tests (B10, B23) move: less on a serial line."""
    return SERIAL_VOLUME if is_serial(any_host) else Volume()


def unique() -> str:
    """A token no other test or process uses."""
    return uuid.uuid4().hex[:12]


def unique_sleep() -> str:
    """A ``sleep`` argument no other process uses.

    It lives in the sleeping process's own command line, so it survives the shells'
    exec of a last command (a token in a comment or a wrapper would vanish with it).
    """
    return f"1000.{uuid.uuid4().int % 10**8:08d}"


async def sleeping(host: Host, duration: str) -> str:
    """PIDs of processes running ``sleep <duration>`` on ``host`` (the pattern cannot match itself)."""
    pattern = "sleep " + duration.replace(".", "\\.")
    return (await host.oneshot(f"pgrep -f '{pattern}' || true")).output


async def wait_until(predicate: object, seconds: float = PATIENCE) -> bool:
    """Poll an async or sync predicate until true or ``seconds`` pass.

    A wait, not a measure of speed: the bound only keeps a broken test from hanging.
    """
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()  # type: ignore[operator]
        if asyncio.iscoroutine(value):
            value = await value
        if value or time.monotonic() > deadline:
            return bool(value)
        await asyncio.sleep(0.1)


async def wait_for_process(host: Host, args: str, seconds: float = PATIENCE) -> bool:
    """Whether a process whose command line is exactly ``args`` runs on ``host`` within ``seconds``."""

    async def running() -> bool:
        return args in (await host.oneshot("ps -eo args")).output.splitlines()

    return await wait_until(running, seconds)


async def gone(host: Host, duration: str, seconds: float = PATIENCE) -> bool:
    """Whether ``sleep <duration>`` disappears from ``host`` within ``seconds``.

    A wait, not a measure of speed: a process that was not ended stays for 1000 s.
    """

    async def ended() -> bool:
        return await sleeping(host, duration) == ""

    return await wait_until(ended, seconds)


async def timeout_spares_older_jobs_and_close_ends_them(host: Host) -> None:
    """A timeout is Ctrl-C: it stops the command, not jobs started before, and the shell
    keeps its state; closing ends those jobs. Called by the suites whose transports
    promise it (a console's close leaves the line, and what runs there, to the device)."""
    background, foreground = unique_sleep(), unique_sleep()
    await host.run("cd /tmp")
    await host.run(f"sleep {background} >/dev/null 2>&1 &")  # the next command follows within a tick
    entry = (await host.run(f"sleep {foreground}", timeout=1)).only
    assert entry.output.startswith("Command timed out after 1")
    assert (await host.run("pwd")).only.output == "/tmp"
    assert await sleeping(host, foreground) == ""
    assert await sleeping(host, background) != ""
    await host.close()
    assert await gone(host, background)


def barrier_command(directory: str, index: int | str, parties: int) -> str:
    """A command that checks in at ``directory`` and waits (PATIENCE at most) until ``parties`` have.

    ``index`` names this party (``"$$"``: its shell's pid). It prints how many had
    checked in when it stopped waiting: ``parties`` only if the
    commands ran at the same time. A proof of concurrency that a slow login or a busy
    machine cannot fail, unlike a bound on the wall clock.
    """
    return (
        f"touch {directory}/{index}; n=0; "
        f'while [ "$(ls {directory} | wc -l)" -lt {parties} ] && [ $n -lt {int(PATIENCE / 0.05)} ]; '
        "do sleep 0.05; n=$((n+1)); done; "
        f"ls {directory} | wc -l"
    )


async def test_sleeping_finds_a_running_sleep(any_host: Host) -> None:
    # the control for the leftover checks below: a live sleep is found, a dead one is not
    duration = unique_sleep()
    await any_host.run(f"sleep {duration} >/dev/null 2>&1 &")
    # the job's fork may not have exec'd sleep yet when run() returns: wait for it
    assert await wait_until(lambda: sleeping(any_host, duration))
    await any_host.run(f"kill %1 2>/dev/null || pkill -f 'sleep {duration}'")
    assert await gone(any_host, duration)


# -- B5, B6: run() results -------------------------------------------------------------


async def test_exit_codes_b5(any_host: Host) -> None:
    ok = (await any_host.run("true")).only
    assert ok.command == "true"
    assert (ok.status, ok.retcode) == (Status.Success, 0)
    for code in (1, 7, 255):
        entry = (await any_host.run(f"(exit {code})")).only
        assert entry.command == f"(exit {code})"
        assert (entry.status, entry.retcode) == (Status.Failed, code)


async def test_list_runs_in_order_after_failure_b6(any_host: Host) -> None:
    result = await any_host.run(["echo first", "false", "echo third", "(exit 4)", "echo fifth"])
    assert [s.command for s in result.statuses] == [
        "echo first",
        "false",
        "echo third",
        "(exit 4)",
        "echo fifth",
    ]
    assert [s.output for s in result.statuses] == ["first", "", "third", "", "fifth"]
    assert [s.retcode for s in result.statuses] == [0, 1, 0, 4, 0]
    assert result.status is Status.Failed
    assert not result


# -- B7: state persists ------------------------------------------------------------------


async def test_state_persists_b7(any_host: Host) -> None:
    await any_host.run(["cd /tmp", "export OTTO_V=1", "f() { echo from-f; }"])
    result = await any_host.run(["pwd", "echo $OTTO_V", "f"])
    assert [s.output for s in result.statuses] == ["/tmp", "1", "from-f"]


def test_state_persists_across_asyncio_run_b7(any_host: Host) -> None:
    asyncio.run(any_host.run("cd /tmp"))
    asyncio.run(any_host.run("export OTTO_ACROSS=yes"))
    result = asyncio.run(any_host.run(["pwd", "echo $OTTO_ACROSS"]))
    assert [s.output for s in result.statuses] == ["/tmp", "yes"]
    # and the blocking twin sees the same shell
    assert any_host.run_sync("pwd").only.output == "/tmp"


# -- B8: output ------------------------------------------------------------------------------


async def test_output_merges_stderr_in_order_b8(any_host: Host) -> None:
    entry = (await any_host.run("echo one; echo two >&2; echo three; echo four >&2")).only
    assert entry.output == "one\ntwo\nthree\nfour"


async def test_output_normalised_b8(any_host: Host) -> None:
    assert (await any_host.run("printf 'a\\r\\nb\\r\\n'")).only.output == "a\nb"
    assert (await any_host.run("printf 'x\\n\\n\\n'")).only.output == "x"
    assert (await any_host.run("printf foo")).only.output == "foo"
    assert (await any_host.run("printf '  indented\\n'")).only.output == "  indented"


async def test_no_framing_or_echo_in_output_b8(any_host: Host, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="pytest_otto")
    token = unique()
    entry = (await any_host.run(f"echo {token}")).only
    assert entry.output == token
    entry = (await any_host.run(f"true {token}")).only
    assert entry.output == ""
    for status in any_host.transcript:
        assert "OTTO_" not in status.output
        assert "__otto" not in status.output
    messages = [record.getMessage() for record in caplog.records]
    assert any(f"run true {token}" in m for m in messages)  # the log was captured
    for message in messages:  # what the host logged: the commands, not the framing
        assert "OTTO_" not in message and "__o" not in message, message


# -- B9: framing robustness ---------------------------------------------------------------


@pytest.mark.parametrize(
    "disturbance",
    [
        "PS1='custom> '",
        "PS2='more> '",
        "PROMPT_COMMAND='echo prompt-noise'",
        "stty echo",
        "set -x",
        "set -v",
        "echo with-comment # trailing comment",
        "sleep 0.2 &",
        "cat <<'EOF'\nline one\nline two\nEOF",
        "printf 'OTTO_%s_E_0\\n' deadbeefdeadbeef",
        "echo 'OTTO_0000000000000000_S'; echo '\nOTTO_0000000000000000_E_0'",
        "unalias -a",
        "shopt -u expand_aliases 2>/dev/null",
        "set -u",
    ],
    ids=[
        "PS1",
        "PS2",
        "PROMPT_COMMAND",
        "stty-echo",
        "set-x",
        "set-v",
        "comment",
        "background",
        "heredoc",
        "marker-shaped",
        "marker-lines",
        "unalias",
        "no-expand-aliases",
        "set-u",
    ],
)
async def test_framing_survives_b9(any_host: Host, disturbance: str) -> None:
    # it may fail (``stty`` without a terminal), but it must not end or hang the shell
    assert (await any_host.run(disturbance)).only.status is not Status.Error
    token = unique()
    result = await any_host.run([f"echo {token}", "(exit 5)", "printf no-newline"])
    first, second, third = result.statuses
    assert first.output.splitlines()[-1] == token
    assert token in first.output and "OTTO_" not in first.output
    assert (first.status, first.retcode) == (Status.Success, 0)
    assert (second.status, second.retcode) == (Status.Failed, 5)
    assert third.output.splitlines()[-1] == "no-newline"
    if disturbance != "set -x":  # xtrace shows the user's own commands, never the framing
        assert first.output == token
        assert third.output == "no-newline"
    else:  # ... and it stays on for the commands after the one that set it
        assert "eval" not in first.output and "__otto" not in first.output
        assert f"echo {token}" in first.output and "printf no-newline" in third.output


async def test_framing_spelled_out_after_its_aliases_are_gone_b9(any_host: Host) -> None:
    """The framed line uses aliases; a command that drops them leaves working stand-ins,
    the next lines are spelled out, and the shell's state is kept (no fresh shell)."""
    await any_host.run("cd /tmp; OTTO_KEPT=kept")
    dropped = await any_host.run(["unalias -a", 'echo "$OTTO_KEPT" $#', "(exit 4)", "pwd"])
    assert [(s.retcode, s.output) for s in dropped] == [(0, ""), (0, "kept 0"), (4, ""), (0, "/tmp")]


async def test_probe_without_aliases_keeps_a_shell_with_errexit_b9(any_host: Host) -> None:
    """The probe after raw I/O checks for the framing's aliases; where they are gone, its
    failing steps must not end a shell that runs with ``set -e`` (state kept, no warning)."""
    await any_host.run(["cd /tmp", "unalias -a", "set -e"])
    await any_host.send("true\n")  # raw I/O: the next command is preceded by a probe
    with warnings.catch_warnings():
        warnings.simplefilter("error", ShellResetWarning)
        assert (await any_host.run("pwd")).only.output == "/tmp"
    await any_host.run("set +e")


async def test_aliases_defined_by_a_command_work_in_later_commands_b7(any_host: Host) -> None:
    await any_host.run("alias otto_greet='echo hello from an alias'")
    assert (await any_host.run("otto_greet")).only.output == "hello from an alias"


async def test_xtrace_switched_on_by_raw_input_stays_out_of_the_framing_b9(any_host: Host) -> None:
    await any_host.send("set -x\n")  # not through run(): the framing never saw it coming
    token = unique()
    entry = (await any_host.run(f"echo {token}")).only
    assert entry.output.splitlines()[-1] == token
    assert "eval" not in entry.output and "__otto" not in entry.output and "OTTO_" not in entry.output
    assert f"echo {token}" in entry.output  # xtrace still traces the user's own commands
    await any_host.run("set +x")
    assert (await any_host.run(f"echo {token}")).only.output == token


async def test_xtrace_keeps_the_framing_out_with_any_ps4_b8_b9(any_host: Host) -> None:
    """With xtrace on, the end function's own trace is cut from the output: after a
    line the command did not end, under a custom PS4, and after output too big to
    keep in memory before the end marker arrives."""
    try:
        await any_host.run("PS4='trace> '; set -x")
        token = unique()
        # (bash doubles PS4's first character inside eval: "ttrace> ")
        entry = (await any_host.run(f"printf {token}")).only
        assert entry.output.endswith(f"trace> printf {token}\n{token}")
        assert entry.output.count("\n") == 1
        entry = (await any_host.run(f"echo {token}")).only
        assert entry.output.endswith(f"trace> echo {token}\n{token}")
        assert entry.output.count("\n") == 1
        big = (await any_host.run(f"seq 1 20000; printf {token}", timeout=PATIENCE)).only
        assert big.output.endswith(f"\n20000\n{big.output.splitlines()[-2]}\n{token}")
        assert big.output.count("\n") == 20002  # two trace lines and 20000 numbers
        # a PS4 that expands differently each time: the call's whole line goes
        await any_host.run("PS4='+ $(echo x$((__n=${__n:-0}+1))) '")
        entry = (await any_host.run(f"echo {token}")).only
        assert entry.output.splitlines()[-1] == token
        assert "__o" not in entry.output and "OTTO_" not in entry.output and "set +xv" not in entry.output
    finally:
        await any_host.run("set +x; PS4='+ '")
    assert (await any_host.run(f"printf {token}")).only.output == token


def _error_lines(output: str, what: str) -> list[str]:
    """The line numbers the shell gave its error about ``what`` ("" where it gave none)."""
    found = re.findall(rf"^\S*(?:bash|main): (?:eval: )?(?:line (\d+): )?{what}", output, re.MULTILINE)
    assert found, output
    return found


async def test_a_shell_error_names_the_commands_own_line_b8(any_host: Host) -> None:
    """bash on pipes numbers its errors by the input line it read them from, which in a
    session counts the framing and every earlier command: the numbers come back as the
    command's own (line 1 of a one-line command), as ``bash -c`` gives them. On a pty or
    a console bash is interactive and gives none; nowhere the framing's line."""
    for _ in range(3):  # input lines pile up: still the command's own numbers
        assert _error_lines((await any_host.run("otto_missing_1")).only.output, "otto_missing_1") in (
            ["1"],
            [""],
        )
    multi = (await any_host.run("true\necho two\notto_missing_3 || :\n(exit 5)")).only
    assert (multi.retcode, multi.output.splitlines()[0]) == (5, "two")
    assert _error_lines(multi.output, "otto_missing_3") in (["3"], [""])
    defined = (await any_host.run("otto_f() {\n  otto_missing_in_f\n}; otto_f")).only
    assert _error_lines(defined.output, "otto_missing_in_f") in (["2"], [""])
    unbalanced = (await any_host.run("echo 'open")).only
    assert _error_lines(unbalanced.output, "unexpected EOF") in (["1"], [""])
    # a script the command runs keeps its own numbers
    script = (await any_host.run("printf 'true\\n\\notto_missing_in_script\\n' | bash")).only
    assert re.search(r"^bash: line 3: otto_missing_in_script", script.output, re.MULTILINE), script.output
    numbered = _error_lines((await any_host.run("otto_missing_1")).only.output, "otto_missing_1")
    on_pipes = any_host.transport_name in ("local", "ssh") and not getattr(any_host, "pty", True)
    assert numbered == (["1"] if on_pipes else [""])


async def test_heredoc_output_b9(any_host: Host) -> None:
    entry = (await any_host.run("cat <<'EOF'\nline one\n$HOME stays literal\nEOF")).only
    assert entry.output == "line one\n$HOME stays literal"


async def test_unbalanced_quote_is_an_error_not_a_hang_b9(any_host: Host) -> None:
    entry = (await any_host.run("echo 'unterminated", timeout=PATIENCE)).only
    assert entry.status is Status.Failed
    assert (await any_host.run("echo fine")).only.output == "fine"


async def test_failed_exec_fails_the_command_and_keeps_a_bash_b9(any_host: Host) -> None:
    """bash without a terminal would exit on a failed ``exec``; with execfail it fails the command."""
    if (await any_host.run("echo ${BASH_VERSION:+bash}")).only.output != "bash":
        pytest.skip("execfail is bash's; other shells end on a failed exec, as in a script")
    await any_host.run("cd /tmp; OTTO_KEPT=kept")
    entry = (await any_host.run("exec /nonexistent/otto-command")).only
    assert (entry.status, entry.retcode) == (Status.Failed, 127)
    assert (await any_host.run('pwd; echo "$OTTO_KEPT"')).only.output == "/tmp\nkept"


# -- B10: binary and large output ---------------------------------------------------------


async def test_binary_output_b10(any_host: Host) -> None:
    entry = (await any_host.run("head -c 4096 /dev/urandom")).only
    assert entry.status is Status.Success
    assert isinstance(entry.output, str) and len(entry.output) > 1000
    assert (await any_host.run("echo after-binary")).only.output == "after-binary"


async def test_every_byte_value_comes_back_decoded_with_replacement_b10(any_host: Host) -> None:
    """All 256 byte values, twice, exactly as UTF-8 with replacement decodes them (the test
    servers run on this machine, so the host reads the file written here)."""
    data = bytes(range(256)) * 2
    path = Path(f"/tmp/otto-bytes-{unique()}")
    path.write_bytes(data)
    path.chmod(0o644)
    try:
        entry = (await any_host.run(f"cat {path}")).only
    finally:
        path.unlink()
    assert entry.status is Status.Success
    assert entry.output == data.decode("utf-8", "replace")
    assert (await any_host.run("echo after-bytes")).only.output == "after-bytes"


async def test_one_megabyte_line_b10(any_host: Host, volume: Volume) -> None:
    size = volume.line_bytes
    entry = (await any_host.run(f"head -c {size} /dev/zero | tr '\\0' a")).only
    assert entry.status is Status.Success
    assert entry.output == "a" * size


async def test_many_lines_b10(any_host: Host, volume: Volume) -> None:
    count = volume.lines
    entry = (await any_host.run(f"seq 1 {count}")).only
    lines = entry.output.split("\n")
    assert len(lines) == count
    assert lines[0] == "1" and lines[-1] == str(count)
    middle = count * 617 // 1000
    assert lines[middle] == str(middle + 1)


async def test_output_cap_is_visible(any_host: Host) -> None:
    any_host.max_output = 1000
    entry = (await any_host.run("seq 1 10000")).only
    assert entry.status is Status.Success
    assert entry.output.startswith("1\n2\n3\n")
    assert "output truncated" in entry.output
    assert len(entry.output) < 1500
    assert (await any_host.run("echo small")).only.output == "small"


async def test_long_commands_reach_a_small_shell_whole_pitfall_12(any_host: Host) -> None:
    """BusyBox ash's line editor cuts typed lines near 1 KiB on a terminal, and what runs
    on the far end of a terminal is not known: there, longer commands go in acknowledged
    pieces (on pipes a shell reads lines of any length). Without the pieces, the cut line
    leaves ash waiting for a closing quote and the command times out."""
    await any_host.send("exec busybox sh\n")  # typed: run() gives commands /dev/null as stdin
    assert (await any_host.run("echo $0")).only.output == "sh"
    for size in (1500, 10_000):
        entry = (await any_host.run(f"echo {'x' * size} | wc -c; echo done", timeout=PATIENCE)).only
        assert (entry.status, entry.output.split()) == (Status.Success, [str(size + 1), "done"])
        # the pieces' variable is emptied once the command ran: its text stays out of the shell
        assert (await any_host.run("echo ${#__otto_c}")).only.output == "0"


# -- B11, B12 ------------------------------------------------------------------------------------


async def test_stdin_reader_does_not_hang_b11(any_host: Host) -> None:
    # A reader left waiting on the terminal would meet the timeout: cat would be an Error
    # ("Command timed out"), the others skipped, so the statuses below show a hang.
    result = await any_host.run(["cat", "read line; echo got:$line", "wc -c"], timeout=PATIENCE)
    cat, read, wc = result.statuses
    assert cat.status is Status.Success and cat.output == ""
    assert read.output == "got:"
    assert wc.output.strip() == "0"


async def test_concurrent_runs_are_serialised_b12(any_host: Host) -> None:
    async def one(i: int) -> str:
        return (await any_host.run(f"echo start-{i}; sleep 0.05; echo end-{i}")).only.output

    outputs = await asyncio.gather(*(one(i) for i in range(6)))
    assert outputs == [f"start-{i}\nend-{i}" for i in range(6)]


async def test_concurrent_command_lists_do_not_interleave_b12(any_host: Host) -> None:
    """A list is one call: another call's commands cannot run between its commands."""

    async def one(directory: str) -> list[str]:
        result = await any_host.run([f"cd {directory}", "sleep 0.1", "pwd"])
        return [s.output for s in result.statuses]

    outputs = await asyncio.gather(one("/tmp"), one("/"), one("/tmp"))
    assert outputs == [["", "", "/tmp"], ["", "", "/"], ["", "", "/tmp"]]


# -- B13-B17: timeouts, cancellation, recovery ------------------------------------------


@pytest.mark.parametrize("bad", [None, math.nan, -1, 0, True, False, "5"])
async def test_invalid_timeouts_raise_before_sending_b13(any_host: Host, tmp_path: Path, bad: object) -> None:
    marker = tmp_path / f"sent-{unique()}"
    with pytest.raises((TypeError, ValueError)):
        await any_host.run(f"touch {marker}", timeout=bad)
    with pytest.raises((TypeError, ValueError)):
        await any_host.oneshot(f"touch {marker}", timeout=bad)
    assert not marker.exists()
    assert len(any_host.transcript) == 0


async def test_default_timeout_is_read_at_call_time_b13(any_host: Host) -> None:
    duration = unique_sleep()  # outlives any wait: only the 1 s timeout set below ends it
    any_host.command_timeout = 1
    # a run the timeout did not end would meet PATIENCE and fail here instead of hanging
    entry = (await asyncio.wait_for(any_host.run(f"sleep {duration}"), PATIENCE)).only
    assert entry.status is Status.Error
    assert entry.output.startswith("Command timed out after 1s")
    assert await gone(any_host, duration)


async def test_infinite_timeout_disables_bound_b13(any_host: Host) -> None:
    entry = (await any_host.run("sleep 0.3; echo done", timeout=float("inf"))).only
    assert (entry.status, entry.output) == (Status.Success, "done")
    assert (await any_host.oneshot("echo one", timeout=float("inf"))).output == "one"


async def test_timeout_kills_command_and_keeps_shell_b14(any_host: Host) -> None:
    token, duration = unique(), unique_sleep()
    await any_host.run("cd /tmp")
    # a pipeline with a grandchild: the whole process group must go; a run the timeout
    # did not end would meet PATIENCE and fail here instead of hanging
    command = f"echo before-{token}; sh -c 'sleep {duration}; true' | cat"
    entry = (await asyncio.wait_for(any_host.run(command, timeout=1), PATIENCE)).only
    assert entry.status is Status.Error
    assert entry.retcode == -1
    assert entry.output.startswith("Command timed out after 1")
    assert f"before-{token}" in entry.output
    assert (await any_host.run("echo ok")).only.output == "ok"
    assert (await any_host.run("pwd")).only.output == "/tmp"
    assert await sleeping(any_host, duration) == ""


async def test_timeout_of_a_command_that_ignores_ctrl_c_keeps_the_shell_b14(any_host: Host) -> None:
    """The harder recovery step ends a command that ignores SIGINT (a REPL, ``trap '' INT``)
    and spares the shell: its cwd and variables are still there, and no reset is warned of."""
    duration = unique_sleep()
    await any_host.run(["cd /tmp", "export OTTO_KEPT=k1"])
    command = f"bash -c \"trap '' INT; sleep {duration}\""
    entry = (await asyncio.wait_for(any_host.run(command, timeout=1), PATIENCE)).only
    assert (entry.status, entry.retcode) == (Status.Error, -1)
    assert "replaced" not in entry.output
    with warnings.catch_warnings():
        warnings.simplefilter("error", ShellResetWarning)
        assert (await any_host.run("pwd; echo $OTTO_KEPT")).only.output == "/tmp\nk1"
    assert await sleeping(any_host, duration) == ""


async def test_list_shares_one_budget_b15(any_host: Host) -> None:
    result = await any_host.run(["echo quick", "sleep 30", "echo never", "echo never-either"], timeout=1.5)
    quick, slow, never, never_either = result.statuses
    assert (quick.status, quick.output) == (Status.Success, "quick")
    assert slow.status is Status.Error and slow.output.startswith("Command timed out after 1.5")
    for skipped in (never, never_either):
        assert (skipped.status, skipped.retcode) == (Status.Error, -1)
        assert skipped.output == "Skipped: timeout budget exhausted"
    assert result.status is Status.Error


async def test_external_cancellation_leaves_host_usable_b16(any_host: Host) -> None:
    await any_host.run("cd /tmp")
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(any_host.run("echo cancelled-output; sleep 30"), 0.5)
    for i in range(3):
        assert (await any_host.run(f"echo after-{i}")).only.output == f"after-{i}"
    assert (await any_host.run("pwd")).only.output == "/tmp"


async def test_cancelled_run_stops_its_command_at_once_pitfall_10(any_host: Host) -> None:
    """A caller that gives up on a run does not leave the command running until the next
    call on the session: nothing is called on it here until the command is gone."""
    duration = unique_sleep()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(any_host.run(f"sh -c 'sleep {duration}; true' | cat"), 0.5)
    assert await gone(any_host, duration)  # looked up by oneshot, another process
    assert (await any_host.run("echo after")).only.output == "after"


async def test_shell_exit_reported_and_replaced_b17(any_host: Host) -> None:
    await any_host.run("cd /tmp; export OTTO_GONE=1")
    entry = (await any_host.run("exit 3")).only
    assert entry.status is Status.Error and entry.retcode == -1
    assert "ended" in entry.output
    assert "exit code 3" in entry.output  # consoles learn it from the shell's EXIT trap
    with pytest.warns(ShellResetWarning, match="reset"):
        after = await any_host.run("echo ${OTTO_GONE:-unset}")
    assert after.only.output == "unset"


async def test_repl_cannot_fake_liveness_pitfall_3(any_host: Host) -> None:
    """A REPL left in the foreground reads (and may echo) the recovery probe: it must
    not pass for a shell. Leaving it takes the recovery's later steps (Ctrl-C, then a
    kill or Ctrl-\\), or a fresh shell."""
    await any_host.send("python3 -q -i\n")
    if any_host.transport_name != "serial":  # (a serial oneshot would go through the REPL's line)
        assert await wait_for_process(any_host, "python3 -q -i")  # or this test proves nothing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ShellResetWarning)
        entry = (await any_host.run("echo back-in-shell", timeout=30)).only
    assert (entry.status, entry.output) == (Status.Success, "back-in-shell")


async def test_unrecoverable_shell_after_timeout_b17(any_host: Host) -> None:
    # the shell itself is replaced by a process that outlives Ctrl-C: no shell can answer
    entry = (await any_host.run("exec sh -c 'trap \"\" INT; sleep 1000'", timeout=1)).only
    assert entry.status is Status.Error
    assert entry.output.startswith("Command timed out after 1")
    assert "replaced by a fresh shell" in entry.output
    with pytest.warns(ShellResetWarning):
        assert (await any_host.run("echo fresh")).only.output == "fresh"


# -- B19, B20: oneshot ------------------------------------------------------------------------


async def test_oneshot_results_b19(any_host: Host) -> None:
    ok = await any_host.oneshot("echo out; echo err >&2")
    assert (ok.command, ok.output, ok.status, ok.retcode) == (
        "echo out; echo err >&2",
        "out\nerr",
        Status.Success,
        0,
    )
    failed = await any_host.oneshot("exit 9")
    assert (failed.status, failed.retcode) == (Status.Failed, 9)
    assert ok and ok.ok and not failed and not failed.ok


async def test_oneshot_shares_no_state_b19(any_host: Host) -> None:
    await any_host.run(["cd /tmp", "export OTTO_SESSION_ONLY=1"])
    await any_host.oneshot("export OTTO_ONESHOT=1; cd /")
    seen = await any_host.oneshot("echo ${OTTO_SESSION_ONLY:-unset} ${OTTO_ONESHOT:-unset}")
    assert seen.output == "unset unset"
    assert (await any_host.run("pwd; echo ${OTTO_ONESHOT:-unset}")).only.output == "/tmp\nunset"
    # nor the session's PATH, locale or functions (a serial oneshot starts from that shell)
    await any_host.run(['PATH="/otto-nowhere:$PATH"', "export LANG=C.OTTO", "env() { echo HIJACKED; }"])
    fresh = await any_host.oneshot('echo "$PATH" ${LANG:-unset}; env | grep -c ^PATH=')
    assert (
        fresh.status is Status.Success and "otto-nowhere" not in fresh.output and "C.OTTO" not in fresh.output
    )
    assert "HIJACKED" not in fresh.output


async def test_oneshot_stdin_is_empty_b19(any_host: Host) -> None:
    entry = await any_host.oneshot("wc -c", timeout=PATIENCE)
    assert (entry.status, entry.output.strip()) == (Status.Success, "0")


async def test_oneshot_timeout(any_host: Host) -> None:
    duration = unique_sleep()
    entry = await any_host.oneshot(f"echo early; sleep {duration}", timeout=1)
    assert (entry.status, entry.retcode) == (Status.Error, -1)
    assert entry.output.startswith("Command timed out after 1s")
    assert "early" in entry.output
    assert await sleeping(any_host, duration) == ""


async def test_oneshot_leaves_a_background_job_running_b19(any_host: Host) -> None:
    """A oneshot that starts a job in the background (``daemon &``) returns when its command
    is done, with its output, and the job lives on: it is neither waited for nor killed."""
    duration = unique_sleep()
    started = await asyncio.wait_for(any_host.oneshot(f"sleep {duration} & echo started"), PATIENCE)
    assert (started.status, started.output) == (Status.Success, "started")
    assert await sleeping(any_host, duration) != ""
    await any_host.oneshot(f"pkill -f 'sleep {duration}'")


async def test_oneshots_run_concurrently_b20(any_host: Host) -> None:
    """Five oneshots gathered all run at once: each waits until all five have started.
    A serial line has one shell: its oneshots run one after the other instead."""
    if is_serial(any_host):
        await oneshots_on_one_line_take_turns(any_host)
        return
    directory = f"/tmp/otto-b20-{uuid.uuid4().hex}"
    await any_host.oneshot(f"mkdir {directory}")
    try:
        commands = [barrier_command(directory, i, 5) for i in range(5)]
        # the barrier gives up (and says so in its output) before the oneshots' timeout ends it
        results = await asyncio.gather(*(any_host.oneshot(c, timeout=2 * PATIENCE) for c in commands))
    finally:
        await any_host.oneshot(f"rm -rf {directory}")
    assert [(r.status, r.output.strip()) for r in results] == [(Status.Success, "5")] * 5


async def oneshots_on_one_line_take_turns(host: Host) -> None:
    """B20 on a line that carries one shell: gathered oneshots all succeed, one at a time
    (no one's run overlaps another's, by the clock of the device itself)."""
    stamp = "$(date +%s%N)"
    results = await asyncio.gather(
        *(host.oneshot(f"echo {stamp}; sleep 0.2; echo {i} {stamp}", timeout=PATIENCE) for i in range(5))
    )
    assert all(r.status is Status.Success for r in results), results
    spans = sorted((int(r.output.split()[0]), int(r.output.split()[-1])) for r in results)
    assert [r.output.split()[1] for r in results] == [str(i) for i in range(5)]
    assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans)), spans


# -- B21, B22: named sessions, send/expect ------------------------------------------------


async def named_sessions_are_independent(host: Host) -> None:
    """B21's checks; console suites call it for the hosts that have several shells."""
    await host.run("cd /tmp")
    async with await host.open_session("other") as other:
        await other.run("cd /; export OTTO_OTHER=1")
        assert (await other.run("pwd")).only.output == "/"
        assert (await host.run("pwd; echo ${OTTO_OTHER:-unset}")).only.output == "/tmp\nunset"
        assert other.is_open
    assert not other.is_open
    assert await host.open_session("again") is await host.open_session("again")


async def test_named_sessions_are_independent_b21(any_host: Host) -> None:
    if is_serial(any_host):
        await sessions_of_one_line_take_turns(any_host)
    else:
        await named_sessions_are_independent(any_host)


async def sessions_of_one_line_take_turns(host: Host) -> None:
    """B21 on a line that carries one shell: a named session opens only while no other
    session holds the line, and the error (`LineHeld`) says which one does."""
    await host.run("cd /tmp")
    with pytest.raises(LineHeld, match="held by session 'default'") as caught:
        await host.open_session("other")
    assert isinstance(caught.value, HostConnectionError)
    await host.close()  # frees the line: now a named session may have it
    async with await host.open_session("other") as other:
        assert (await other.run("echo on-the-line")).only.output == "on-the-line"
        with pytest.raises(LineHeld, match="held by session 'other'"):
            await host.run("true")
    assert not other.is_open
    assert (await host.run("echo default-again")).only.output == "default-again"


async def host_close_closes_every_session(host: Host) -> None:
    """B21's close: every session of ``host`` ends, and the next call opens a fresh one."""
    one = await host.open_session("one")
    two = await host.open_session("two")
    await host.run("true")
    assert one.is_open and two.is_open and host.default_session.is_open
    await host.close()
    assert not one.is_open and not two.is_open and not host.default_session.is_open
    assert (await host.run("echo reopened")).only.output == "reopened"
    # a session the caller still holds stays the host's: used again, it is closed again
    assert (await one.run("echo one-again")).only.output == "one-again"
    assert await host.open_session("one") is one
    await host.close()
    assert not one.is_open


async def test_host_close_closes_every_session_b21(any_host: Host) -> None:
    if not is_serial(any_host):
        await host_close_closes_every_session(any_host)
        return
    session = await any_host.open_session("only")  # the line's one shell
    assert session.is_open
    await any_host.close()
    assert not session.is_open
    assert (await any_host.run("echo reopened")).only.output == "reopened"


async def test_close_hangs_up_a_call_in_flight_b21(any_host: Host) -> None:
    """B21's close hangs up: a command in flight ends at once with an Error saying the
    session was closed, and is gone; close() does not wait for it to finish."""
    duration = unique_sleep()
    running = asyncio.ensure_future(any_host.run(f"sleep {duration}; echo late"))
    await asyncio.sleep(0.5)  # let it start; had it not, close() would still end it
    await asyncio.wait_for(any_host.close(), PATIENCE)  # the bound only keeps a broken test from hanging
    try:
        result = (await asyncio.wait_for(running, PATIENCE)).only
        assert (result.status, result.retcode) == (Status.Error, -1)
        said = result.output
    except HostConnectionError as exc:  # closed while it was still logging in (a console)
        said = str(exc)
    assert "was closed (close() was called)" in said
    assert await gone(any_host, duration)
    assert (await any_host.run("echo reopened")).only.output == "reopened"


async def send_expect(session: Session) -> None:
    """B22's checks; console suites call it with the session a console line offers."""
    await session.send("echo hello-$((40+2))\n")
    seen = await session.expect(r"hello-\d+", timeout=PATIENCE)
    assert seen.endswith("hello-42")
    # input typed with the command line, in one write, reaches the command reading
    # stdin (as on any terminal), not the shell: no waiting for the program first
    await session.send("read answer; echo you-said-$answer\nyes\n")
    assert (await session.expect("you-said-yes", timeout=PATIENCE)).endswith("you-said-yes")
    await session.send("read again; echo again-$again\n")
    await session.send("yes\n")
    assert (await session.expect("again-yes", timeout=PATIENCE)).endswith("again-yes")
    # framed commands still work after raw I/O, a line longer than a tty's line buffer too
    assert (await session.run("echo framed")).only.output == "framed"
    assert (await session.run("echo " + "x" * 6000 + " | wc -c")).only.output == "6001"


async def raw_session(host: Host, name: str) -> Session:
    """A session to drive with send/expect: a named one, or on a serial line its one shell."""
    return host.default_session if is_serial(host) else await host.open_session(name)


async def test_send_expect_b22(any_host: Host) -> None:
    await send_expect(await raw_session(any_host, "interactive"))


async def test_expect_timeout_carries_output_b22(any_host: Host) -> None:
    await any_host.send("echo partial-data\n")
    # expect's own timeout ends the wait; were it ignored, PATIENCE would, with another error
    with pytest.raises(ExpectTimeout) as caught:
        await asyncio.wait_for(any_host.expect("never-printed", timeout=0.5), PATIENCE)
    assert isinstance(caught.value, TimeoutError) and isinstance(caught.value, OttoTimeout)
    assert "partial-data" in caught.value.output
    assert (await any_host.run("echo recovered")).only.output == "recovered"


async def test_send_to_a_shell_that_stopped_reading_is_bounded_b13(any_host: Host) -> None:
    """Pitfall 1: while the shell runs a command that reads nothing, no more text fits in
    its input buffers than they hold; send() gives up after its timeout, naming the host,
    and the next command re-syncs with the shell (replacing it if it must). The text is
    8 MB of comment lines: whole lines fill a terminal's buffers (a terminal drops what
    goes beyond a line's 4 KiB), and what the shell reads later does nothing."""
    await any_host.send(f"sleep {unique_sleep()}\n")
    text = ("#" + "x" * 98 + "\n") * 80_000
    if any_host.transport_name == "serial":
        # Input to the serial line has no flow control here (as a UART without RTS/CTS):
        # what the far end cannot take is lost, so writing never waits and send()
        # returns. Text the far end drops would take Ctrl-C with it, and the line's
        # shell could not be reached until its command ends: send only what fits.
        await asyncio.wait_for(any_host.send(text[:1000], timeout=1), PATIENCE)
    else:
        with pytest.raises(SendTimeout, match=f"^{any_host.id}: send\\(\\) timed out after 1s") as caught:
            await asyncio.wait_for(any_host.send(text, timeout=1), PATIENCE)
        assert isinstance(caught.value, TimeoutError)  # ``except TimeoutError`` still catches it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ShellResetWarning)
        assert (await any_host.run("echo ok")).only.output == "ok"


async def test_send_writes_exactly_b22(any_host: Host) -> None:
    session = await raw_session(any_host, "exact")
    token = unique()  # on a line with earlier output, the match must be this command's
    await session.send(f"printf '%s|' 'a  b' \"c'd\" {token}; echo\n")
    seen = await session.expect(rf"{token}\|\r?\n", timeout=PATIENCE)
    assert seen.strip().endswith(f"a  b|c'd|{token}|")


# -- B23: transfers --------------------------------------------------------------------------


async def test_put_get_round_trip_b23(any_host: Host, tmp_path: Path, volume: Volume) -> None:
    src = tmp_path / "src"
    src.mkdir()
    payload = os.urandom(volume.transfer_bytes) + b"\x00\xff\r\n"
    (src / "blob.bin").write_bytes(payload)
    (src / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (src / "run.sh").chmod(0o751)
    remote_dir = f"/tmp/otto-{unique()}"
    status, message = await any_host.put([src / "blob.bin", src / "run.sh"], remote_dir)
    assert (status, message) == (Status.Success, "")
    check = await any_host.oneshot(f"sha256sum {remote_dir}/blob.bin; stat -c %a {remote_dir}/run.sh")
    assert check.output.split()[0] == hashlib.sha256(payload).hexdigest()
    assert check.output.split()[-1] == "751"
    back = tmp_path / "back"
    status, message = await any_host.get(f"{remote_dir}/blob.bin", back)
    assert (status, message) == (Status.Success, "")
    assert (back / "blob.bin").read_bytes() == payload
    got = await any_host.get([f"{remote_dir}/run.sh"], back)
    assert got and got.ok and got.status is Status.Success
    assert (back / "run.sh").stat().st_mode & 0o777 == 0o751
    await any_host.oneshot(f"rm -rf {remote_dir}")


async def test_check_turns_a_failed_command_into_command_failed(any_host: Host) -> None:
    """``check()`` (as httpx's ``raise_for_status``): a failed command stays a result until
    the caller asks for an exception; every command of the list still ran."""
    result = await any_host.run(["echo first", "echo out; exit_code() { return 3; }; exit_code", "echo last"])
    assert [s.output for s in result] == ["first", "out", "last"]
    with pytest.raises(CommandFailed, match=r"exit_code\(\)"):
        result.check()
    try:
        result.check()
    except CommandFailed as exc:
        assert exc.result is result and exc.failed is result.statuses[1]
        assert "Failed, exit code 3; output: 'out'" in str(exc)
    ok = await any_host.run("true")
    assert ok.check() is ok
    status = await any_host.oneshot("echo gone; exit 4")
    with pytest.raises(CommandFailed, match="exit code 4; output: 'gone'"):
        status.check()
    assert (await any_host.oneshot("echo fine")).check().output == "fine"


async def test_put_get_copy_what_a_symlink_points_at_b23(any_host: Host, tmp_path: Path) -> None:
    """B23 on every host kind alike: a symlink is copied as the file it points at (as ``cp``
    does), never as a link to a path on the other machine."""
    (tmp_path / "real.txt").write_text("payload\n")
    (tmp_path / "link.txt").symlink_to(tmp_path / "real.txt")
    remote_dir = f"/tmp/otto-{unique()}"
    assert await any_host.put(tmp_path / "link.txt", remote_dir) == (Status.Success, "")
    assert (await any_host.oneshot(f"test -L {remote_dir}/link.txt || cat {remote_dir}/link.txt")).output == (
        "payload"
    )
    await any_host.oneshot(f"ln -s {remote_dir}/link.txt {remote_dir}/remote-link")
    back = tmp_path / "back"
    assert await any_host.get(f"{remote_dir}/remote-link", back) == (Status.Success, "")
    assert not (back / "remote-link").is_symlink() and (back / "remote-link").read_text() == "payload\n"
    await any_host.oneshot(f"rm -rf {remote_dir}")


async def test_transfer_failure_names_the_file_b23(any_host: Host, tmp_path: Path) -> None:
    missing = tmp_path / f"missing-{unique()}.bin"
    put = await any_host.put(missing, "/tmp")
    assert not put, put  # a failed transfer is false, so ``assert host.put(...)`` catches it
    with pytest.raises(TransferFailed, match=missing.name) as caught:
        put.check()
    assert caught.value.result is put
    status, message = put
    assert not status.is_ok
    assert missing.name in message
    got = await any_host.get(f"/nonexistent/{missing.name}", tmp_path)
    assert not got and not got.ok
    status, message = got
    assert not status.is_ok
    assert missing.name in message
    assert "no such file" in message.lower()  # the cause, in the same words on every host kind
