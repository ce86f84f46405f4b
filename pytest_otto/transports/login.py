"""The console login as a state machine: fed the console's bytes and the clock, it says
what to type next. No I/O and no asyncio, so it is tested with plain text and a fake
clock, and reused by anything that reaches a shell on a byte stream (telnet, a serial
line, a boot loader that ends in a login).

The caller (`pytest_otto.transports.console.ConsoleTransport`) loops::

    action = login.next_action(now)
    Type / TypePassword -> write it, then login.typed(now)
    Wait                -> wait for bytes (login.feed) or action.seconds
    Ready               -> a shell answered: hand it action.rest
    Fail                -> raise a connection error with action.cause

How the machine reaches a shell: answer what appears at the tail of the stream (the
login prompt with the user, the password prompt with the password, only after our user
name); once nothing is left to answer (a shell prompt, or a quiet line), type the
*ready probe* that only a shell answers (``printf`` expanding a fresh token: the echo of
the typed line cannot contain the expanded text), again every `PROBE_INTERVAL`, since
``login`` may flush type-ahead. "Login incorrect" after our password is believed only
when the console asks again, hangs up, or shows no shell for `LOGIN_REJECT_WAIT`: a
login that worked may print such words too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "LOGIN_REJECT_WAIT",
    "REJECTED",
    "ConsoleLogin",
    "Fail",
    "Ready",
    "Type",
    "TypePassword",
    "Wait",
    "console_text",
    "strip_terminal_codes",
]

#: What a login says when it refuses the user name or password (see `LOGIN_REJECT_WAIT`).
REJECTED = "login failed: the console rejected the user name or password"
#: How long "Login incorrect" after our password may stand with no shell and no new
#: prompt before it is believed (a login that worked may print such words too).
LOGIN_REJECT_WAIT = 5.0
#: Messages of a rejected login.
LOGIN_FAILED = re.compile(
    r"(?i)login incorrect|authentication fail|access denied|permission denied|incorrect password"
    r"|invalid password|login failed"
)
#: Tail of a shell prompt: ``$ ``, ``# ``, ``% ``, ``> ``.
SHELL_PROMPT = re.compile(r"[#$%>][ \t]*\Z")  # at the end of the last line: a banner's "####" line is none
_TERMINAL_CODES = re.compile(rb"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")

#: How long the console may stay silent before we poke it / probe it.
QUIET = 0.3
#: A prompt must stay at the tail this long before it is answered (a chunk may end
#: just after ``Last login:``).
PROMPT_SETTLE = 0.05
#: How often an unanswered ready probe is typed again.
PROBE_INTERVAL = 1.0
#: How long a server that greets once it has set the session up (``greets_on_connect``)
#: may stay completely silent before it is poked anyway (a raw TCP console never greets).
#: A connect that returned is not yet a session: with the server's accept queue full
#: (BusyBox telnetd listens with a backlog of 1, other clients connect too) the kernel
#: drops our handshake's last ACK and accepts the connection only when it resends its
#: SYN-ACK, 1 s later.
GREETING_WAIT = 2.0
#: How long a console that said nothing, even to our Enter, gets before the ready
#: probe is typed: a ``login`` still starting (PAM, several logins at once) would
#: take the probe for a user name, fail it and sleep its fail delay (3 s).
SILENT_CONSOLE_WAIT = 3.0
#: Bytes of stream kept for matching prompts during login.
LOGIN_BUFFER = 8192


def strip_terminal_codes(data: bytes) -> bytes:
    """Remove ANSI/VT escape sequences (bracketed paste, colours, titles)."""
    return _TERMINAL_CODES.sub(b"", data)


def console_text(data: bytes) -> str:
    """Console bytes as text to match prompts in: no escape codes, carriage returns or NULs."""
    return strip_terminal_codes(data).decode("utf-8", "replace").replace("\r", "").replace("\x00", "")


@dataclass(frozen=True)
class Type:
    """Type ``data``; ``what`` says which answer it is ("user", "newline", "probe", "skip")."""

    data: bytes
    what: str


@dataclass(frozen=True)
class TypePassword:
    """Type the password (revealed by the caller, never held here) and a newline."""


@dataclass(frozen=True)
class Wait:
    """Nothing to do until more bytes come or ``seconds`` pass."""

    seconds: float


@dataclass(frozen=True)
class Ready:
    """A shell answered the probe; ``rest`` is what followed its answer (the shell's)."""

    rest: bytes


@dataclass(frozen=True)
class Fail:
    """The login cannot succeed; ``cause`` says why."""

    cause: str


Action = Type | TypePassword | Wait | Ready | Fail


class ConsoleLogin:
    """The login's state: what the console said since the last answer, and what we typed.

    ``step`` (what was typed last: "", "newline", "user" or "password"), ``answered_login``
    and ``probed_at_prompt`` are there for the caller's messages and its logout on close.
    """

    def __init__(
        self,
        *,
        user: str | None,
        login_prompt: re.Pattern[str],
        password_prompt: re.Pattern[str],
        ready_marker: bytes,
        ready_line: bytes,
        newline: bytes = b"\n",
        greets_on_connect: bool = False,
        now: float = 0.0,
    ) -> None:
        self.user = user
        self.login_prompt = login_prompt
        self.password_prompt = password_prompt
        self.ready_marker = ready_marker
        self.ready_line = ready_line
        self.newline = newline
        self.greets_on_connect = greets_on_connect
        self.buf = bytearray()  # since the last prompt we answered
        self.seen = bytearray()  # the whole login, for an error's last-output hint
        self.last_data = now
        self.heard_at: float | None = None  # last bytes of any kind (data, negotiation)
        self.connected_at = now
        self.lost_reason: str | None = None
        self.step = ""
        self.answered_login = False
        self.probed_at_prompt = False
        self._sent_user = False
        self._sent_password = False
        self._poked = False
        self._poked_at = 0.0
        self._buf_at_poke = -1
        self._last_probe = -1e9
        self._rejected_at: float | None = None
        self._typing = ""

    # -- what the console does ---------------------------------------------------------------

    def begin(self, now: float) -> None:
        """The connection is up: quiet spells are counted from ``now``."""
        self.connected_at = now

    def feed(self, data: bytes, now: float) -> None:
        """Bytes the console sent."""
        self.last_data = self.heard_at = now
        for buf in (self.buf, self.seen):
            buf += data
            if len(buf) > LOGIN_BUFFER:
                del buf[: len(buf) - LOGIN_BUFFER]

    def heard(self, now: float) -> None:
        """The console sent something that is not data (telnet option negotiation)."""
        self.heard_at = now

    def lost(self, reason: str) -> None:
        """The connection ended."""
        if self.lost_reason is None:
            self.lost_reason = reason

    def typed(self, now: float) -> None:
        """The last `Type` action's bytes were written (a poke's quiet spell starts now)."""
        if self._typing == "newline":
            self._poked_at, self._buf_at_poke = now, len(self.buf)
            self.last_data = now  # wait another quiet spell for the answer
        elif self._typing == "probe":
            self._last_probe = now
        self._typing = ""

    # -- what to do next -------------------------------------------------------------------

    def next_action(self, now: float) -> Action:
        """The next step of the login, judged from what the console said by ``now``."""
        ready = self._shell_answer() if self.lost_reason is None else None
        if ready is not None:
            return ready
        text = console_text(bytes(self.buf))
        tail = text[-200:]
        settled = now - self.last_data >= PROMPT_SETTLE
        if self._sent_password and self._rejected_at is None and LOGIN_FAILED.search(text):
            self._rejected_at = now
        if self.lost_reason is not None:
            # judged on what the console said before it hung up, however fast the two came
            if self._rejected_at is not None:
                return Fail(f"{REJECTED} (and ended the connection)")
            return Fail(f"connection ended during login ({self.lost_reason})")
        if self._rejected_at is not None and now - self._rejected_at >= LOGIN_REJECT_WAIT:
            return Fail(REJECTED)
        if settled and self.login_prompt.search(tail):
            return self._answer_login()
        if settled and self.password_prompt.search(tail):
            return self._answer_password()
        return self._poke_or_probe(now, tail, settled)

    def _shell_answer(self) -> Ready | None:
        idx = self.buf.find(self.ready_marker)
        if idx < 0:
            return None
        nl = self.buf.find(b"\n", idx)
        if nl < 0:
            return None
        rest = bytes(self.buf[nl + 1 :])
        self.buf.clear()
        return Ready(rest)

    def _answer_login(self) -> Action:
        if self._sent_password:
            if self._rejected_at is not None:
                return Fail(REJECTED)
            return Fail("login failed: the console asked for the login again after the password")
        if self.user is None:
            return Fail("the console asks for a login but no user is configured for this host")
        self._answered()
        self._sent_user = self._poked = True
        self.step = "user"
        self.answered_login = True
        return Type(self.user.encode() + self.newline, "user")

    def _answer_password(self) -> Action:
        if self._rejected_at is not None:  # asked again after "incorrect"
            return Fail(REJECTED)
        self._answered()
        # after our user name, or at once on a console that asks only for a password
        # (a router's line password) when no user is configured
        if (self._sent_user or self.user is None) and not self._sent_password:
            self._sent_password = True
            self.step = "password"
            return TypePassword()
        self._sent_user = False  # not after our user name (type-ahead became one): skip it
        return Type(self.newline, "skip")

    def _answered(self) -> None:
        self.buf.clear()
        self._buf_at_poke = -1  # the console answered

    def _poke_or_probe(self, now: float, tail: str, settled: bool) -> Action:
        quiet = now - max(self.last_data, self.connected_at, self.heard_at or 0.0) >= QUIET
        if self.greets_on_connect and self.heard_at is None and now - self.connected_at < GREETING_WAIT:
            quiet = False  # no session yet: a newline now may become its login's user name
        prompt_like = settled and bool(SHELL_PROMPT.search(tail))
        # only the echo of our Enter (or nothing) came back since the poke
        unanswered = self._buf_at_poke >= 0 and not console_text(bytes(self.buf[self._buf_at_poke :])).strip()
        if unanswered and not prompt_like and now - self._poked_at < SILENT_CONSOLE_WAIT:
            quiet = False  # nothing answered our Enter yet: a login may still be starting
        due = now - self._last_probe >= PROBE_INTERVAL
        if not ((quiet or prompt_like) and due and (self._rejected_at is None or prompt_like)):
            return Wait(PROMPT_SETTLE)  # prompts must settle; data may come
        if not self._poked and not prompt_like:
            self._poked = True
            self.step = self.step or "newline"
            self._typing = "newline"
            return Type(self.newline, "newline")
        self.probed_at_prompt = self.probed_at_prompt or prompt_like
        self._typing = "probe"
        return Type(self.ready_line, "probe")
