"""The console login's state machine, fed plain text and a fake clock: no console, no I/O.

The same logins against real consoles (busybox telnetd with /bin/login, agetty on a pty
serial line) are in test_console.py and test_console_behaviour.py.
"""

from __future__ import annotations

import re

from pytest_otto.transports.login import (
    GREETING_WAIT,
    LOGIN_REJECT_WAIT,
    PROBE_INTERVAL,
    QUIET,
    REJECTED,
    ConsoleLogin,
    Fail,
    Ready,
    Type,
    TypePassword,
    Wait,
    console_text,
)

MARKER = b"OTTOCabc_R"
PROBE = b"printf '%s_R\\n' OTTOCabc\n"


class Console:
    """A login and a clock: ``say`` feeds text, ``after`` lets time pass, ``next`` asks what to do."""

    def __init__(self, user: str | None = "root", greets: bool = False) -> None:
        self.now = 100.0
        self.login = ConsoleLogin(
            user=user,
            login_prompt=re.compile(r"(?i)login:\s*$"),
            password_prompt=re.compile(r"(?i)password:\s*$"),
            ready_marker=MARKER,
            ready_line=PROBE,
            greets_on_connect=greets,
            now=self.now,
        )
        self.login.begin(self.now)

    def say(self, text: str) -> Console:
        self.login.feed(text.encode(), self.now)
        return self

    def after(self, seconds: float) -> Console:
        self.now += seconds
        return self

    def next(self) -> object:
        action = self.login.next_action(self.now)
        if isinstance(action, (Type, TypePassword)):
            self.login.typed(self.now)
        return action


def test_a_shell_already_logged_in_gets_a_newline_then_the_probe() -> None:
    console = Console()
    assert console.next() == Wait(0.05)  # just connected: the console may still speak
    assert console.after(QUIET + 0.01).next() == Type(b"\n", "newline")
    assert console.login.step == "newline"
    assert isinstance(console.say("\n# ").after(0.1).next(), Type)  # a prompt: the probe
    assert console.login.probed_at_prompt
    assert console.say(f"{PROBE.decode()}{MARKER.decode()}\nleft over").next() == Ready(b"left over")


def test_user_then_password_then_the_shell() -> None:
    console = Console()
    assert console.say("Welcome\nlogin: ").after(0.1).next() == Type(b"root\n", "user")
    assert console.login.answered_login and console.login.step == "user"
    assert console.say("root\nPassword: ").after(0.1).next() == TypePassword()
    assert console.login.step == "password"
    assert console.say("\nLast login: today\n$ ").after(0.1).next() == Type(PROBE, "probe")
    assert console.say(MARKER.decode() + "\n").next() == Ready(b"")


def test_a_prompt_is_answered_only_once_it_settled() -> None:
    console = Console()
    assert isinstance(console.say("login: ").next(), Wait)  # the chunk may go on
    assert console.after(0.1).next() == Type(b"root\n", "user")


def test_login_incorrect_and_the_login_prompt_again_is_a_rejection() -> None:
    console = Console()
    console.say("login: ").after(0.1).next()
    assert console.say("Password: ").after(0.1).next() == TypePassword()
    assert console.say("\nLogin incorrect\nlogin: ").after(0.1).next() == Fail(REJECTED)


def test_login_incorrect_words_before_a_shell_are_not_believed() -> None:
    """A profile script may print such words after a login that worked: the shell's prompt wins."""
    console = Console()
    console.say("login: ").after(0.1).next()
    console.say("Password: ").after(0.1).next()
    assert console.say("\nlast: Login incorrect (twice)\n$ ").after(0.1).next() == Type(PROBE, "probe")
    assert console.say(MARKER.decode() + "\n").next() == Ready(b"")


def test_login_incorrect_that_stands_is_believed_after_the_wait() -> None:
    console = Console()
    console.say("login: ").after(0.1).next()
    console.say("Password: ").after(0.1).next()
    assert isinstance(console.say("\nLogin incorrect\n").after(1).next(), Wait)  # no probe: a user name
    assert console.after(LOGIN_REJECT_WAIT).next() == Fail(REJECTED)


def test_a_login_prompt_without_a_user_fails_naming_the_cause() -> None:
    action = Console(user=None).say("login: ").after(0.1).next()
    assert action == Fail("the console asks for a login but no user is configured for this host")


def test_a_line_password_console_gets_the_password_at_once() -> None:
    """A router's line password: no user configured, the password prompt comes first."""
    assert Console(user=None).say("Password: ").after(0.1).next() == TypePassword()


def test_a_password_prompt_not_after_our_user_name_is_skipped() -> None:
    """Type-ahead (our Enter) became a user name: its password prompt gets an Enter, not the password."""
    console = Console()
    assert console.say("Password: ").after(0.1).next() == Type(b"\n", "skip")
    assert console.say("\nlogin: ").after(0.1).next() == Type(b"root\n", "user")


def test_a_connection_lost_during_login_fails_with_its_reason() -> None:
    console = Console()
    console.login.lost("the server closed the connection")
    assert console.next() == Fail("connection ended during login (the server closed the connection)")


def test_login_incorrect_then_a_hang_up_is_a_rejection_even_when_both_come_at_once() -> None:
    """The refusal and the end of the connection read in one go (a loaded machine): the
    cause is what the console said, not the hang-up (it read our probe as a user name)."""
    console = Console()
    console.say("login: ").after(0.1).next()
    console.say("Password: ").after(0.1).next()
    console.say("\nLogin incorrect\nlogin: ").login.lost("the server closed the connection")
    assert console.after(0.1).next() == Fail(f"{REJECTED} (and ended the connection)")


def test_a_server_that_greets_is_not_poked_before_its_greeting() -> None:
    console = Console(greets=True)
    assert isinstance(console.after(QUIET * 2).next(), Wait)  # a newline now could become a user name
    assert console.after(GREETING_WAIT).next() == Type(b"\n", "newline")  # it never greets: poke anyway
    greeted = Console(greets=True)
    greeted.login.heard(greeted.now)  # telnet option negotiation
    assert greeted.after(QUIET + 0.01).next() == Type(b"\n", "newline")


def test_an_unanswered_probe_is_typed_again_after_the_interval() -> None:
    console = Console()
    console.say("$ ").after(0.1)
    assert console.next() == Type(PROBE, "probe")
    assert isinstance(console.after(0.1).next(), Wait)
    assert console.after(PROBE_INTERVAL).next() == Type(PROBE, "probe")


def test_console_text_drops_escape_codes_and_carriage_returns() -> None:
    assert console_text(b"\x1b[1;32mlogin:\x1b[0m \r\n\x00") == "login: \n"
