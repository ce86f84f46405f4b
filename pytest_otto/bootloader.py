"""A session on a bootloader's prompt (U-Boot and the like): ``async with host.bootloader() as bl``.

The bootloader runs before any shell: there is no login, no POSIX shell, no
framing. `Bootloader` talks to its prompt directly over the host's console:

- entering resets the board (a power cycle through the host's power control), waits
  for ``interrupt`` (``Hit any key to stop autoboot``), types ``interrupt_send`` and
  waits for ``prompt``;
- `Bootloader.run` types one command line and returns a `CommandStatus`. U-Boot's
  shell keeps the last exit status in ``$?``; the line is followed by ``echo`` of a
  fresh token and ``$?``, and only the expanded token (never its echo) ends the
  command. A bootloader without ``$?`` (``exit_status = false``) gets exit code 0
  and ``Success`` unless the ``error`` regex matches its output (then 1, ``Failed``);
- a line longer than the line editor keeps (``line_limit``, U-Boot: 512 with BEL for
  each character over) is refused before anything is typed, and a typed line whose
  echo is not what was sent (or that rang BEL) is cancelled with Ctrl-C before Enter,
  so half a command never runs;
- `Bootloader.boot` types the boot command and waits (bounded) until the OS answers
  on the host's normal shell: ``host.run()`` works after it.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from . import loop
from .errors import ExpectTimeout, HostConnectionError, OttoError
from .result import CommandStatus, Status
from .timeouts import DEFAULT, format_seconds, resolve_timeout
from .transports.console import strip_terminal_codes

if TYPE_CHECKING:
    from .hosts.console import ConsoleHost
    from .transports.console import ConsoleTransport

__all__ = [
    "BOOTLOADER_KEYS",
    "Bootloader",
    "BootloaderConfig",
    "BootloaderError",
    "check_bootloader_table",
    "parse_bootloader_section",
]

BOOTLOADER_KEYS = (
    "interrupt",
    "interrupt_send",
    "prompt",
    "boot",
    "line_limit",
    "exit_status",
    "error",
    "timeout",
)
#: How long the echo of a typed line may take to come back.
ECHO_TIMEOUT = 5.0
BEL = "\x07"


class BootloaderError(OttoError):
    """The bootloader did not do what was asked (a refused or mangled line, no prompt)."""


@dataclass(frozen=True)
class BootloaderConfig:
    """``[hosts.X.bootloader]``: how to stop the autoboot and talk to the prompt."""

    #: Regex seen while booting, before the autoboot starts.
    interrupt: str = r"Hit any key to stop autoboot"
    #: What stops the autoboot.
    interrupt_send: str = " "
    #: The bootloader's prompt (regex, at the end of its output).
    prompt: str = r"=> $"
    #: The command that boots the OS.
    boot: str = "boot"
    #: Longest line the line editor keeps, Enter included (U-Boot: CONFIG_SYS_CBSIZE 512).
    line_limit: int = 512
    #: The bootloader's shell sets ``$?`` (U-Boot's hush does).
    exit_status: bool = True
    #: Regex on a command's output meaning it failed (for bootloaders without ``$?``).
    error: str | None = None
    #: Seconds from the reset to the prompt.
    timeout: float = 60.0

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> BootloaderConfig:
        """From a checked lab file table."""
        return cls(**dict(table))


def check_bootloader_table(table: object) -> dict[str, Any]:
    """The checked table; ``ValueError("bootloader.key: why")`` for the first mistake."""
    if not isinstance(table, dict):
        raise ValueError(f"bootloader: expected a table, got {type(table).__name__}")
    for key, value in table.items():
        if key not in BOOTLOADER_KEYS:
            raise ValueError(f"bootloader.{key}: unknown key (one of {', '.join(BOOTLOADER_KEYS)})")
        if key in ("interrupt", "prompt", "error", "boot", "interrupt_send"):
            if not isinstance(value, str) or not value:
                raise ValueError(f"bootloader.{key}: expected a non-empty string")
            if key in ("interrupt", "prompt", "error"):
                try:
                    re.compile(value)
                except re.error as exc:
                    raise ValueError(f"bootloader.{key}: not a valid regular expression: {exc}") from None
        elif key == "line_limit" and (isinstance(value, bool) or not isinstance(value, int) or value < 16):
            raise ValueError(f"bootloader.line_limit: expected an integer >= 16, got {value!r}")
        elif key == "exit_status" and not isinstance(value, bool):
            raise ValueError(f"bootloader.exit_status: expected true or false, got {value!r}")
        elif key == "timeout" and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0
        ):
            raise ValueError(f"bootloader.timeout: expected a positive number of seconds, got {value!r}")
    return dict(table)


def parse_bootloader_section(value: object) -> dict[str, Any]:
    """The lab loader's parser of ``[hosts.X.bootloader]`` (see `pytest_otto.registry`)."""
    return check_bootloader_table(value)


