"""Rebooting a host and waiting for it: written once for ssh, telnet, serial and tcp hosts.

"Up" means what the user needs afterwards: a shell that answers a command on the
host's default session (an SSH connection, a console login). "A new boot" is told by
the kernel's ``boot_id`` (``/proc/sys/kernel/random/boot_id``) where the host has
one, so a shell of the old system that still answers while it shuts down is not
mistaken for the rebooted one; without it, the host must first stop answering.

A reboot we asked for closes every session of the host itself, so the sessions
after it are fresh and no ``ShellResetWarning`` is raised; every wait is bounded
and its ``TimeoutError`` names what was awaited and the last attempt's error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from typing import TYPE_CHECKING, cast

from .errors import HostConnectionError, OttoError
from .timeouts import format_seconds
from .transports.login import SHELL_PROMPT, console_text

if TYPE_CHECKING:
    from .hosts.base import Host
    from .hosts.console import ConsoleHost
    from .transports.console import ConsoleTransport

__all__ = ["AtBootloader", "RebootError", "boot_id", "reboot", "wait_until_down", "wait_until_up"]

log = logging.getLogger("pytest_otto")

BOOT_ID_COMMAND = "cat /proc/sys/kernel/random/boot_id 2>/dev/null || true"
#: How long one "is it up?" attempt may take at most (a console login on a loaded machine).
ATTEMPT_LIMIT = 20.0
#: How long one "is it down?" attempt waits for a shell before calling the host down.
DOWN_PROBE = 5.0
#: A console quiet this long while we wait for its prompt gets a newline...
PROMPT_QUIET = 1.0
#: ... at most this often.
POKE_INTERVAL = 3.0
#: Pause between attempts that failed at once (connection refused).
RETRY_PAUSE = 0.5
#: How long the reboot command itself may take before its shell is left behind.
REBOOT_COMMAND_TIMEOUT = 10.0

#: What a failed attempt may raise: the host is not (or no longer) answering.
_NOT_ANSWERING = (HostConnectionError, TimeoutError, OSError, EOFError)


class RebootError(OttoError):
    """The reboot command could not be run (not found, not permitted)."""


class AtBootloader(HostConnectionError):
    """The console sits at the bootloader's prompt: the OS is not coming up by itself."""


async def boot_id(host: Host, timeout: float) -> str | None:
    """The kernel's boot id from the host's default shell, or None where it has none."""
    status = (await host.default_session._run(BOOT_ID_COMMAND, timeout)).only
    if status.retcode == -1:  # never finished: the shell ended, or timed out
        raise HostConnectionError(host.id, status.output.strip() or "no answer from the shell")
    text = status.output.strip()
    return text if status.ok and len(text) >= 32 else None


