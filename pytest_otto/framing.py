"""The shell-session framing: the lines typed around each command and the markers found
in what comes back, written once for every transport. Pure text and bytes, no I/O: the
session (`pytest_otto.session`) writes these lines and waits for these markers.

How one command is framed (serial number ``K``, one more for each command)::

    __os K; command eval '<command>' </dev/null; __oe K

where ``__os K`` prints ``OTTO_<prefix>_K_S`` and ``__oe K`` prints
``OTTO_<prefix>_K_E_<exit code>_<$->`` on a line of its own: shell functions the
probe defines, with a fresh random prefix baked in each time (see `_functions`).
So every command gets a marker never used before (pitfall 4), while the line
carries only the serial. Where the shell expands the framing's alias (the probe
checks), the same line is typed as ``__os K; __or '<command>'; __oe K``.

- The markers only exist once the shell has expanded ``%s``: an echoed command line,
  a ``set -x`` trace or a REPL that prints its input can never show them (pitfalls 3, 5).
- The command travels as one single-quoted word and runs through ``command eval``
  (``command`` so that a syntax error in it cannot make a POSIX shell exit): a here-doc,
  a trailing ``# comment``, a trailing ``&`` or an unbalanced quote cannot swallow the
  end marker, and the whole line is read before anything runs, so a command that reads
  stdin cannot eat the framing. Its stdin is ``/dev/null``: ``run()`` never blocks on input
  (use ``send``/``expect`` for interactive programs).
- Everything before the start marker (echo, prompts, job notices, late output of an
  interrupted command) is discarded; everything between the markers is the output.
  A shell on pipes (``Transport.tty`` false) echoes nothing and prints no prompt, so
  there the start marker is left out and the output is all that follows the line.
- xtrace is switched off by the end function and restored for the next command, so
  ``set -x`` traces the user's commands and never ours: the end marker and the probe
  report the shell's flags (``$-``), and while they contain ``x`` the next command
  is sent as ``'set -x;''<command>'``. The two trace lines of the end function itself
  (its call, and the ``set +xv`` that ends the trace) are cut from that output.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "EndMarker",
    "find_end_marker",
    "find_marker_line",
    "frame_command",
    "framing_setup",
    "restore_line",
    "shell_quote",
]


#: First line typed into a shell on a terminal: no echo, no line editing, no prompts.
_SETUP_TTY = "stty -echo -icanon min 1 time 0 -opost -icrnl -inlcr -ixon -iexten 2>/dev/null; "
#: Typed before raw I/O on a terminal: canonical mode, so the shell reads one line at
#: a time and leaves type-ahead in the tty for the program that reads stdin.
_LINE_MODE = "stty icanon 2>/dev/null; printf 'OTTO_%s_L\\n' {nonce}\n"
#: ... and into a shell on pipes: stderr joins stdout at the source (arrival order
#: is kept), and SIGINT and SIGQUIT (a recovery's harder step, for a command that
#: ignores Ctrl-C), which then reach the whole process group, run a no-op trap in
#: the shell (so it survives) while the command itself gets the default action.
#: Background jobs of a shell without job control ignore both, as on a terminal.
_SETUP_PIPES = "exec 2>&1; trap : INT QUIT; "
#: ... and into every shell: no prompts, no history; bash's ``execfail`` makes a failed
#: ``exec`` fail the command instead of ending a shell that is not interactive. A bash
#: that is not interactive expands aliases only when told to (the framing's alias,
#: see `_functions`); the aliases its rc files defined were not in effect there
#: (``rm='rm -i'``), so they are dropped rather than switched on.
_SETUP_COMMON = (
    "PS1=''; PS2=''; PROMPT_COMMAND=''; unset HISTFILE TMOUT 2>/dev/null; "
    '[ -n "$BASH_VERSION" ] && { set +H +o history +o emacs +o vi; shopt -s execfail; '
    "case $- in *i*) ;; *) unalias -a; shopt -s expand_aliases;; esac; } 2>/dev/null; "
)


#: Typed before the setup on a console the session leaves open when it closes (no
#: logout): what the setup changes, kept in the shell, once. A later session finds it
#: kept (also after one that never gave the line back), and `restore_line` uses it.
#: ``$SHELLOPTS`` tells bash's line editing mode; ``$(set +o)`` would not: it runs in a
#: subshell, which is not interactive and so has no line editing.
_SAVE_LINE = (
    '[ -n "${__otto_saved-}" ] || { __otto_saved=1 __otto_tty=$(stty -g 2>/dev/null) __otto_ps1=${PS1-} '
    "__otto_ps2=${PS2-} __otto_pc=${PROMPT_COMMAND-} __otto_hf=${HISTFILE-} __otto_hfs=${HISTFILE+1} "
    "__otto_tm=${TMOUT-} __otto_o=${SHELLOPTS-}; }\n"
)
#: The bash options the setup switches off, switched on again if they were on.
_RESTORED_OPTIONS = ("emacs", "vi", "history", "histexpand")


def restore_line(nonce: str) -> str:
    """The lines that give a console's shell back as `_SAVE_LINE` found it (terminal
    modes, prompts, history, line editing), drop the framing's functions, aliases and
    variables and the console's ``EXIT`` trap, then print ``OTTO_<nonce>_Z``.

    Two lines, each below a console's line limit; the terminal modes go back last, on
    the line that answers, so no line of ours is echoed.
    """
    options = "".join(f"case :$__otto_o: in *:{name}:*) set -o {name};; esac; " for name in _RESTORED_OPTIONS)
    return (
        f"trap - EXIT; {_UNALIAS}; unset -f __os __oe __or; unset __otto_c __otto_l __otto_a __otto_f; "
        '[ -z "$__otto_hfs" ] || HISTFILE=$__otto_hf; [ -z "$__otto_tm" ] || TMOUT=$__otto_tm; '
        "PS1=$__otto_ps1 PS2=$__otto_ps2 PROMPT_COMMAND=$__otto_pc\n"
        f'[ -z "$BASH_VERSION" ] || {{ {options}}} 2>/dev/null; stty "$__otto_tty" 2>/dev/null; '
        "unset __otto_saved __otto_tty __otto_ps1 __otto_ps2 __otto_pc __otto_hf __otto_hfs __otto_tm "
        "__otto_o; "
        f"printf 'OTTO_%s_Z\\n' {nonce}\n"
    )


def _functions(prefix: str) -> str:
    """The framing's functions, defined with every probe so framed lines stay short: a
    shell on pipes reads its input one byte at a time, and a serial console sends each
    byte at its baud rate. ``prefix`` is fresh random text for each probe, baked into
    the markers, so the line only carries a serial number (see the module docstring).

    ``__oe`` turns xtrace and verbose mode off and keeps the exit code (``$?`` on entry
    is the command's) and the flags (``$-``) in one ``set`` builtin, then prints both,
    and bash's number of the input line it was called from (``BASH_LINENO``, empty in
    other shells), from which the session renumbers the shell's own error lines
    (`pytest_otto.shell_errors`);
    the session turns xtrace on again for the next command (see `frame_command`). When
    the command left xtrace on, the shell traces ``__oe``'s call and its ``set`` before
    the marker: the session cuts those two lines (`_cut_framing_trace`) instead of
    wrapping the call in ``{ ...; } 2>/dev/null``, which would cost every command a
    redirection (about 12 us of shell CPU on pipes). Verbose mode (``set -v``) would
    print every framed line as the shell reads it, so it ends with the command that set it.

    The command itself goes through the alias ``__or`` (`_ALIASES`), which a shell
    expands in memory: ``</dev/null command eval``. A function of the same name stands
    in when aliases do not expand (a shell without them, or a command that ran
    ``unalias -a`` or ``shopt -u expand_aliases``): the next command still runs and
    ends (inside a function, a difference only ``return`` or ``local`` could tell), and
    it sets ``__otto_l`` so that ``__oe`` reports ``_L`` in the end marker, after which
    the session spells the line out (see `frame_command`). The aliases are dropped
    before the functions are defined, since an alias would expand a name in a
    function definition too.
    """
    return (
        f"__os() {{ printf 'OTTO_{prefix}_%s_S\\n' \"$1\"; }}; "
        f'__oe() {{ set +xv -- "$?" "$-" "$1"; '
        f'printf \'\\nOTTO_{prefix}_%s_E_%s_%s%s_%s\\n\' "$3" "$1" "$2" "${{__otto_l-}}" '
        '"${__otto_n:-${BASH_LINENO-}}"; __otto_l= __otto_n=; }; '
        '__or() { __otto_l=_L __otto_n=$LINENO __otto_c=$1; shift; command eval "$__otto_c"; } </dev/null; '
    )


#: Bytes of output held back from the capped buffer while a command runs, so that the
#: trace lines `_cut_framing_trace` removes are still at hand (PS4 is usually short).
_TRACE_TAIL = 1024

#: The alias for the framed line, which applies from the next line the shell reads;
#: ``__oq`` lets the probe see whether aliases expand. Steps of the probe that fail
#: where aliases are gone end in ``|| :``, so that a shell running with ``set -e``
#: survives them.
_ALIASES = "alias __or='</dev/null command eval' __oq='__otto_a=A'"
_UNALIAS = "unalias __or __oq 2>/dev/null || :"


def framing_setup(prefix: str) -> str:
    """The lines that (re)define the framing, with markers prefixed by ``prefix``.

    Our aliases are dropped first, so that none expands inside the definitions.
    """
    return f"{_UNALIAS}\n{_functions(prefix)}{_ALIASES} 2>/dev/null || :\n"


def frame_command(
    serial: str,
    payload: str,
    *,
    start_marker: bool,
    xtrace: bool = False,
    aliases: bool = False,
    then: str = "",
) -> str:
    """The line that runs ``payload`` (a shell word) between the markers of ``serial``.

    A start marker separates what a terminal shows before the command's output
    (echo, prompts). A shell on pipes shows neither; without the marker the output
    of a short command comes back in one packet instead of two. ``xtrace``: the
    shell had ``set -x`` on when the framing switched it off; the command gets it back.
    ``aliases``: the shell expands the framing's alias (`_ALIASES`), which stands
    for the same line. ``then`` runs after the end marker, untraced and silent.
    """
    start = f"__os {serial}; " if start_marker else ""
    trace = "'set -x;'" if xtrace else ""
    after = f"; {then}" if then else ""
    if aliases:
        return f"{start}__or {trace}{payload}; __oe {serial}{after}\n"
    return f"{start}command eval {trace}{payload} </dev/null; __oe {serial}{after}\n"


def _cut_framing_trace(body: bytes, serial: bytes, code: bytes, flags: bytes) -> bytes:
    """``body`` without the trace of ``__oe`` (its call and its ``set``), when xtrace was on.

    Both lines start with PS4 as the shell expanded it, which the ``set`` line shows;
    the call may follow output that did not end its line (``printf foo``). Should PS4
    expand differently each time, the call's whole line goes.
    """
    if not body.endswith(b"\n"):
        return body
    set_end = len(body) - 1
    set_start = body.rfind(b"\n", 0, set_end) + 1
    set_line = body[set_start:set_end].rstrip(b"\r")
    set_text = b"set +xv -- " + code + b" " + flags + b" " + serial
    if set_start == 0 or not set_line.endswith(set_text):
        return body
    ps4 = set_line[: -len(set_text)]
    call_end = set_start - 1
    call_start = body.rfind(b"\n", 0, call_end) + 1
    call_line = body[call_start:call_end].rstrip(b"\r")
    call_text = b"__oe " + serial
    if call_line.endswith(ps4 + call_text):
        kept = call_line[: len(call_line) - len(ps4 + call_text)]
    elif call_line.endswith(call_text):
        kept = b""
    else:
        return body
    return body[:call_start] + kept


def shell_quote(text: str) -> str:
    """Quote ``text`` as one POSIX shell word."""
    return "'" + text.replace("'", "'\\''") + "'"


def find_marker_line(buf: bytes | bytearray, marker: bytes) -> tuple[bytes, int] | None:
    """The rest of ``marker``'s line (without its line ending) and where that line ends
    (the index after its newline), once the whole line is in ``buf``; else None."""
    idx = buf.find(marker)
    if idx < 0:
        return None
    nl = buf.find(b"\n", idx + len(marker))
    if nl < 0:
        return None
    return bytes(buf[idx + len(marker) : nl]).rstrip(b"\r"), nl + 1


class EndMarker(NamedTuple):
    """A command's end marker found with its whole line: the output ends at ``body_end``
    (its ``\\r`` left out), the marker's line at ``line_end``; ``code`` and ``flags`` as
    ``__oe`` printed them."""

    body_end: int
    code: bytes
    flags: bytes
    line_end: int
    #: bash's number of the input line that called ``__oe``; None where the shell gave none
    input_line: int | None = None


def find_end_marker(buf: bytes | bytearray, end: bytes, scan_from: int = 0) -> EndMarker | int | None:
    """Look for a command's end marker ``end`` (``\\nOTTO_<prefix>_<serial>_E_``) in ``buf``.

    An `EndMarker` once its line is whole; where the marker starts while its line is
    not; None while there is no marker from ``scan_from`` on.
    """
    idx = buf.find(end, scan_from)
    if idx < 0:
        return None
    nl = buf.find(b"\n", idx + len(end))
    if nl < 0:
        return idx
    body_end = idx - 1 if idx > 0 and buf[idx - 1] == 0x0D else idx
    code, _, flags = bytes(buf[idx + len(end) : nl]).strip().partition(b"_")
    head, sep, tail = flags.rpartition(b"_")
    input_line = None
    if sep and (tail.isdigit() or not tail):  # the flags, then ``_<BASH_LINENO>``
        flags, input_line = head, int(tail) if tail else None
    return EndMarker(body_end, code, flags, nl + 1, input_line)