def _clean(data: bytes) -> str:
    """Bytes of the console as text: no terminal codes, no CR, backspaces applied."""
    text = strip_terminal_codes(data).decode("utf-8", "replace").replace("\r", "").replace("\x00", "")
    if "\b" not in text:
        return text
    out: list[str] = []
    for char in text:  # U-Boot draws its countdown with backspaces
        if char != "\b":
            out.append(char)
        elif out and out[-1] != "\n":
            out.pop()
    return "".join(out)


class Bootloader:
    """A session on the bootloader's prompt; get one with ``async with host.bootloader() as bl``."""

    def __init__(self, host: ConsoleHost, config: BootloaderConfig, reset: bool = True) -> None:
        self.host = host
        self.config = config
        self.reset = reset
        self._transport: ConsoleTransport | None = None
        self._buffer = bytearray()
        self._offset = 0  # how much of the cleaned buffer was read already
        self._changed = asyncio.Event()
        self._ended: str | None = None
        self._booted = False

    def __repr__(self) -> str:
        return f"<Bootloader of {self.host.id!r}>"

    # -- ByteSink -------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Bytes from the console."""
        self._buffer += data
        self._changed.set()

    def feed_eof(self, exit_status: int | None, reason: str = "") -> None:
        """The console connection ended."""
        self._ended = reason or "the console connection ended"
        self._changed.set()

    # -- reading and writing -------------------------------------------------------------------

    def _text(self) -> str:
        return _clean(bytes(self._buffer))[self._offset :]

    def _forget(self) -> None:
        self._buffer.clear()
        self._offset = 0

    async def _wait_for(self, regex: re.Pattern[str], deadline: float, what: str) -> re.Match[str]:
        while True:
            text = self._text()
            match = regex.search(text)
            if match:
                return match
            if self._ended is not None:
                raise HostConnectionError(self.host.id, f"{self._ended} while waiting for {what}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ExpectTimeout(
                    f"{self.host.id}: bootloader: no {what} ({regex.pattern!r}) within"
                    f" {format_seconds(self._last_timeout)}s; read so far: {text[-300:]!r}",
                    text,
                )
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass

    _last_timeout = 0.0

    async def _expect(self, pattern: str | re.Pattern[str], timeout: float, what: str = "match") -> str:
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        self._last_timeout = timeout
        match = await self._wait_for(regex, time.monotonic() + timeout, what)
        text = self._text()
        self._offset += match.end()
        return text[: match.end()]

    async def _write(self, text: str) -> None:
        if self._transport is None or self._ended is not None:
            why = self._ended or "closed"
            raise HostConnectionError(self.host.id, f"the bootloader session is closed ({why})")
        await self._transport.write(text.encode())

    def _check_length(self, command: str, line: str) -> None:
        """Refuse a line the bootloader's line editor would cut, before typing any of it."""
        limit = self.config.line_limit
        if len(line) <= limit - 1:
            return
        extra = f" ({len(line)} with the exit status echo)" if len(line) != len(command) else ""
        raise BootloaderError(
            f"{self.host.id}: bootloader command of {len(command)} characters{extra} refused before"
            f" typing it: the bootloader keeps {limit - 1} (line_limit = {limit}) and would run a"
            " truncated command"
        )

    async def _type_line(self, line: str) -> None:
        """Type ``line``, check its echo, then Enter; Ctrl-C instead of Enter if it was mangled."""
        self._forget()
        await self._write(line)
        self._last_timeout = ECHO_TIMEOUT
        try:
            echoed = re.compile(re.escape(line) + r"\Z|" + BEL)
            await self._wait_for(echoed, time.monotonic() + ECHO_TIMEOUT, "echo")
        except ExpectTimeout:
            pass
        echo = self._text()
        if BEL in echo or not echo.endswith(line):
            await self._quiet(ECHO_TIMEOUT)  # the rest of the echo (and its BELs) first
            echo = self._text()
            await self._write("\x03")  # U-Boot (and most line editors): drop the line
            await self._quiet(ECHO_TIMEOUT)
            self._forget()
            shown = echo.replace(BEL, "<BEL>")
            shown = shown[:60] + " ... " + shown[-60:] if len(shown) > 130 else shown
            raise BootloaderError(
                f"{self.host.id}: the bootloader's echo of the line differs from what was typed"
                f" (it rang BEL or dropped characters); the line was cancelled with Ctrl-C, not run."
                f" Echo: {shown!r}"
            )
        await self._write("\r")

    async def _quiet(self, limit: float, still: float = 0.3) -> None:
        """Wait until the console has said nothing for ``still`` seconds (at most ``limit``)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), still)
            except TimeoutError:
                return

    # -- the prompt ------------------------------------------------------------------------------

    async def _run(self, command: str, timeout: object) -> CommandStatus:
        budget = resolve_timeout(timeout, self.host.command_timeout)
        if not isinstance(command, str) or "\n" in command or "\r" in command:
            raise ValueError("bootloader run() takes one line of text")
        self._check_usable()
        token = "OTTOB" + secrets.token_hex(4)
        # the echo of the line shows '$?' (or the quotes): only the expanded text ends it
        split = f'{token[:4]}""{token[4:]}'
        line = f"{command}; echo {token}_$?_" if self.config.exit_status else f"{command}; echo {split}_"
        self._check_length(command, line)
        started, t0 = time.time(), time.monotonic()
        await self._type_line(line)
        end = re.compile(re.escape(token) + (r"_(\d+)_\n" if self.config.exit_status else r"_\n"))
        try:
            output = await self._expect(end, budget, "end of the command")
        except ExpectTimeout as exc:
            await self._write("\x03")
            status = CommandStatus(command, f"{exc}", Status.Error, -1)
            return self.host._record("bootloader", "bootloader", status, started, time.monotonic() - t0)
        await self._expect(self.config.prompt, budget, "prompt")
        match = end.search(output)
        assert match is not None
        body = output[: match.start()].split("\n", 1)[1] if "\n" in output[: match.start()] else ""
        body = body.rstrip("\n")
        if self.config.exit_status:
            code = int(match.group(1))
        else:
            code = 1 if self.config.error and re.search(self.config.error, body) else 0
        result = CommandStatus(command, body, Status.Success if code == 0 else Status.Failed, code)
        return self.host._record("bootloader", "bootloader", result, started, time.monotonic() - t0)

    async def run(self, command: str, timeout: float | object = DEFAULT) -> CommandStatus:
        """Run one command line at the prompt; its output and exit status (``$?``)."""
        return await loop.call(self._run(command, timeout))

    def run_sync(self, command: str, timeout: float | object = DEFAULT) -> CommandStatus:
        """Blocking twin of `run`."""
        return loop.wait(self._run(command, timeout))

    async def _send(self, text: str) -> None:
        self._check_usable()
        await self._write(text)

    async def send(self, text: str) -> None:
        """Type ``text`` exactly as given (``\\r`` is Enter)."""
        await loop.call(self._send(text))

    def send_sync(self, text: str) -> None:
        """Blocking twin of `send`."""
        loop.wait(self._send(text))

    async def expect(self, pattern: str | re.Pattern[str], timeout: float | object = DEFAULT) -> str:
        """Read until ``pattern`` matches (terminal codes, CR and backspaces removed)."""
        budget = resolve_timeout(timeout, self.host.command_timeout)
        return await loop.call(self._expect(pattern, budget))

    def expect_sync(self, pattern: str | re.Pattern[str], timeout: float | object = DEFAULT) -> str:
        """Blocking twin of `expect`."""
        return loop.wait(self._expect(pattern, resolve_timeout(timeout, self.host.command_timeout)))

    def _check_usable(self) -> None:
        if self._booted:
            raise BootloaderError(f"{self.host.id}: the bootloader has booted the OS; use the host now")

    async def _boot(self, timeout: object) -> None:
        budget = resolve_timeout(timeout, self.host.boot_timeout)
        self._check_usable()
        self._check_length(self.config.boot, self.config.boot)
        started, t0 = time.time(), time.monotonic()
        deadline = t0 + budget
        await self._type_line(self.config.boot)
        self._booted = True
        await self._hangup()
        from .reboot import wait_until_up

        await wait_until_up(self.host, max(0.0, deadline - time.monotonic()), asked=budget)
        status = CommandStatus(self.config.boot, "the OS answers", Status.Success, 0)
        self.host._record("bootloader", "bootloader", status, started, time.monotonic() - t0)

    async def boot(self, timeout: float | object = DEFAULT) -> None:
        """Boot the OS with the ``boot`` command; return once the host's shell answers.

        ``timeout`` (default: the host's `boot_timeout`) bounds the boot and the login.
        """
        await loop.call(self._boot(timeout))

    def boot_sync(self, timeout: float | object = DEFAULT) -> None:
        """Blocking twin of `boot`."""
        loop.wait(self._boot(timeout))

    # -- entering and leaving --------------------------------------------------------------------

    async def _enter(self) -> Bootloader:
        host = self.host
        await host._close()
        transport = cast("ConsoleTransport", host._make_shell_transport())
        self._transport = transport
        try:
            await asyncio.wait_for(transport.open_raw(self), host.connect_timeout)
            timeout = self.config.timeout
            if self.reset:
                await host._power_action("cycle")
                await self._expect(self.config.interrupt, timeout, "autoboot prompt")
                await self._write(self.config.interrupt_send)
            else:
                await self._write("\r")
            await self._expect(self.config.prompt, timeout, "bootloader prompt")
            await asyncio.sleep(0.1)  # the rest of a countdown's redraw
            self._forget()
        except BaseException:
            await self._hangup()
            raise
        return self

    async def _hangup(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            await transport.close()

    async def __aenter__(self) -> Bootloader:
        return await loop.call(self._enter())

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await loop.call(self._hangup())

    def __enter__(self) -> Bootloader:
        return loop.wait(self._enter())

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        loop.wait(self._hangup())
