"""The shell session: one shell's I/O and its recovery, for every transport.

`ShellSession` writes the lines of `pytest_otto.framing` (how one command is framed,
and why that framing cannot be fooled) and waits for their markers: the output is what
lies between them. On a terminal the framing runs with the tty in non-canonical mode
(long lines arrive whole), where a shell without line editing reads its input in
blocks: a line typed after a command would be read, and later run, by the shell
instead of reaching the command. So raw ``send`` first puts the tty in canonical mode,
as any terminal is: the shell then reads one line at a time and type-ahead waits in
the tty for whoever reads stdin next. The probe that re-syncs before the next framed
command sets the framing's mode again.

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
from typing import NamedTuple

from . import loop
from .errors import ExpectTimeout, HostConnectionError, SendTimeout, ShellResetWarning
from .framing import (
    _LINE_MODE,
    _SAVE_LINE,
    _SETUP_COMMON,
    _SETUP_PIPES,
    _SETUP_TTY,
    _TRACE_TAIL,
    EndMarker,
    _cut_framing_trace,
    find_end_marker,
    find_marker_line,
    frame_command,
    framing_setup,
    restore_line,
    shell_quote,
)
from .output import DEFAULT_MAX_OUTPUT, OutputBuffer, decode_output
from .reports.events import emit as emit_event
from .result import CommandStatus, Status
from .shell_errors import renumber_errors
from .timeouts import format_seconds, wait_bounded
from .transports.base import Transport

__all__ = ["RECOVERY_ALLOWANCE", "LostShell", "ShellSession"]

log = logging.getLogger("pytest_otto")

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
        after_start: Callable[[ShellSession, float], Awaitable[None]] | None = None,
    ) -> None:
        self.host_id = host_id
        self.name = name
        #: Runs on every fresh shell once it is set up, before its first command, by
        #: its deadline (a root session's ``exec sudo``, `pytest_otto.sudo_session`).
        self._after_start = after_start
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
        # A shell was lost and not yet replaced: why, and where the caller lost it.
        self._reset_pending: LostShell | None = None
        self._ever_opened = False
        # When the shell last stopped being idle (first write after a proven prompt):
        # a hard kill spares processes older than this (jobs of earlier commands).
        self._busy_since: float | None = None
        # The shell had xtrace on when the framing last switched it off (see _functions).
        self._xtrace = False
        # The shell expands the framing's alias (see _functions); the probe finds out.
        self._aliases = False
        # What the shell calls itself in its errors ($0), bash's number of the input line
        # that ended the last command, and whether the command ran in the framing's __or
        # function (see `pytest_otto.shell_errors`).
        self._shell_name = ""
        self._end_line: int | None = None
        self._ran_in_function = False
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
        if reset and self._ever_opened and self._reset_pending is None:
            self._reset_pending = LostShell(
                f"{self.host_id}: {self._describe_end()}; its next call opens a fresh shell:"
                " shell state (cwd, variables) is reset",
                _caller_outside_the_library(),
            )
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
                if self._after_start is not None:
                    await self._after_start(self, deadline)
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
        if self._reset_pending is not None:
            self._reset_pending = None
            LostShell(
                f"{self.host_id}: shell session '{self.name}' was replaced by a fresh shell;"
                " shell state (cwd, variables) was reset",
                _caller_outside_the_library(),
            ).warn()
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

    async def _await_line(self, marker: bytes, deadline: float) -> bytes:
        """Wait for ``marker`` followed by the rest of its line; drop all before it.

        Returns the rest of the marker's line (without the line ending).
        """
        while True:
            found = find_marker_line(self._buffer, marker)
            if found is not None:
                rest, line_end = found
                del self._buffer[:line_end]
                return rest
            await self._wait_for_data(deadline)

    async def _await_answer(self, marker: bytes, deadline: float, resend: str) -> tuple[bytes, bool]:
        """`_await_line`, typing ``resend`` again each `PROBE_RESEND_INTERVAL` without an
        answer; also whether it was typed again (its answers may then still come)."""
        next_resend = time.monotonic() + PROBE_RESEND_INTERVAL
        resent = False
        while True:
            found = find_marker_line(self._buffer, marker)
            if found is not None:
                rest, line_end = found
                del self._buffer[:line_end]
                return rest, resent
            try:
                await self._wait_for_data(min(deadline, next_resend))
            except _Deadline:
                if time.monotonic() >= deadline:
                    raise
                await self._write(resend, deadline)
                resent = True
                next_resend = time.monotonic() + PROBE_RESEND_INTERVAL

    async def _sync(self, deadline: float) -> None:
        """Wait for the answer to a fresh line, dropping all before it: the answers
        to a probe typed more than once come before it, as the shell reads in order."""
        nonce = secrets.token_hex(8)
        await self._write(f"printf 'OTTO_%s_Y\\n' {nonce}\n", deadline)
        await self._await_line(f"OTTO_{nonce}_Y".encode(), deadline)

    async def _await_text_and_line(self, marker: bytes, deadline: float) -> tuple[str, bytes]:
        """What came before ``marker`` (decoded) and the rest of its line, once that is whole."""
        while (found := find_marker_line(self._buffer, marker)) is None:
            await self._wait_for_data(deadline)
        before = decode_output(self._buffer[: self._buffer.find(marker)])
        del self._buffer[: found[1]]
        return before, found[0]

    async def _probe(self, deadline: float, *, setup: bool = False) -> None:
        """Prove a real shell is listening: it must expand a fresh nonce and ``$-``."""
        # 32 random bits: the serial tells this probe's commands apart, the prefix only
        # output from before it (an earlier probe's, a foreign shell's), and each hex
        # digit is a byte of every marker (twice a command: 1.4 ms at 115200 baud)
        nonce = self._prefix = secrets.token_hex(4)
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
        # and markers of the old prefix would then never match (a send() of megabytes
        # to a busy shell on a pty does that).
        tty_mode = _SETUP_TTY if self._io.tty and not setup else ""
        lines = (
            f"{framing_setup(nonce)}{tty_mode}{{ __otto_f=$- __otto_a=; set +xv; __oq || :; }} 2>/dev/null; "
            '__os "P_${__otto_f}_${__otto_a}_$0"\n'
        )
        if not self._io.tty:
            lines = _SETUP_PIPES + lines  # every time: raw I/O may have started another shell
        if setup:
            lines = (_SETUP_TTY if self._io.tty else "") + _SETUP_COMMON + "\n" + lines
            if self._io.restores_on_close:
                lines = _SAVE_LINE + lines  # what the setup changes, for `_give_back_the_line`
        await self._write(lines, deadline)
        answer, resent = await self._await_answer(f"OTTO_{nonce}_P_".encode(), deadline, lines)
        if resent:
            # A probe answered late was typed again: its other copies still answer
            # (unless a login flushed them), and must not end up in the next output.
            await self._sync(deadline)
        flags, _, rest = answer.removesuffix(b"_S").partition(b"_")
        aliases, _, name = rest.partition(b"_")
        self._xtrace = b"x" in flags
        self._aliases = aliases == b"A"
        self._shell_name = name.decode(errors="replace")
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

    async def _send_command(self, command: str, serial: str, deadline: float) -> int:
        """Type ``command`` framed; the number of its newlines in the line that ends it."""
        assert self._transport is not None
        limit = self._transport.line_limit
        line = self._frame(serial, shell_quote(command))
        if limit is None or len(line.encode()) <= limit:
            await self._write(line, deadline)
            return command.count("\n")
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
        return 0

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
                newlines = await self._send_command(command, serial, deadline)
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
            text = self._own_line_numbers(output.text(), command, newlines)
            return CommandStatus(command, text, status, retcode)

    def _own_line_numbers(self, text: str, command: str, newlines: int) -> str:
        """``text`` with bash's error lines numbered as ``command``'s own lines, ``newlines``
        of which were typed before the end function's call (`pytest_otto.shell_errors`)."""
        if self._end_line is None:
            return text
        lines = command.count("\n") + 1
        if self._ran_in_function:  # it ran in the __or function, whose errors bash names "main"
            return renumber_errors(text, ("main",), self._end_line, lines)
        return renumber_errors(text, (self._shell_name, "main"), self._end_line - newlines, lines)

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
            found = find_end_marker(buf, end, scan_from)
            if isinstance(found, EndMarker):
                code, flags = found.code, found.flags
                self._end_line = found.input_line
                self._ran_in_function = flags.endswith(b"_L")
                if flags.endswith(b"_L"):  # the alias did not expand: spell the line out
                    self._aliases = False
                    flags = flags[:-2]
                self._xtrace = b"x" in flags
                if self._xtrace:
                    body = bytes(buf[: found.body_end])
                    output.append(_cut_framing_trace(body, serial.encode(), code, flags))
                else:
                    output.append(memoryview(buf)[: found.body_end])
                del buf[: found.line_end]
                return int(code) if code.isdigit() else -1
            if found is not None:
                scan_from = found  # the marker's line is not whole yet
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

    async def _give_back_the_line(self) -> None:
        """A shell that outlives our hang-up (a console we do not log out of) gets back
        what the setup changed: its prompt, echo and line editing (`restore_line`).

        Only from a proven prompt: after raw I/O a program of the user's may be reading
        (typing at it would be input to it), and a shell busy or gone cannot answer.
        Bounded by `RECOVERY_STEP_TIMEOUT`; a shell that does not answer is hung up as is.
        """
        transport = self._transport
        if transport is None or not self._at_clean_prompt or not transport.restores_on_close:
            return
        nonce = secrets.token_hex(8)
        deadline = time.monotonic() + RECOVERY_STEP_TIMEOUT
        try:
            await self._write(restore_line(nonce), deadline)
            await self._await_line(f"OTTO_{nonce}_Z".encode(), deadline)
        except (_Deadline, _Ended):
            log.debug("%s: session %r did not answer while giving the line back", self.host_id, self.name)

    def take_lost_shell(self) -> LostShell | None:
        """The shell lost and not replaced yet, if any; its next call then opens a fresh
        one without a warning (the caller warns instead, see `LostShell`)."""
        lost, self._reset_pending = self._reset_pending, None
        return lost

    async def close(self, *, silently: bool = False) -> None:
        """Close the shell; a later command opens a fresh one (without a warning).

        Closing hangs up at once: a call in flight ends with an `Error` (or
        `HostConnectionError`) saying the session was closed, rather than holding
        ``close()`` until its command is done. ``silently``: nothing more is sent
        to the shell, not even a logout (a lost lease: the device is someone else's).
        """
        if silently:
            for transport in (self._io, self._transport):
                if transport is not None:
                    transport.silent = True
        recovery, self._recovery = self._recovery, None
        if recovery is not None and not recovery.done():
            recovery.cancel()  # closing hangs up: no need to stop the command first
            await asyncio.wait([recovery])  # its CancelledError stays in it; ours still raises
        if self._lock.locked() and self._io is not None:
            self._closing = True
            if not self._eof:  # the call in flight ends now, not with what the hang-up
                self.feed_eof(None, "closed")  # (a console's logout) makes its command do
            await self._hang_up(self._io)
        try:
            async with self._lock:
                await self._give_back_the_line()
                await self._discard_transport(reset=False)
                self._ever_opened = False
                self._reset_pending = None
                self._unanswered = False
        finally:
            self._closing = False
        if self._hangups:  # shells given up earlier: their processes end before close() returns
            await asyncio.wait(set(self._hangups))


class LostShell(NamedTuple):
    """A shell that was lost (it ended, or did not answer) and is not replaced yet.

    The ``ShellResetWarning`` comes with the call that opens its replacement; the
    pytest plugin takes it at the end of the test that lost it instead, so that the
    warning (an error under ``-W error``) belongs to that test, not to the next one.
    """

    message: str
    #: Where the caller's code lost it: file name, line number, module name.
    where: tuple[str, int, str]

    def warn(self) -> None:
        """Log the message and raise the ``ShellResetWarning``, pointing at `where`."""
        log.warning(self.message)
        filename, lineno, module = self.where
        # warn_explicit with no registry: every reset is reported, not only the first.
        warnings.warn_explicit(
            self.message, ShellResetWarning, filename, lineno, module=module, registry=None
        )


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
