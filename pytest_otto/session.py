"""The shell-session framing, written once for every transport.

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

On a terminal the framing runs with the tty in non-canonical mode (long lines arrive
whole), where a shell without line editing reads its input in blocks: a line typed
after a command would be read, and later run, by the shell instead of reaching the
command. So raw ``send`` first puts the tty in canonical mode, as any terminal is:
the shell then reads one line at a time and type-ahead waits in the tty for whoever
reads stdin next. The probe that re-syncs before the next framed command sets the
framing's mode again.

After a timeout or a cancellation the session interrupts the command (Ctrl-C), then
proves the shell alive with a probe only a shell can answer (``printf`` expanding a
fresh nonce and ``$-``), escalating to a hard kill, and finally to a fresh shell with a
``ShellResetWarning``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import secrets
import sys
import time
import warnings
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from . import loop
from .errors import ExpectTimeout, HostConnectionError, SendTimeout, ShellResetWarning
from .output import DEFAULT_MAX_OUTPUT, OutputBuffer, decode_output
from .reports.events import emit as emit_event
from .result import CommandStatus, Status
from .transports.base import Transport

__all__ = [
    "DEFAULT",
    "RECOVERY_ALLOWANCE",
    "ExpectTimeout",
    "ShellSession",
    "resolve_timeout",
    "shell_quote",
    "wait_bounded",
]

log = logging.getLogger("pytest_otto")

T = TypeVar("T")


class _Default:
    """Marker for "use the host's configured timeout" (resolved at call time)."""

    _instance: _Default | None = None

    def __new__(cls) -> _Default:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "DEFAULT"


#: Use the host's ``command_timeout`` (looked up when the call is made, not frozen).
DEFAULT: Final = _Default()

#: Bound on proving a shell alive after an interrupt, per escalation step.
RECOVERY_STEP_TIMEOUT = 2.0
#: What a command that times out may take beyond its ``timeout``: Ctrl-C, then a
#: hard kill, each proven by a probe within `RECOVERY_STEP_TIMEOUT`. A shell that
#: answers neither (a frozen host, a command that ignores INT and QUIT) is given up
#: then: its hang-up happens in the background, and the next call opens a fresh shell.
#: ``run(..., timeout=T)`` returns within ``T + RECOVERY_ALLOWANCE`` (docs/faults.md).
RECOVERY_ALLOWANCE = 2 * RECOVERY_STEP_TIMEOUT
#: Bound on hanging up a transport.
CLOSE_TIMEOUT = 5.0
#: How often an unanswered probe is typed again (login may flush type-ahead).
PROBE_RESEND_INTERVAL = 1.0
#: After this many early reads in a row found nothing, only one write in this many
#: tries one. A shell answers within the write that woke it when the CPUs are busy
#: (nearly every command with one CPU hog on 2 cores) and almost never on an idle
#: machine, where the read is a wasted system call (about 2 us).
EARLY_READ_MISSES = 8

#: How long a failed write waits for the shell's own end to arrive (see `_await_own_end`).
WRITE_FAILED_GRACE = 0.5

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


def _functions(prefix: str) -> str:
    """The framing's functions, defined with every probe so framed lines stay short: a
    shell on pipes reads its input one byte at a time, and a serial console sends each
    byte at its baud rate. ``prefix`` is fresh random text for each probe, baked into
    the markers, so the line only carries a serial number (see the module docstring).

    ``__oe`` turns xtrace and verbose mode off and keeps the exit code (``$?`` on entry
    is the command's) and the flags (``$-``) in one ``set`` builtin, then prints both;
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
        f'printf \'\\nOTTO_{prefix}_%s_E_%s_%s%s\\n\' "$3" "$1" "$2" "${{__otto_l-}}"; __otto_l=; }}; '
        '__or() { __otto_l=_L __otto_c=$1; shift; command eval "$__otto_c"; } </dev/null; '
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


def resolve_timeout(value: object, default: float) -> float:
    """Validate a ``timeout=`` argument before anything is sent (B13).

    ``DEFAULT`` means ``default``; ``float("inf")`` disables the bound; ``None``,
    NaN, zero, negative numbers and booleans are refused.
    """
    if value is DEFAULT:
        value = default
    if value is None:
        raise TypeError("timeout=None is not allowed; pass float('inf') to wait without a bound")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, not {value!r}")
    if math.isnan(value) or value <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {value!r}")
    return float(value)


async def wait_bounded(awaitable: Awaitable[T], seconds: float) -> T:
    """``asyncio.wait_for`` that treats an infinite bound as none."""
    if math.isinf(seconds):
        return await awaitable
    # asyncio.timeout, unlike wait_for, wraps nothing in a new task: cheaper per call
    async with asyncio.timeout(max(seconds, 0)):
        return await awaitable


def format_seconds(value: float) -> str:
    """``1.0`` -> ``1``, ``0.5`` -> ``0.5`` for messages."""
    return f"{value:g}"


def shell_quote(text: str) -> str:
    """Quote ``text`` as one POSIX shell word."""
    return "'" + text.replace("'", "'\\''") + "'"


_EXPIRED = object()


def _expire(waiter: asyncio.Future[object]) -> None:
    if not waiter.done():
        waiter.set_result(_EXPIRED)


class _Deadline(Exception):
    """Internal: the deadline of the current wait passed."""


class _Ended(Exception):
    """Internal: the shell's stream ended."""


class _TransportSink:
    """What one transport feeds: passed on while that transport is the session's.

    A transport the session gave up (a shell that would not answer, replaced by a
    fresh one) may still end much later, when its last process dies: its end, or
    its late output, must never reach the shell that replaced it.
    """

    __slots__ = ("_session", "_transport")

    def __init__(self, session: ShellSession, transport: Transport) -> None:
        self._session = session
        self._transport = transport

    def feed(self, data: bytes) -> None:
        if self._session._io is self._transport:
            self._session.feed(data)

    def feed_eof(self, exit_status: int | None, reason: str = "") -> None:
        if self._session._io is self._transport:
            self._session.feed_eof(exit_status, reason)


class ShellSession:
    """One persistent shell over one transport, with the framing protocol.

    All methods run on the otto loop (see `pytest_otto.loop`); the public faces
    in `pytest_otto.hosts` marshal onto it.
    """

    def __init__(
        self,
        host_id: str,
        name: str,
        transport_factory: Callable[[], Transport],
        *,
        connect_timeout: Callable[[], float],
        max_output: Callable[[], int] = lambda: DEFAULT_MAX_OUTPUT,
        mask: Callable[[str], str] = lambda text: text,
    ) -> None:
        self.host_id = host_id
        self.name = name
        #: Hides the host's secrets in what this session logs or puts in an error message.
        self._mask = mask
        self._transport_factory = transport_factory
        self._connect_timeout = connect_timeout
        self._max_output = max_output
        self._transport: Transport | None = None  # published once the shell answered
        self._io: Transport | None = None  # where bytes go, also while opening
        self._closing = False  # close() hung up on a call in flight
        self._buffer = bytearray()
        self._waiter: asyncio.Future[object] | None = None
        self._eof = False
        self._exit_status: int | None = None
        self._eof_reason = ""
        self._lock = asyncio.Lock()
        # "interrupt": a command may still run; "probe": raw send/expect left the
        # stream in an unknown place; None: at a clean prompt.
        self._needs_recovery: str | None = None
        self._reset_pending = False
        self._ever_opened = False
        # When the shell last stopped being idle (first write after a proven prompt):
        # a hard kill spares processes older than this (jobs of earlier commands).
        self._busy_since: float | None = None
        # The shell had xtrace on when the framing last switched it off (see _functions).
        self._xtrace = False
        # The shell expands the framing's alias (see _functions); the probe finds out.
        self._aliases = False
        # The markers' prefix the last probe defined, and the last command's serial.
        self._prefix = ""
        self._serial = 0
        # A write happened since the last wait: the answer may already be readable
        # (see `Transport.read_pending`); writes since an early read last found something.
        self._just_wrote = False
        self._early_misses = 0
        # Recovery started when a caller cancelled its command (see `_recover_soon`).
        self._recovery: asyncio.Task[None] | None = None
        #: What the last command cancelled while running had printed (for its transcript).
        self.unfinished_output = ""
        # Hang-ups of shells given up, running in the background (`close` awaits them).
        self._hangups: set[asyncio.Task[None]] = set()
        # The last shell was given up because it did not answer (not because it ended).
        self._unanswered = False

    # -- ByteSink ---------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Transport callback: bytes from the shell."""
        self._buffer += data
        self._wake()

    def feed_eof(self, exit_status: int | None, reason: str = "") -> None:
        """Transport callback: the stream ended."""
        self._eof = True
        self._exit_status = exit_status
        self._eof_reason = reason
        self._wake()

    # -- state ----------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """True while a live shell is attached."""
        return self._transport is not None and not self._eof

    def _describe_end(self) -> str:
        if self._closing:
            return f"shell session '{self.name}' on {self.host_id} was closed (close() was called)"
        if self._unanswered:
            return (
                f"shell session '{self.name}' on {self.host_id} is not answering"
                f" (no answer to Ctrl-C or a kill within {format_seconds(RECOVERY_ALLOWANCE)}s)"
            )
        what = f"shell session '{self.name}' on {self.host_id} ended"
        if self._exit_status is not None:
            what += f" (exit code {self._exit_status})"
        elif self._eof_reason:
            what += f" ({self._eof_reason})"
        else:
            what += " (exit code unknown)"
        return what

    async def _discard_transport(self, *, reset: bool, wait: bool = True) -> None:
        """Let the transport go (nothing it does reaches this session again) and hang it up.

        ``wait=False``: hang up in the background. A shell given up for not answering
        may take its whole close bound to hang up (a frozen host); the call that gave
        it up returns within its own bound instead.
        """
        transport, self._transport, self._io = self._transport, None, None
        self._needs_recovery = None
        self._busy_since = None
        if reset and self._ever_opened:
            self._reset_pending = True
        if transport is None:
            return
        if wait:
            await self._hang_up(transport)
            return
        task = asyncio.get_running_loop().create_task(self._hang_up(transport))
        self._hangups.add(task)
        task.add_done_callback(self._hangups.discard)

    async def _hang_up(self, transport: Transport) -> None:
        try:
            await asyncio.wait_for(transport.close(), CLOSE_TIMEOUT)
        except Exception:  # closing must never turn into the caller's error
            log.debug("%s: closing transport of session %r failed", self.host_id, self.name, exc_info=True)

    @property
    def _at_clean_prompt(self) -> bool:
        """A live shell at a proven prompt: `_ensure_ready` has nothing to do."""
        return self._transport is not None and not self._eof and self._needs_recovery is None

    async def _ensure_ready(self, *, framed: bool = True) -> None:
        """Open the shell if needed, or recover it after a timeout or raw I/O.

        Raw ``send``/``expect`` (``framed=False``) keep what raw I/O left in the
        stream; only an interrupted command is cleaned up before them.
        """
        if self._at_clean_prompt:
            return
        if framed and self._transport is not None:
            self._transport.raw_io(False)  # may find the shell gone (a console at its login)
        if self._transport is not None and self._eof:
            await self._discard_transport(reset=True)
        if self._transport is None:
            await self._open()
        elif self._needs_recovery == "interrupt" or (framed and self._needs_recovery is not None):
            if not await self._recover(interrupt_first=self._needs_recovery == "interrupt"):
                await self._open()

    async def _open(self) -> None:
        timeout = self._connect_timeout()
        began = time.monotonic()
        deadline = began + timeout
        if self._hangups:
            # A console carries one shell: the given-up one must let go of the line
            # before a fresh one can log in (within this open's own bound).
            await asyncio.wait(set(self._hangups), timeout=timeout)
        transport = self._transport_factory()
        self._buffer.clear()
        self._eof = False
        self._exit_status = None
        self._eof_reason = ""
        self._unanswered = False
        self._busy_since = None
        self._io = transport
        try:
            try:
                remaining = deadline - time.monotonic()
                await wait_bounded(transport.open(_TransportSink(self, transport)), remaining)
                await self._probe(deadline, setup=True)
            except _Deadline:
                raise _timed_out(
                    self.host_id,
                    f"no shell answered within connect_timeout={format_seconds(timeout)}s{self._tail_hint()}",
                ) from None
            except TimeoutError:
                raise _timed_out(
                    self.host_id,
                    f"connect timed out after {format_seconds(timeout)}s{self._mask(transport.stall_hint())}",
                ) from None
            except _Ended:
                raise HostConnectionError(
                    self.host_id, f"shell ended while starting: {self._describe_end()}{self._tail_hint()}"
                ) from None
        except BaseException as exc:
            self._io = None
            spent = time.monotonic() - began
            emit_event(self.host_id, "connect-failed", f"session {self.name}", duration=spent)
            await self._hang_up(transport)
            if self._closing and isinstance(exc, Exception):  # close() hung up on this login
                raise HostConnectionError(self.host_id, self._describe_end()) from None
            if isinstance(exc, HostConnectionError) or not isinstance(exc, (OSError, EOFError)):
                raise
            raise HostConnectionError(self.host_id, _describe_exception(exc)) from exc
        self._transport = transport
        self._needs_recovery = None
        kind = "reconnect" if self._ever_opened else "connect"
        emit_event(self.host_id, kind, f"session {self.name}", duration=time.monotonic() - began)
        if self._reset_pending:
            self._reset_pending = False
            message = (
                f"{self.host_id}: shell session '{self.name}' was replaced by a fresh shell;"
                " shell state (cwd, variables) was reset"
            )
            log.warning(message)
            filename, lineno, module = _caller_outside_the_library()
            # warn_explicit with no registry: every reset is reported, not only the first.
            warnings.warn_explicit(message, ShellResetWarning, filename, lineno, module=module, registry=None)
        self._ever_opened = True

    def _tail_hint(self) -> str:
        tail = self._mask(decode_output(self._buffer[-1000:]))[-200:].strip()
        return f"; last output: {tail!r}" if tail else ""

    # -- waiting -------------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait_for_data(self, deadline: float) -> None:
        """Wait until more data (or EOF) arrives, or raise ``_Deadline``.

        A bare future and a timer: this runs once per chunk of output, so it
        avoids creating a task per wait.
        """
        if self._eof:
            raise _Ended
        if deadline <= time.monotonic():
            raise _Deadline
        if self._just_wrote and self._io is not None:
            # once per write, so a stream of output still goes through the loop (fairness)
            self._just_wrote = False
            misses = self._early_misses
            if misses < EARLY_READ_MISSES or not misses % EARLY_READ_MISSES:
                before = len(self._buffer)
                self._io.read_pending()
                if len(self._buffer) != before or self._eof:
                    self._early_misses = 0
                    return
            self._early_misses = misses + 1  # a miss, or a write that did not try
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = (
            None
            if math.isinf(deadline)
            else loop.call_at(loop.time() + (deadline - time.monotonic()), _expire, waiter)
        )
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()
        if waiter.result() is _EXPIRED:
            raise _Deadline

    async def _write(self, text: str, deadline: float) -> None:
        transport = self._io
        if transport is None:
            raise _Ended
        data = text.encode("utf-8", "surrogateescape")
        now = time.monotonic()
        if self._busy_since is None:
            self._busy_since = now
        remaining = deadline - now
        if remaining <= 0:
            raise _Deadline
        self._just_wrote = True
        try:
            written = transport.write_nowait(data)
            if written < len(data):
                await wait_bounded(transport.write(data[written:]), remaining)
        except TimeoutError:
            raise _Deadline from None
        except (OSError, EOFError) as exc:
            if not self._eof:
                await self._await_own_end(WRITE_FAILED_GRACE)
            if not self._eof:
                self.feed_eof(None, _describe_exception(exc))
            raise _Ended from exc

    async def _await_own_end(self, grace: float) -> None:
        """A write found the shell gone: its own end (exit status, last words) may still
        be on its way, and says more than the failed write (nologin's message, say)."""
        deadline = time.monotonic() + grace
        try:
            while not self._eof:
                await self._wait_for_data(deadline)
        except (_Deadline, _Ended):
            pass

    async def _await_line(self, marker: bytes, deadline: float, resend: str | None = None) -> bytes:
        """Wait for ``marker`` followed by the rest of its line; drop all before it.

        Returns the rest of the marker's line (without the line ending).
        """
        next_resend = time.monotonic() + PROBE_RESEND_INTERVAL
        while True:
            idx = self._buffer.find(marker)
            if idx >= 0:
                nl = self._buffer.find(b"\n", idx + len(marker))
                if nl >= 0:
                    rest = bytes(self._buffer[idx + len(marker) : nl]).rstrip(b"\r")
                    del self._buffer[: nl + 1]
                    return rest
            if resend is not None:
                wait_until = min(deadline, next_resend)
                try:
                    await self._wait_for_data(wait_until)
                except _Deadline:
                    if time.monotonic() >= deadline:
                        raise
                    await self._write(resend, deadline)
                    next_resend = time.monotonic() + PROBE_RESEND_INTERVAL
            else:
                await self._wait_for_data(deadline)

    async def _probe(self, deadline: float, *, setup: bool = False) -> None:
        """Prove a real shell is listening: it must expand a fresh nonce and ``$-``."""
        nonce = self._prefix = secrets.token_hex(8)
        assert self._io is not None
        # Separate lines, each well below any console's line limit; typed again
        # together if unanswered (a console's login may flush type-ahead).
        # xtrace switched on by raw input would trace the framing into the output:
        # switch it off here, reported for the next command like __otto_e does.
        # Raw I/O left the tty in canonical mode (see `send`): the answered line sets the
        # framing's mode again, so an answer proves the mode too.
        # The answer comes from `__os` as this probe defines it, so it also proves the
        # definitions took: junk left in the shell's input (a cut send(), a cut earlier
        # probe) can break the line that defines them while the next line still runs,
        # and markers of the old prefix would then never match (found with a send()
        # of 8 MB to a busy shell on a pty).
        tty_mode = _SETUP_TTY if self._io.tty and not setup else ""
        lines = (
            f"{framing_setup(nonce)}{tty_mode}{{ __otto_f=$- __otto_a=; set +xv; __oq || :; }} 2>/dev/null; "
            '__os "P_${__otto_f}_${__otto_a}"\n'
        )
        if not self._io.tty:
            lines = _SETUP_PIPES + lines  # every time: raw I/O may have started another shell
        if setup:
            lines = (_SETUP_TTY if self._io.tty else "") + _SETUP_COMMON + "\n" + lines
        await self._write(lines, deadline)
        answer = await self._await_line(f"OTTO_{nonce}_P_".encode(), deadline, resend=lines)
        flags, _, aliases = answer.removesuffix(b"_S").partition(b"_")
        self._xtrace = b"x" in flags
        self._aliases = aliases == b"A"
        self._busy_since = None

    async def _recover(self, *, interrupt_first: bool) -> bool:
        """Bring the shell back to a clean prompt; False if it could not be proven alive.

        Each step (its action and the probe that proves it) has `RECOVERY_STEP_TIMEOUT`
        at most, so a recovery after a timeout (two steps) stays within
        `RECOVERY_ALLOWANCE`. A shell given up is hung up in the background.
        """
        assert self._transport is not None
        steps: list[str] = ["interrupt", "kill"] if interrupt_first else ["probe", "interrupt", "kill"]
        for step in steps:
            try:
                deadline = time.monotonic() + RECOVERY_STEP_TIMEOUT
                # Bounded: typing Ctrl-C waits behind whatever fills the shell's input
                # buffers (a send() it never read).
                await wait_bounded(self._recovery_action(step), RECOVERY_STEP_TIMEOUT)
                await self._probe(deadline)
            except (_Deadline, TimeoutError):
                log.debug("%s: session %r did not answer after %s", self.host_id, self.name, step)
                continue
            except (_Ended, OSError, EOFError):
                break
            self._needs_recovery = None
            return True
        self._unanswered = not self._eof
        log.warning("%s: %s; it will be replaced", self.host_id, self._describe_end())
        await self._discard_transport(reset=True, wait=False)
        return False

    async def _recovery_action(self, step: str) -> None:
        """What a recovery step does before it probes: nothing, Ctrl-C, or a hard kill."""
        assert self._transport is not None
        if step == "interrupt":
            await self._transport.interrupt()
        elif step == "kill" and not (
            self._transport.can_kill_foreground
            and await self._transport.kill_foreground(
                -math.inf if self._busy_since is None else self._busy_since
            )
        ):
            await self._transport.interrupt()

    # -- commands ------------------------------------------------------------------

    def _frame(self, serial: str, payload: str, then: str = "") -> str:
        assert self._transport is not None
        return frame_command(
            serial,
            payload,
            start_marker=self._transport.tty,
            xtrace=self._xtrace,
            aliases=self._aliases,
            then=then,
        )

    async def _send_command(self, command: str, serial: str, deadline: float) -> None:
        assert self._transport is not None
        limit = self._transport.line_limit
        line = self._frame(serial, shell_quote(command))
        if limit is None or len(line.encode()) <= limit:
            await self._write(line, deadline)
            return
        # The far end cuts long lines (pitfall 12): build the command in a shell
        # variable, piece by piece, each piece acknowledged before the next.
        piece_len = max(16, (limit - 80) // 4)
        await self._write("__otto_c=''\n", deadline)
        for i, start in enumerate(range(0, len(command), piece_len)):
            piece = shell_quote(command[start : start + piece_len])
            ack = f"OTTO_{self._prefix}_{serial}_C{i}_"
            await self._write(
                f"__otto_c=\"$__otto_c\"{piece}; printf '{ack[:5]}%s\\n' '{ack[5:]}'\n", deadline
            )
            await self._await_line(ack.encode(), deadline)
        # emptied once the command is done: its text (a secret in it, say) stays out of the shell
        await self._write(self._frame(serial, '"$__otto_c"', then="__otto_c="), deadline)

    async def run_command(self, command: str, deadline: float, timeout: float) -> CommandStatus:
        """Run one framed command; ``deadline`` is absolute (monotonic)."""
        if "\x00" in command:
            raise ValueError("a command cannot contain NUL characters")
        async with self._lock:
            if not self._at_clean_prompt:
                # opening or recovering the shell is bounded on its own (connect_timeout,
                # recovery steps) and not charged to this command
                before = time.monotonic()
                await self._ensure_ready()
                deadline += time.monotonic() - before
            self._serial += 1
            serial = str(self._serial)
            marker = f"OTTO_{self._prefix}_{serial}_"
            output = OutputBuffer(self._max_output())
            started = False
            self._needs_recovery = "interrupt"
            on_tty = self._transport is not None and self._transport.tty
            try:
                if not on_tty:
                    self._buffer.clear()  # no start marker: what came before is not this command's
                await self._send_command(command, serial, deadline)
                if on_tty:
                    await self._await_line(f"{marker}S".encode(), deadline)
                started = True
                retcode = await self._collect_body(marker, serial, output, deadline)
                self._busy_since = None
            except _Deadline:
                if started:
                    output.append(self._buffer)
                partial = output.text() if started else ""
                self._buffer.clear()
                recovered = await self._recover(interrupt_first=True)
                text = f"Command timed out after {format_seconds(timeout)}s"
                if not recovered:
                    text += f"; {self._describe_end()}; it will be replaced by a fresh shell"
                if partial:
                    text += f"; output before the timeout:\n{partial}"
                log.info(
                    "%s: %r timed out after %ss", self.host_id, self._mask(command), format_seconds(timeout)
                )
                return CommandStatus(command, text, Status.Error, -1)
            except asyncio.CancelledError:
                if started:
                    output.append(self._buffer)
                self.unfinished_output = output.text() if started else ""
                self._recover_soon()
                raise
            except _Ended:
                if started:
                    output.append(self._buffer)
                partial = output.text() if started else ""
                text = _sentence(self._describe_end())
                if partial:
                    text += f"; output before the end:\n{partial}"
                if not self._closing:
                    log.warning("%s: %s", self.host_id, self._describe_end())
                await self._discard_transport(reset=not self._closing)
                return CommandStatus(command, text, Status.Error, -1)
            self._needs_recovery = None
            status = Status.Success if retcode == 0 else Status.Failed
            return CommandStatus(command, output.text(), status, retcode)

    def _recover_soon(self) -> None:
        """Stop a command whose caller gave up (``wait_for``, a cancelled task) now.

        Left alone it would run on until the next call on this session recovered the
        shell, or for ever (pitfall 10). The recovery runs once the cancelled call has
        released the session; a call that comes meanwhile waits for it.
        """
        if self._recovery is None or self._recovery.done():
            self._recovery = asyncio.get_running_loop().create_task(self._recover_after_cancel())

    async def _recover_after_cancel(self) -> None:
        try:
            async with self._lock:
                if self._transport is not None and not self._eof and self._needs_recovery == "interrupt":
                    await self._recover(interrupt_first=True)
        except Exception:  # the next call meets the same trouble and reports it
            log.debug(
                "%s: recovering session %r after a cancelled command failed",
                self.host_id,
                self.name,
                exc_info=True,
            )

    async def _collect_body(self, marker: str, serial: str, output: OutputBuffer, deadline: float) -> int:
        """Move output into ``output`` until the end marker; return the exit code."""
        end = f"\n{marker}E_".encode()
        scan_from = 0
        while True:
            buf = self._buffer
            idx = buf.find(end, scan_from)
            if idx >= 0:
                nl = buf.find(b"\n", idx + len(end))
                if nl >= 0:
                    body_end = idx - 1 if idx > 0 and buf[idx - 1] == 0x0D else idx
                    code, _, flags = bytes(buf[idx + len(end) : nl]).strip().partition(b"_")
                    if flags.endswith(b"_L"):  # the alias did not expand: spell the line out
                        self._aliases = False
                        flags = flags[:-2]
                    self._xtrace = b"x" in flags
                    if self._xtrace:
                        output.append(_cut_framing_trace(bytes(buf[:body_end]), serial.encode(), code, flags))
                    else:
                        output.append(memoryview(buf)[:body_end])
                    del buf[: nl + 1]
                    return int(code) if code.isdigit() else -1
                scan_from = idx
            else:
                keep = len(end) + 1  # a marker split between two reads
                if len(buf) > 65536 + keep + _TRACE_TAIL:
                    # Hand the bulk to the capped buffer; keep a tail for a split marker
                    # and for the end function's trace.
                    cut = len(buf) - keep - _TRACE_TAIL
                    output.append(memoryview(buf)[:cut])
                    del buf[:cut]
                scan_from = max(0, len(buf) - keep)
            await self._wait_for_data(deadline)

    # -- raw I/O -------------------------------------------------------------------

    async def send(self, text: str, timeout: float) -> None:
        """Write ``text`` exactly; the next framed command first re-syncs with a probe.

        `SendTimeout` (a ``TimeoutError``) when the shell has not taken all of it within ``timeout``
        (it is busy and its input buffers are full, pitfall 1).
        """
        async with self._lock:
            await self._ensure_ready(framed=False)
            if self._needs_recovery is None and self._io is not None and self._io.tty:
                await self._enter_line_mode()
            self._hand_to_raw_io()
            try:
                await self._write(text, time.monotonic() + timeout)
            except _Deadline:
                raise SendTimeout(
                    f"{self.host_id}: send() timed out after {format_seconds(timeout)}s: session "
                    f"'{self.name}' did not read all {len(text)} characters (is the shell busy?)"
                ) from None
            except _Ended:
                raise HostConnectionError(self.host_id, self._describe_end()) from None

    def _hand_to_raw_io(self) -> None:
        """send/expect drive the shell now: the next framed call re-syncs with a probe,
        and the transport holds its own judgement of the stream until then."""
        self._needs_recovery = "probe"
        if self._io is not None:
            self._io.raw_io(True)

    async def _enter_line_mode(self) -> None:
        """At a clean prompt on a terminal: switch to canonical mode, and wait until it holds."""
        nonce = secrets.token_hex(8)
        timeout = self._connect_timeout()
        deadline = time.monotonic() + timeout
        self._needs_recovery = "interrupt"  # until the shell answered
        try:
            await self._write(_LINE_MODE.format(nonce=nonce), deadline)
            await self._await_line(f"OTTO_{nonce}_L".encode(), deadline)
        except _Deadline:
            raise HostConnectionError(
                self.host_id,
                f"shell session '{self.name}' did not answer within connect_timeout="
                f"{format_seconds(timeout)}s before send{self._tail_hint()}",
            ) from None
        except _Ended:
            raise HostConnectionError(self.host_id, self._describe_end()) from None
        self._needs_recovery = None
        self._busy_since = None

    async def expect(self, pattern: str | re.Pattern[str], timeout: float) -> str:
        """Read until ``pattern`` matches; return the text up to and including the match."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        async with self._lock:
            await self._ensure_ready(framed=False)
            self._hand_to_raw_io()
            deadline = time.monotonic() + timeout
            while True:
                text = self._buffer.decode("utf-8", "surrogateescape")
                match = regex.search(text)
                if match:
                    consumed = text[: match.end()].encode("utf-8", "surrogateescape")
                    del self._buffer[: len(consumed)]
                    return consumed.decode("utf-8", "replace")
                try:
                    await self._wait_for_data(deadline)
                except _Deadline:
                    seen = self._buffer.decode("utf-8", "replace")
                    raise ExpectTimeout(
                        f"{self.host_id}: no match for {self._mask(regex.pattern)!r} within "
                        f"{format_seconds(timeout)}s; read so far: {self._mask(seen)[-500:]!r}",
                        seen,
                    ) from None
                except _Ended:
                    raise HostConnectionError(
                        self.host_id, f"{self._describe_end()} while expecting {regex.pattern!r}"
                    ) from None

    async def open(self) -> None:
        """Start the shell now rather than on first use."""
        async with self._lock:
            await self._ensure_ready()

    async def open_for_commands(self) -> str | None:
        """Open the shell before commands run; what to answer them with if none answered.

        The first shell of a session that does not answer within ``connect_timeout``
        raises `HostConnectionError` (the host is unreachable). A *replacement* for a
        shell that was lost or given up is part of the call that needs it: when it
        does not answer in time either, its commands get an `Error` result saying so,
        as a command that timed out does. A refused connection still raises.
        """
        replacing = self._ever_opened
        try:
            await self.open()
        except HostConnectionError as exc:
            if not (replacing and getattr(exc, "timed_out", False)):
                raise
            return f"No fresh shell answered: {self.host_id} is not answering ({exc.cause})"
        return None

    async def close(self) -> None:
        """Close the shell; a later command opens a fresh one (without a warning).

        Closing hangs up at once: a call in flight ends with an `Error` (or
        `HostConnectionError`) saying the session was closed, rather than holding
        ``close()`` until its command is done.
        """
        recovery, self._recovery = self._recovery, None
        if recovery is not None and not recovery.done():
            recovery.cancel()  # closing hangs up: no need to stop the command first
            await asyncio.wait([recovery])  # its CancelledError stays in it; ours still raises
        if self._lock.locked() and self._io is not None:
            self._closing = True
            await self._hang_up(self._io)
            if not self._eof:  # a transport that hangs up quietly: end the wait ourselves
                self.feed_eof(None, "closed")
        try:
            async with self._lock:
                await self._discard_transport(reset=False)
                self._ever_opened = False
                self._reset_pending = False
                self._unanswered = False
        finally:
            self._closing = False
        if self._hangups:  # shells given up earlier: their processes end before close() returns
            await asyncio.wait(set(self._hangups))


def _caller_outside_the_library() -> tuple[str, int, str]:
    """Where a warning should point: the first frame of the caller's code on this stack.

    An async test on the otto loop awaits the host itself, so its line is on this
    stack; a call from another thread (a blocking twin, another loop) waits in
    its own thread, whose frame the call carried here (`loop.calling_frame`).
    """
    frame = loop.first_caller_frame(sys._getframe(1)) or loop.first_caller_frame(loop.calling_frame())
    if frame is None:
        return __file__, 0, __name__
    return frame.f_code.co_filename, frame.f_lineno, frame.f_globals.get("__name__", "")


def _timed_out(host_id: str, cause: str) -> HostConnectionError:
    """The error of a shell that did not answer in time (`ShellSession.open_for_commands`)."""
    error = HostConnectionError(host_id, cause)
    error.timed_out = True  # type: ignore[attr-defined]
    return error


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _describe_exception(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror and not str(exc).strip():
        text = exc.strerror
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text
