"""The framing's pure parts: the lines it types and the markers it finds, without a shell.

The same framing against real shells (local bash, sshd, telnet, serial) is
test_behaviour.py (B8, B9).
"""

from __future__ import annotations

from pytest_otto.framing import EndMarker, find_end_marker, find_marker_line, frame_command, shell_quote
from pytest_otto.shell_errors import renumber_errors

END = b"\nOTTO_abc_7_E_"


def test_a_marker_line_is_found_only_once_whole() -> None:
    assert find_marker_line(b"echo... OTTO_abc_P_", b"OTTO_abc_P_") is None  # the line goes on
    buf = b"prompt$ printf OTTO_abc_P_hB_A\r\nnext"
    rest, line_end = find_marker_line(buf, b"OTTO_abc_P_") or (b"", -1)
    assert rest == b"hB_A" and buf[line_end:] == b"next"
    assert find_marker_line(b"nothing here\n", b"OTTO_abc_P_") is None


def test_the_end_marker_gives_code_flags_and_where_the_output_ends() -> None:
    buf = b"line one\r\nlast" + END + b"3_hB\r\nafter"
    found = find_end_marker(buf, END)
    assert isinstance(found, EndMarker)
    assert buf[: found.body_end] == b"line one\r\nlast"
    assert (found.code, found.flags) == (b"3", b"hB")
    assert buf[found.line_end :] == b"after"


def test_an_end_marker_not_yet_whole_says_where_it_starts() -> None:
    buf = b"output" + END + b"0_h"
    assert find_end_marker(buf, END) == len(b"output")  # wait for the rest of its line
    assert find_end_marker(b"output only", END) is None
    assert find_end_marker(buf, END, scan_from=len(buf)) is None  # scanned already


def test_a_marker_without_its_leading_newline_is_not_the_end() -> None:
    """The end marker starts a line: text that merely contains it (an echo) does not end the output."""
    assert find_end_marker(b"echo OTTO_abc_7_E_0_h\n", END) is None


def test_a_command_travels_as_one_quoted_word() -> None:
    line = frame_command("7", shell_quote("echo 'it''s' # not a comment &"), start_marker=True)
    assert line.startswith("__os 7; command eval 'echo ") and line.endswith(" &' </dev/null; __oe 7\n")
    assert "# not a comment" in line  # inside the quoted word, so no comment
    assert frame_command("8", "'x'", start_marker=False, aliases=True, xtrace=True) == (
        "__or 'set -x;''x'; __oe 8\n"
    )


def test_the_end_marker_carries_the_input_line_of_the_end_function() -> None:
    found = find_end_marker(b"out" + END + b"1_hB_42\n", END)
    assert isinstance(found, EndMarker) and (found.code, found.flags, found.input_line) == (b"1", b"hB", 42)
    spelled = find_end_marker(b"out" + END + b"0_hB_L_9\n", END)  # ran in the __or function
    assert isinstance(spelled, EndMarker) and (spelled.flags, spelled.input_line) == (b"hB_L", 9)
    no_bash = find_end_marker(b"out" + END + b"0_hB_\n", END)  # a shell without BASH_LINENO
    assert isinstance(no_bash, EndMarker) and (no_bash.flags, no_bash.input_line) == (b"hB", None)


def test_the_shells_own_error_lines_are_renumbered_from_the_commands_first_line() -> None:
    output = (
        "bash: line 57: nosuch: command not found\n"
        "bash: eval: line 58: unexpected EOF while looking for matching `''\n"
        "main: line 59: in_a_function: command not found\n"
        "bash: line 60: after the command's lines: left alone\n"
        "script.sh: line 57: another program's numbers: left alone\n"
        "echo bash: line 57: not at the start of a line"
    )
    assert renumber_errors(output, ("bash", "main"), 57, 3).splitlines() == [
        "bash: line 1: nosuch: command not found",
        "bash: eval: line 2: unexpected EOF while looking for matching `''",
        "main: line 3: in_a_function: command not found",
        "bash: line 60: after the command's lines: left alone",
        "script.sh: line 57: another program's numbers: left alone",
        "echo bash: line 57: not at the start of a line",
    ]
    unnumbered = "bash: nosuch: command not found"  # an interactive shell's
    assert renumber_errors(unnumbered, ("bash",), 5, 1) == unnumbered
