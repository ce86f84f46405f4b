"""The shell's own error lines, numbered as the user's command rather than the session's input.

A bash that is not interactive (a session on pipes: local or SSH without a pty)
prefixes its errors with the number of the input line it read them from::

    bash: line 57: nosuchcmd: command not found

In a session that input is every line typed since the shell started (the framing,
the probes, all earlier commands), so the number says nothing about the command.
The framing's end function reports the input line it was called from
(``BASH_LINENO``, see `pytest_otto.framing`), from which the session knows the
lines the command itself took; an error line of the shell's own (its name, ``$0``,
or ``main`` for a function the command defined) whose number falls on those lines
is renumbered from 1, as ``bash -c 'command'`` would number it::

    bash: line 1: nosuchcmd: command not found

An interactive shell (a pty, a console) never numbers its errors, so the same
command fails with the same words on every transport but for the line number,
which names the command's own line where there is one. Numbers outside the
command's lines (a script the command ran, a function defined by an earlier
command) are left as the shell printed them.
"""

from __future__ import annotations

import re

__all__ = ["renumber_errors"]

#: ``bash: line 5: ``, and ``bash: eval: line 5: `` for a syntax error in the command
_ERROR_LINE = re.compile(r"^(?P<name>[^\n:]+): (?P<eval>eval: )?line (?P<number>\d+): ", re.MULTILINE)


def renumber_errors(output: str, shell_names: tuple[str, ...], first_line: int, line_count: int) -> str:
    """``output`` with the shell's error lines numbered from the command's first line.

    ``shell_names``: the names the shell prefixes its errors with; ``first_line``: the
    shell's number of the command's first input line; ``line_count``: how many lines
    the command has.
    """
    if ": line " not in output:
        return output

    def renumber(match: re.Match[str]) -> str:
        number = int(match["number"])
        if match["name"] not in shell_names or not first_line <= number < first_line + line_count:
            return match[0]
        return f"{match['name']}: {match['eval'] or ''}line {number - first_line + 1}: "

    return _ERROR_LINE.sub(renumber, output)
