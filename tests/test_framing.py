"""The framing's pure parts: the lines it types and the markers it finds, without a shell.

The same framing against real shells (local bash, sshd, telnet, serial) is
test_behaviour.py (B8, B9).
"""

from __future__ import annotations

from pytest_otto.framing import EndMarker, find_end_marker, find_marker_line, frame_command, shell_quote

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
