"""Console login and shell-end detection, written once for telnet and serial.

A console (a telnet console server, a UART) is a byte stream to *something*: a
``login:`` prompt, a ``Password:`` prompt, or a shell that is already logged in.
`ConsoleTransport` reaches a shell on it, then hands the stream to the session:

1. Connect (the subclass: a TCP connection, an opened tty), listen briefly for
   what the console volunteers, then poke it with a newline (a UART drops output
   printed while nobody listened, so a prompt may need to be asked for again).
   A server that greets when it has set the session up (a telnet server negotiates
   options) is not poked before its greeting: the newline would wait in the socket
   and could reach a ``login`` just after its prompt, as an empty user name.
2. Log in: `pytest_otto.transports.login.ConsoleLogin`, a state machine without I/O,
   is fed what the console says and tells what to type (the user at the login
   prompt, the password only after our user name, never logged; a ready probe that
   only a shell answers, with an ``EXIT`` trap printing another fresh token and
   ``$?``) until a shell answers or the login fails. This class types and waits.
3. After the hand-over, the stream goes to the session unchanged, except that the
   transport watches for the end of the shell it logged into: the ``EXIT`` trap's
   token (gives the exit code, e.g. ``exit 3``), the connection closing, or (on a
   line that stays open, like a UART whose getty respawns) the login prompt coming
   back and the line going quiet. Each ends the stream with ``feed_eof`` exactly once.

The caller bounds `open` with the host's ``connect_timeout``, so every wait here
is bounded; nothing here knows about markers of commands, exit codes of commands
or command timeouts: that is `pytest_otto.session`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import secrets
import time
from abc import abstractmethod
from collections.abc import Callable

from ..errors import HostConnectionError
from ..reports.events import emit_console
from ..transcript import MASK
from .base import TTY_LINE_LIMIT, ByteSink, Transport
from .login import ConsoleLogin, Fail, Ready, Type, TypePassword, Wait, console_text, strip_terminal_codes

__all__ = [
    "DEFAULT_LOGIN_PROMPT",
    "DEFAULT_PASSWORD_PROMPT",
    "ConsoleTransport",
    "strip_terminal_codes",
]

log = logging.getLogger("pytest_otto")

#: Default regex of a login prompt (searched at the tail of the stream).
DEFAULT_LOGIN_PROMPT = r"(?i)login:\s*$"
#: Default regex of a password prompt (searched at the tail of the stream).
DEFAULT_PASSWORD_PROMPT = r"(?i)password:\s*$"
#: Bytes per paced write when ``write_delay`` is set.
WRITE_CHUNK = 16
#: After the hand-over: the login prompt at the tail this long means the shell is gone.
LOGOUT_QUIET = 0.3
#: How long `close` waits for a logout to show (each of two tries); seconds on a loaded machine.
LOGOUT_WAIT = 2.0


class ConsoleTransport(Transport):
    """Base of the telnet and serial transports: login, hand-over, shell-end detection.

    Subclasses implement `_connect` (start delivering bytes through `_received` and
    report the end with `_lost`), `_send` (raw write) and `_hangup` (release).
    """

    line_limit: int | None = TTY_LINE_LIMIT
    #: Ctrl-\\ (SIGQUIT to the foreground job) is the hardest kill a console can type.
    can_kill_foreground = True
    #: Typed to wake the console up; ``\\n`` ends a line for a login program, a cooked
    #: tty and a shell in the raw mode the session sets (``-icrnl``) alike.
    newline = b"\n"
    #: Type ``exit`` on close when this transport logged in itself: a line that stays
    #: open (a UART) would otherwise keep the shell, its state, and a logged-in root.
    logout_on_close = False
    #: The server sends something (a telnet server: its option negotiation) as soon as
    #: it has set the session up, so silence before that means the session does not exist
    #: yet, not an idle line: a newline typed then waits in the socket and may reach
    #: ``login`` after its prompt and type-ahead flush, as an empty user name (a failed
    #: login and its fail delay). A UART greets nobody.
    greets_on_connect = False

    def __init__(
        self,
        host_id: str,
        *,
        user: str | None = None,
        password: Callable[[], str | None] = lambda: None,
        login_prompt: str | re.Pattern[str] = DEFAULT_LOGIN_PROMPT,
        password_prompt: str | re.Pattern[str] = DEFAULT_PASSWORD_PROMPT,
        write_delay: float = 0.0,
        claim: Callable[[ConsoleTransport, bool], None] | None = None,
    ) -> None:
        super().__init__()
        self.host_id = host_id
        self._claim = claim  # one line for the host: taken in `open`, given back in `close`
        self.user = user
        self._password = password
        self.login_prompt = re.compile(login_prompt) if isinstance(login_prompt, str) else login_prompt
        self.password_prompt = (
            re.compile(password_prompt) if isinstance(password_prompt, str) else password_prompt
        )
        self.write_delay = float(write_delay)
        token = self._token = "OTTOC" + secrets.token_hex(8)
        self._ready_marker = f"{token}_R".encode()
        self._exit_marker = f"{token}_X_".encode()
        # The echo of this line shows '%s_R' and the token apart: only a shell that
        # ran printf prints the joined marker.
        self._ready_line = (
            f"trap 'printf \"\\n%s_X_%d\\n\" {token} $?' EXIT; printf '%s_R\\n' {token}\n".encode()
        )
        self._steps = ConsoleLogin(
            user=user,
            login_prompt=self.login_prompt,
            password_prompt=self.password_prompt,
            ready_marker=self._ready_marker,
            ready_line=self._ready_line,
            newline=self.newline,
            greets_on_connect=self.greets_on_connect,
            now=time.monotonic(),
        )
        self._login_changed = asyncio.Event()
        self._data_count = 0
        self._ready = False
        self._closed = False
        self._eof_sent = False
        self._held = b""  # stream tail that may be the start of the exit marker
        self._flush_handle: asyncio.TimerHandle | None = None
        self._logout_handle: asyncio.TimerHandle | None = None
        self._tail = b""
        self._revealed: str | None = None
        self._raw = False  # send/expect drive the line (`raw_io`)
        self._tail_at = 0.0  # when the stream's tail last grew
        self._reached = False  # the subclass connected (TCP) or opened the device
        self._closing = False
        self._logout_seen = asyncio.Event()

    # -- what a console subclass provides -----------------------------------------------

    @abstractmethod
    async def _connect(self) -> None:
        """Reach the console and start delivering bytes via `_received`."""

    @abstractmethod
    async def _send(self, data: bytes) -> None:
        """Write ``data`` to the console as it is (no pacing)."""

    @abstractmethod
    async def _hangup(self) -> None:
        """Release the connection or device; must not raise."""

    def describe(self) -> str:
        """Where this console is, for messages."""
        return type(self).__name__

    @property
    def holds_line(self) -> bool:
        """True while this transport is connected (and so holds a one-line console)."""
        return False

    def _take_line(self) -> None:
        """Claim the host's one line (`HostConnectionError` if held); see `open`."""
        if self._claim is not None:
            self._claim(self, True)

    def _release(self) -> None:
        """Give the line back (after a failed connect, or on close); idempotent."""
        if self._claim is not None:
            self._claim(self, False)

    def stall_hint(self) -> str:
        """Which step of reaching the shell ran out of time, with the console's last words."""
        if not self._reached:
            return f"; {self.describe()} did not accept the connection"
        steps = self._steps
        if steps.heard_at is None:
            after = ", not even after a newline" if steps.step == "newline" else ""
            return f"; {self.describe()} accepted the connection but sent nothing{after}"
        if steps.probed_at_prompt:
            return (
                f"; a prompt shows, but no POSIX shell (sh, bash, ash) answered there: pytest-otto"
                f" runs its commands through one (a boot loader or a router's CLI has none){self._hint()}"
            )
        if steps.step == "password":
            return f"; no shell answered after the password{self._hint()}"
        if steps.step == "user":
            return f"; no password prompt or shell answered after the user name{self._hint()}"
        return (
            f"; neither a login prompt (login_prompt {self.login_prompt.pattern!r}) nor a shell"
            f" answered{self._hint()}"
        )

    # -- bytes from the subclass --------------------------------------------------------

    def _heard(self) -> None:
        """Subclass callback: the server sent something, data or not (telnet negotiation)."""
        self._steps.heard(time.monotonic())
        if not self._ready:
            self._login_changed.set()

    def _received(self, data: bytes) -> None:
        """Subclass callback: bytes arrived from the console."""
        if self._closed or self._eof_sent or not data:
            return
        emit_console(self.host_id, data)  # the raw line for reports (they mask it)
        self._data_count += 1
        if not self._ready:
            self._steps.feed(data, time.monotonic())
            self._login_changed.set()
            return
        self._deliver(data)

    def _lost(self, reason: str) -> None:
        """Subclass callback: the connection or device ended."""
        if self._closed:
            return
        if not self._ready:
            self._steps.lost(reason)
            self._login_changed.set()
            return
        self._end(None, reason)

    def _end(self, exit_status: int | None, reason: str) -> None:
        if self._eof_sent:
            return
        if self._closing:  # our own logout on close: nobody listens any more
            self._eof_sent = True
            self._logout_seen.set()
            return
        if self._held:
            held, self._held = self._held, b""
            assert self.sink is not None
            self.sink.feed(held)
        self._eof_sent = True
        for handle in (self._flush_handle, self._logout_handle):
            if handle is not None:
                handle.cancel()
        assert self.sink is not None
        self.sink.feed_eof(exit_status, reason)

    def _deliver(self, data: bytes) -> None:
        """Pass shell output on, stopping at the EXIT trap's marker."""
        assert self.sink is not None
        buf = self._held + data
        self._held = b""
        marker = self._exit_marker
        idx = buf.find(marker)
        if idx >= 0:
            nl = buf.find(b"\n", idx)
            if nl < 0 and len(buf) - idx < len(marker) + 8:
                if idx:
                    self.sink.feed(buf[:idx])
                self._held = buf[idx:]
                self._schedule_flush()
                return
            if nl >= 0:
                code = buf[idx + len(marker) : nl].strip()
                before = buf[:idx]  # the trap prints a newline before its marker
                if before.endswith(b"\n"):
                    before = before[:-2] if before.endswith(b"\r\n") else before[:-1]
                if before:
                    self.sink.feed(before)
                self._end(int(code) if code.isdigit() else None, f"the shell on {self.describe()} exited")
                return
        # Hold back a tail that could be the first bytes of the marker.
        keep = 0
        for k in range(min(len(marker) - 1, len(buf)), 0, -1):
            if buf.endswith(marker[:k]):
                keep = k
                break
        if keep:
            self.sink.feed(buf[:-keep])
            self._held = buf[-keep:]
            self._schedule_flush()
        else:
            self.sink.feed(buf)
        self._watch_logout(buf)

    def _schedule_flush(self) -> None:
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_later(0.05, self._flush_held)

    def _flush_held(self) -> None:
        self._flush_handle = None
        if self._held and not self._eof_sent and not self._closed:
            held, self._held = self._held, b""
            assert self.sink is not None
            self.sink.feed(held)

    def _watch_logout(self, data: bytes) -> None:
        """A line that stays open (UART, console server) shows ``login:`` when the shell ends."""
        if self.user is None:
            return
        self._tail = (self._tail + data)[-256:]
        self._tail_at = time.monotonic()
        if self._raw:
            return  # judged when the session takes the shell back (`raw_io`)
        if self._logout_handle is None and self.login_prompt.search(console_text(self._tail)):
            count = self._data_count
            self._logout_handle = asyncio.get_running_loop().call_later(
                LOGOUT_QUIET, self._check_logout, count
            )

    def raw_io(self, on: bool) -> None:
        """Hold the logout watch during ``send``/``expect``; judge the line when they are done.

        A telnet or ssh client run on the device shows a login prompt of its own:
        ending the session then would kill what the user is driving. When the session
        takes the shell back and the line still sits at a quiet login prompt (a reboot
        sent with ``send``), the shell is gone, and the session learns so now instead of
        typing its probe as a user name.
        """
        was_raw, self._raw = self._raw, on
        if on or not was_raw or self.user is None or self._eof_sent or self._closed:
            return
        quiet = time.monotonic() - self._tail_at >= LOGOUT_QUIET
        if quiet and self.login_prompt.search(console_text(self._tail)):
            self._end_logged_out()

    def _end_logged_out(self) -> None:
        self._end(None, f"{self.describe()} is back at its login prompt: the shell logged out")

    def _check_logout(self, count: int) -> None:
        self._logout_handle = None
        if self._closed or self._eof_sent:
            return
        if count == self._data_count:
            self._end_logged_out()
        elif self.login_prompt.search(console_text(self._tail)):
            self._logout_handle = asyncio.get_running_loop().call_later(
                LOGOUT_QUIET, self._check_logout, self._data_count
            )

    # -- Transport ---------------------------------------------------------------------

    @property
    def restores_on_close(self) -> bool:
        """True unless `close` logs out (or must send nothing, `silent`)."""
        return not self.silent and not (self.logout_on_close and self._steps.answered_login)

    async def open(self, sink: ByteSink) -> None:
        """Connect, log in if asked, and prove a shell listens (bounded by the caller).

        A one-line host's line is claimed before connecting; a failed connect gives it
        back here, and `close` after that.
        """
        self.sink = sink
        await self._open_line()
        await self._login()

    async def open_raw(self, sink: ByteSink) -> None:
        """Connect and hand every byte to ``sink`` as it comes: no login, no probe, no watch.

        For a person at the console (``otto console``), or a bootloader's prompt
        (`pytest_otto.bootloader`): they read the prompts and answer them. The line is
        claimed as for `open`; the end of the connection is ``feed_eof``.
        """
        self.sink = sink
        self.raw_io(True)  # no logout judgement: the person decides what the line shows
        self._ready = True  # nothing to prove, nothing to log into
        await self._open_line()

    async def _open_line(self) -> None:
        """Claim the host's line and connect; a failed connect gives the line back."""
        self._take_line()
        try:
            await self._connect()
        except BaseException:
            self._release()
            raise

    async def write(self, data: bytes) -> None:
        """Write ``data``; with ``write_delay``, in small chunks with a pause after each."""
        if self._closed or self.silent:
            raise ConnectionResetError(f"{self.describe()} is closed")
        if self.write_delay <= 0:
            await self._send(data)
            return
        for start in range(0, len(data), WRITE_CHUNK):
            await self._send(data[start : start + WRITE_CHUNK])
            await asyncio.sleep(self.write_delay)

    async def kill_foreground(self, since: float = -math.inf) -> bool:
        """Type Ctrl-\\: SIGQUIT to the foreground job (the shell itself ignores it)."""
        await self.write(b"\x1c")
        return True

    async def close(self) -> None:
        """Hang up; never raises."""
        if self._closed or self._closing:
            return
        if self.logout_on_close and self._steps.answered_login and not self._eof_sent and not self.silent:
            # Also when the login is still under way: on a line that stays open it goes
            # on without us and would leave a logged-in shell behind; Ctrl-C stops it.
            self._closing = True
            await self._log_out()
        self._closed = True
        for handle in (self._flush_handle, self._logout_handle):
            if handle is not None:
                handle.cancel()
        try:
            await self._hangup()
        except Exception:
            log.debug("%s: hanging up %s failed", self.host_id, self.describe(), exc_info=True)
        finally:
            self._release()

    async def _log_out(self) -> None:
        """Leave the line at its login prompt, as a person would, before hanging up.

        A shell left logged in on a line that stays open is the next user's (and
        anyone's) root prompt. Ctrl-C whatever still runs, type ``exit`` and wait for
        the EXIT trap or the login prompt; a loaded machine can take seconds, so one
        more try (Ctrl-\\ first, for a program that ignores Ctrl-C) before giving up,
        and then say so.
        """
        if not self._ready:  # mid-login: no EXIT trap to wait for; stop the login, briefly
            tries: tuple[tuple[bytes, float], ...] = ((b"\x03", 1.0),)
        else:
            tries = ((b"\x03", LOGOUT_WAIT), (b"\x1c\x03", LOGOUT_WAIT))
        for interrupt, wait in tries:
            try:
                await asyncio.wait_for(self._send(interrupt), 1.0)
                await asyncio.sleep(0.05)
                await asyncio.wait_for(self._send(b"exit" + self.newline), 1.0)
                await asyncio.wait_for(self._logout_seen.wait(), wait)
                return
            except TimeoutError:
                continue
            except Exception:
                log.debug("%s: logging out of %s failed", self.host_id, self.describe(), exc_info=True)
                return
        if not self._ready:
            return
        log.warning(
            "%s: %s: no logout seen after typing exit; the line may still be logged in",
            self.host_id,
            self.describe(),
        )

    # -- login ---------------------------------------------------------------------------

    def _fail(self, cause: str) -> HostConnectionError:
        return HostConnectionError(self.host_id, f"{self.describe()}: {cause}{self._hint()}")

    def _hint(self) -> str:
        """The console's last words, for an error: password masked, our own probe's echo left out."""
        text = console_text(bytes(self._steps.seen))
        if self._revealed:  # before cutting, so that no piece of it survives at the edge
            text = text.replace(self._revealed, MASK)
        text = text.replace(self._ready_line.decode().rstrip("\n"), "")  # its whole echo
        lines = [line for line in text.splitlines() if line.strip() and self._token not in line]
        tail = "\n".join(lines)[-200:].strip()
        return f"; last output: {tail!r}" if tail else ""

    async def _await_greeting(self, timeout: float) -> bool:
        """Wait (at most ``timeout``) until the server has sent anything; False if it has not."""
        deadline = time.monotonic() + timeout
        while self._steps.heard_at is None and self._steps.lost_reason is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._login_changed.clear()
            try:
                await asyncio.wait_for(self._login_changed.wait(), remaining)
            except TimeoutError:
                pass
        return self._steps.heard_at is not None

    async def _type(self, data: bytes) -> None:
        await self.write(data)

    async def _login(self) -> None:
        """Do what the login's state machine says until a shell answers the ready probe."""
        steps = self._steps
        steps.begin(time.monotonic())
        while True:
            action = steps.next_action(time.monotonic())
            if isinstance(action, Ready):
                self._ready = True
                log.debug("%s: %s: a shell answered; handing over", self.host_id, self.describe())
                if action.rest:
                    self._deliver(action.rest)
                return
            if isinstance(action, Fail):
                raise self._fail(action.cause)
            if isinstance(action, Wait):
                # Nothing to do yet: wait for data or for the next check (prompts must settle).
                self._login_changed.clear()
                try:
                    await asyncio.wait_for(self._login_changed.wait(), action.seconds)
                except TimeoutError:
                    pass
                continue
            await self._type(self._login_bytes(action))
            steps.typed(time.monotonic())

    def _login_bytes(self, action: Type | TypePassword) -> bytes:
        """What to type for ``action``: the password is revealed here, at its prompt, and never logged."""
        if isinstance(action, Type):
            if action.what in ("user", "skip"):
                verb = "answering the login prompt" if action.what == "user" else "skipping a password prompt"
                log.debug("%s: %s: %s", self.host_id, self.describe(), verb)
            return action.data
        password = self._password()
        if password is None:
            raise self._fail("the console asks for a password but none is configured")
        self._revealed = password
        log.debug("%s: %s: answering the password prompt", self.host_id, self.describe())
        return password.encode() + self.newline