class _Listener:
    """What a console prints while we only listen (a `ByteSink`)."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.changed = asyncio.Event()
        self.at = time.monotonic()
        self.ended: str | None = None

    def feed(self, data: bytes) -> None:
        self.data += data
        del self.data[:-4096]
        self.at = time.monotonic()
        self.changed.set()

    def feed_eof(self, exit_status: int | None, reason: str = "") -> None:
        self.ended = reason or "the console connection ended"
        self.changed.set()


async def _await_console_prompt(host: ConsoleHost, timeout: float) -> None:
    """Listen to a console until it shows a prompt (login, or a shell's); bounded.

    A booting board echoes what is typed at it and its getty flushes it: typing the
    login's probes into a boot makes garbage of the first login. So the console is
    only listened to, with a newline after each quiet second (a prompt printed before
    we attached is printed again), until a prompt sits at the end of its output.
    """
    from .bootloader import BootloaderConfig

    bootloader_prompt = re.compile((host.bootloader_config or BootloaderConfig()).prompt)
    listener = _Listener()
    transport = cast("ConsoleTransport", host._make_shell_transport())
    deadline = time.monotonic() + timeout
    try:
        await asyncio.wait_for(transport.open_raw(listener), max(0.1, deadline - time.monotonic()))
        poked = 0.0
        while True:
            tail = console_text(bytes(listener.data))[-200:]
            at_bootloader = bool(bootloader_prompt.search(tail))
            if at_bootloader and _quiet_now(listener):
                raise AtBootloader(
                    host.id,
                    f"{host._where_up()} shows the bootloader's prompt ({tail.splitlines()[-1]!r}):"
                    " the OS is not booting by itself; stop there with host.bootloader() and boot it"
                    f" with bl.boot() (its prompt and boot command: [hosts.{host.id}.bootloader])",
                )
            if not at_bootloader and (host.login_prompt_regex.search(tail) or SHELL_PROMPT.search(tail)):
                return
            if listener.ended is not None:
                raise HostConnectionError(host.id, listener.ended)
            now = time.monotonic()
            if now >= deadline:
                said = [line for line in console_text(bytes(listener.data)).splitlines() if line.strip()]
                raise TimeoutError(f"no prompt on {host._where_up()}; its last lines: {said[-3:]!r}")
            if now - listener.at >= PROMPT_QUIET and now - poked >= POKE_INTERVAL:
                await transport.write(transport.newline)
                poked = time.monotonic()
            listener.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(listener.changed.wait(), min(PROMPT_QUIET, max(0.0, deadline - now)))
    finally:
        await transport.close()


def _quiet_now(listener: _Listener) -> bool:
    """The console has said nothing for a moment (a prompt that is not being drawn over)."""
    return time.monotonic() - listener.at >= 0.3


async def _attempt_up(host: Host, timeout: float, not_boot: str | None) -> None:
    """Open the default shell and ask it one command (raises when not up)."""
    from .hosts.console import ConsoleHost

    started = time.monotonic()
    if isinstance(host, ConsoleHost) and not host.default_session.is_open:
        await _await_console_prompt(host, timeout)
    timeout = max(0.1, timeout - (time.monotonic() - started))
    current = await asyncio.wait_for(boot_id(host, timeout), timeout)
    if not_boot is not None and current == not_boot:
        raise HostConnectionError(host.id, "the shell that answered is still the one of the old boot")


async def wait_until_up(
    host: Host, timeout: float, *, not_boot: str | None = None, asked: float | None = None
) -> None:
    """Return once ``host`` answers a command (on a boot other than ``not_boot``); bounded.

    ``asked``: the bound the caller was given, for the message (``timeout`` is what is left of it).
    """
    started = time.monotonic()
    deadline = started + timeout
    last = "no attempt finished"
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            what = "a shell on a new boot" if not_boot else "a shell"
            raise TimeoutError(
                f"{host.id}: not up within {format_seconds(asked or timeout)}s: waited for {what} to answer"
                f" a command on {host._where_up()}; last attempt: {last}"
            )
        attempt_started = time.monotonic()
        try:
            await _attempt_up(host, min(remaining, ATTEMPT_LIMIT), not_boot)
        except AtBootloader:
            raise
        except _NOT_ANSWERING as exc:
            last = str(exc) or ("timed out" if isinstance(exc, TimeoutError) else type(exc).__name__)
            await host._close()
            if time.monotonic() - attempt_started < RETRY_PAUSE:
                await asyncio.sleep(min(RETRY_PAUSE, max(0.0, deadline - time.monotonic())))
            continue
        log.debug("%s: up after %.1fs", host.id, time.monotonic() - started)
        return


async def wait_until_down(
    host: Host, timeout: float, *, probe: float = DOWN_PROBE, asked: float | None = None
) -> None:
    """Return once ``host`` stops answering: a fresh connection fails, or no shell answers
    within ``probe`` seconds. Bounded by ``timeout``; closes the host's sessions.

    An attempt cut short by ``timeout`` proves nothing (a slow login is no dead host):
    then the wait ends with ``TimeoutError``.
    """
    deadline = time.monotonic() + timeout
    while True:
        await host._close()
        remaining = deadline - time.monotonic()
        bound = min(remaining, probe)
        if remaining <= 0:
            raise TimeoutError(
                f"{host.id}: still up after {format_seconds(asked or timeout)}s: waited for"
                f" {host._where_up()} to stop answering (a shell still answered every attempt)"
            )
        started = time.monotonic()
        try:
            await asyncio.wait_for(host.default_session._run("true", bound), bound)
        except _NOT_ANSWERING as exc:
            await host._close()
            if bound >= probe or time.monotonic() - started < bound * 0.9:
                log.debug("%s: down (%s)", host.id, exc)
                return
            raise TimeoutError(
                f"{host.id}: still up after {format_seconds(asked or timeout)}s: waited for"
                f" {host._where_up()} to stop answering; the last attempt ran out of time without a"
                f" verdict ({exc or 'timed out'})"
            ) from None
        await asyncio.sleep(min(RETRY_PAUSE, max(0.0, deadline - time.monotonic())))


async def _send_reboot(host: Host) -> None:
    """Run the reboot command; its shell ending (or the connection dropping) is expected."""
    try:
        result = await host.default_session._run(host.reboot_command, REBOOT_COMMAND_TIMEOUT)
    except _NOT_ANSWERING as exc:
        log.debug("%s: the reboot command's shell ended: %s", host.id, exc)
        return
    status = result.only
    if status.retcode in (126, 127) or "not permitted" in status.output.lower():
        raise RebootError(
            f"{host.id}: reboot command {host.reboot_command!r} failed (exit code {status.retcode}):"
            f" {status.output.strip()[-300:] or 'no output'}"
        )


async def reboot(host: Host, *, hard: bool, wait: bool, timeout: float) -> None:
    """Soft (the reboot command) or hard (a power cycle) reboot; with ``wait``, until up again.

    ``timeout`` bounds the wait for the new boot, from the moment the reboot was asked for.
    """
    old: str | None = None
    if wait and not hard:
        try:
            old = await asyncio.wait_for(boot_id(host, ATTEMPT_LIMIT), ATTEMPT_LIMIT)
        except _NOT_ANSWERING as exc:
            why = str(exc) or type(exc).__name__
            raise HostConnectionError(host.id, f"cannot reboot: the host does not answer ({why})") from exc
    if hard:
        await host._power_action("cycle")
    else:
        await _send_reboot(host)
    deadline = time.monotonic() + timeout
    # ours: the next sessions are fresh, and no ShellResetWarning; nothing is typed at
    # what reboots (a logout, giving a console's line back)
    await host._close(silently=True)
    if not wait:
        return
    if not hard and old is None:  # no boot id: the old system must go away first
        await wait_until_down(host, max(0.0, deadline - time.monotonic()), asked=timeout)
    await wait_until_up(host, max(0.0, deadline - time.monotonic()), not_boot=old, asked=timeout)
