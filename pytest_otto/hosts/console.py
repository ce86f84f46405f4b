"""Console hosts: a telnet console server (`TelnetHost`) and a serial port (`SerialHost`).

Both log in on the console when it asks (see `pytest_otto.transports.console`)
and then use the shared session framing. What differs is how many shells one
console can carry:

- **telnet**: every session, every ``oneshot`` and every transfer opens its own
  telnet connection with its own login, so oneshots run concurrently.
- **serial**: one line, one shell. The default session owns it; ``oneshot`` runs
  in a fresh ``sh -c`` (minimal environment, ``$HOME`` as cwd, empty stdin) on that
  same line, serialized with ``run``; a named session can only open while no other
  session of the host holds the line (else `LineHeld`, a `HostConnectionError`, says so).

``put``/``get`` move files in-band: base64 in pieces below the line limit, each
piece acknowledged, the result verified with ``sha256sum`` (or ``md5sum``, or
``cksum``) and the file mode kept.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import os
import re
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..bootloader import Bootloader, BootloaderConfig
from ..errors import LineHeld
from ..framing import shell_quote
from ..result import CommandStatus, Status
from ..session import ShellSession
from ..timeouts import DEFAULT, format_seconds
from ..transports.console import (
    DEFAULT_LOGIN_PROMPT,
    DEFAULT_PASSWORD_PROMPT,
    ConsoleTransport,
)
from ..transports.serial import FLOW_CONTROLS, SerialTransport
from ..transports.tcp import TcpTransport
from ..transports.telnet import TelnetTransport
from .base import Host, line_limit_from, resolve_line_limit, reveal_password

if TYPE_CHECKING:
    from ..config import ConsoleConfig, SerialConfig, TcpConfig, TelnetConfig

__all__ = ["ConsoleHost", "SerialHost", "TcpHost", "TelnetHost"]

log = logging.getLogger("pytest_otto")

#: Room a framed command needs around its payload (markers, eval, exit-code capture).
FRAME_OVERHEAD = 300
#: Largest base64 piece per command when the line has no limit.
MAX_PIECE = 48 * 1024
#: Extra time a serialized serial oneshot may wait for the line beyond its own bound.
LINE_WAIT_GRACE = 5.0

_CHECKSUM_PROBE = "command -v sha256sum || command -v md5sum || command -v cksum || true"


#: The PATH of a serial oneshot: a fresh login's is unknown to a shell already
#: running, and the one the session has may have been changed by its commands.
ONESHOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ConsoleHost(Host):
    """What telnet and serial hosts share: credentials, login prompts, in-band transfers.

    ``one_line``: the console carries one shell (a serial line; a console server's
    port that takes one connection). The default session owns it, ``oneshot`` and
    transfers run on it serialized with ``run``, and a named session can only open
    while no other session of this host holds it. Otherwise each shell, oneshot and
    transfer has a connection and login of its own.
    """

    single_holder = True
    one_line = False
    #: ``[hosts.X.bootloader]``; None: U-Boot's defaults (see `BootloaderConfig`).
    bootloader_config: BootloaderConfig | None = None

    def __init__(
        self,
        id: str,
        *,
        user: str | None = None,
        password: Any = None,
        login_prompt: str = DEFAULT_LOGIN_PROMPT,
        password_prompt: str = DEFAULT_PASSWORD_PROMPT,
        write_delay: float = 0.0,
        line_limit: int | object | None = DEFAULT,
        **common: Any,
    ) -> None:
        super().__init__(id, **common)
        self.user = user
        self._password = password  # a str or a lab-file Secret, revealed at connect time
        self._revealed: str | None = password if isinstance(password, str) else None
        self.login_prompt = login_prompt
        self.password_prompt = password_prompt
        self.write_delay = float(write_delay)
        if write_delay < 0:
            raise ValueError(f"write_delay must be >= 0, not {write_delay!r}")
        self.line_limit = resolve_line_limit(True, line_limit)
        self._holder: ConsoleTransport | None = None

    # -- the bootloader ----------------------------------------------------------------------

    def bootloader(self, reset: bool = True) -> Bootloader:
        """A session on the bootloader's prompt: ``async with host.bootloader() as bl:``.

        Entering closes the host's shells, power-cycles the board (``reset=False``:
        no reset, for a board already at the prompt), stops the autoboot and waits
        for the prompt; see `pytest_otto.bootloader`.
        """
        return Bootloader(self, self.bootloader_config or BootloaderConfig(), reset)

    def _where_up(self) -> str:
        return self._where()

    @property
    def login_prompt_regex(self) -> re.Pattern[str]:
        """`login_prompt` compiled."""
        return re.compile(self.login_prompt)

    # -- credentials -------------------------------------------------------------------------

    def _reveal_password(self) -> str | None:
        self._revealed = reveal_password(self._password, self.id)
        return self._revealed

    def _secret_values(self) -> list[str]:
        return [self._revealed] if self._revealed else []

    def _login_options(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "password": self._reveal_password,
            "login_prompt": self.login_prompt,
            "password_prompt": self.password_prompt,
            "write_delay": self.write_delay,
            "claim": self._claim_line if self.one_line else None,
        }

    def _configure(self, transport: ConsoleTransport) -> ConsoleTransport:
        transport.line_limit = self.line_limit
        return transport

    def _claim_line(self, transport: ConsoleTransport, take: bool) -> None:
        """Give the line to ``transport`` (``take``) or take it back; one holder at a time."""
        holder = self._holder
        if not take:
            if holder is transport:
                self._holder = None
            return
        if holder is not None and holder is not transport and holder.holds_line:
            owner = next((n for n, s in self._sessions.items() if s._shell._io is holder), "another session")
            raise LineHeld(
                self.id,
                f"{self._where()} is held by session {owner!r} of this host; this console carries"
                " one shell: use the default session (run/send/expect) or close the other session first",
            )
        self._holder = transport

    @staticmethod
    def _common_from_config(config: ConsoleConfig) -> dict[str, Any]:
        options: dict[str, Any] = {
            "tags": config.tags,
            "vars": config.vars,
            "command_timeout": config.command_timeout,
            "connect_timeout": config.connect_timeout,
            "max_output": config.max_output,
            "user": config.user,
            "password": config.password,
            "write_delay": config.write_delay,
        }
        if config.login_prompt:
            options["login_prompt"] = config.login_prompt
        if config.password_prompt:
            options["password_prompt"] = config.password_prompt
        options["line_limit"] = line_limit_from(config)
        return options

    # -- the shell a oneshot or a transfer runs on ---------------------------------------------

    def _private_session(self, name: str) -> ShellSession:
        return ShellSession(
            self.id,
            name,
            self._make_shell_transport,
            connect_timeout=lambda: self.connect_timeout,
            max_output=lambda: self.max_output,
            mask=self._mask,
        )

    @contextlib.asynccontextmanager
    async def _line(self, purpose: str) -> AsyncIterator[ShellSession]:
        """A shell for a oneshot or a transfer (its own connection, or the one line)."""
        if self.one_line:
            yield self.default_session._shell
            return
        shell = self._private_session(purpose)
        try:
            yield shell
        finally:
            await shell.close()

    def _wrap_oneshot(self, command: str) -> str:
        """The framed command that runs ``command`` in a fresh process."""
        if not self.one_line:  # a fresh login's shell already
            return f'"${{BASH:-/bin/sh}}" -c {shell_quote(command)}'
        # Typed into the session's shell: a fresh process with a minimal environment, in
        # $HOME, so nothing of that shell's state (variables, functions, aliases, PATH,
        # locale, cwd) leaks in. ``command -p`` finds env on the system's default PATH,
        # so a function or alias named env, or a PATH the session changed, cannot get in
        # the way. ${v-}: a session that ran ``set -u`` must not fail on an unset one.
        names = ("HOME", "TERM", "USER", "LOGNAME", "SHELL")
        keep = " ".join(f'{v}="${{{v}-}}"' for v in names)
        script = shell_quote('cd 2>/dev/null; eval "$1"')
        return (
            f"command -p env -i PATH={ONESHOT_PATH} {keep}"
            f' "${{BASH:-/bin/sh}}" -c {script} otto {shell_quote(command)}'
        )

    async def _oneshot(self, command: str, deadline: float, timeout: float) -> CommandStatus:
        async with self._line("oneshot") as shell:
            # the bound starts once the line is ours: waiting for it and logging in are
            # bounded by connect_timeout, as for run()
            deadline = time.monotonic() + timeout
            remaining = timeout
            try:
                status = await asyncio.wait_for(
                    shell.run_command(self._wrap_oneshot(command), deadline, timeout),
                    max(remaining, 0) + self.connect_timeout + LINE_WAIT_GRACE,
                )
            except TimeoutError:
                return CommandStatus(
                    command,
                    f"Command timed out after {format_seconds(timeout)}s (waiting for {self._where()})",
                    Status.Error,
                    -1,
                )
        return status._replace(command=command)

    def _where(self) -> str:
        return self.id

    # -- in-band transfers -------------------------------------------------------------------------

    async def _check(self, shell: ShellSession, command: str, what: str) -> str:
        timeout = self.command_timeout
        status = await shell.run_command(command, time.monotonic() + timeout, timeout)
        if status.status is not Status.Success:
            detail = status.output.strip().splitlines()
            raise OSError(f"{what} failed ({status.retcode}): {detail[-1] if detail else 'no output'}")
        return status.output

    async def _checksum_tool(self, shell: ShellSession) -> str:
        found = (await self._check(shell, _CHECKSUM_PROBE, "looking for a checksum tool")).strip()
        tool = os.path.basename(found.splitlines()[0]) if found else ""
        if tool not in ("sha256sum", "md5sum", "cksum"):
            raise OSError("the console has no sha256sum, md5sum or cksum to verify the transfer")
        return tool

    def _piece_size(self) -> int:
        limit = self.line_limit
        if limit is None:
            return MAX_PIECE
        return max(64, min(MAX_PIECE, (limit - FRAME_OVERHEAD) // 4 * 4))

    async def _put_file(self, src: Path, dest_dir: str) -> None:
        src = src.expanduser()
        if not src.is_file():
            raise FileNotFoundError(f"no such file: {src}")
        data = await asyncio.to_thread(src.read_bytes)
        mode = src.stat().st_mode & 0o7777
        encoded = base64.b64encode(data).decode("ascii")
        target = f"{dest_dir.rstrip('/') or '/'}/{src.name}"
        tmp = f"{dest_dir.rstrip('/') or '/'}/.{src.name}.otto-{secrets.token_hex(4)}"
        async with self._line("transfer") as shell:
            tool = await self._checksum_tool(shell)
            await self._check(
                shell,
                f"mkdir -p {shell_quote(dest_dir)} && : > {shell_quote(tmp + '.b64')}"
                f" && __otto_t={shell_quote(tmp)}",
                f"creating {tmp}.b64",
            )
            try:
                piece = self._piece_size()
                for start in range(0, len(encoded), piece):
                    chunk = encoded[start : start + piece]  # [A-Za-z0-9+/=]: no quoting needed
                    await self._check(shell, f'printf %s {chunk} >>"$__otto_t.b64"', f"writing {tmp}.b64")
                await self._check(
                    shell, 'base64 -d "$__otto_t.b64" >"$__otto_t"', f"decoding {tmp}.b64 (base64 -d)"
                )
                output = await self._check(shell, f'{tool} <"$__otto_t"', f"{tool} of {tmp}")
                if not _same_checksum(tool, output, data):
                    raise OSError(f"checksum mismatch after the transfer ({tool} differs)")
                await self._check(
                    shell,
                    f'chmod {mode:o} "$__otto_t" && mv -f "$__otto_t" {shell_quote(target)}',
                    f"moving the file into place as {target}",
                )
            finally:
                with contextlib.suppress(Exception):
                    await shell.run_command(
                        'rm -f "$__otto_t.b64" "$__otto_t"; unset __otto_t', time.monotonic() + 10, 10
                    )

    async def _get_file(self, src: str, dest_dir: Path) -> None:
        name = os.path.basename(src.rstrip("/"))
        if not name:
            raise ValueError(f"not a file name: {src!r}")
        quoted = shell_quote(src)
        async with self._line("transfer") as shell:
            tool = await self._checksum_tool(shell)
            # says which, in the words of the other hosts' errors
            await self._check(
                shell,
                f"if ! test -e {quoted}; then echo No such file; false;"
                f" elif ! test -f {quoted}; then echo Not a regular file; false;"
                f" elif ! test -r {quoted}; then echo Permission denied; false; fi",
                f"reading {src}",
            )
            mode = int((await self._check(shell, f"stat -c %a {quoted}", f"stat {src}")).strip() or "644", 8)
            summed = await self._check(shell, f"{tool} <{quoted}", f"{tool} of {src}")
            encoded = await self._check(shell, f"base64 {quoted}", f"base64 of {src}")
        if "output truncated" in encoded:
            raise OSError(f"{src} is larger than max_output={self.max_output} allows in base64")
        data = base64.b64decode("".join(encoded.split()))
        if not _same_checksum(tool, summed, data):
            raise OSError(f"checksum mismatch after the transfer of {src} ({tool})")
        dest_dir = dest_dir.expanduser()

        def write() -> None:
            dest_dir.mkdir(parents=True, exist_ok=True)
            path = dest_dir / name
            path.write_bytes(data)
            path.chmod(mode)

        await asyncio.to_thread(write)


class TelnetHost(ConsoleHost):
    """A console reached over telnet (a console server port, a device's telnetd).

    Each shell (the default session, every named session, every oneshot and
    transfer) is its own telnet connection with its own login, so oneshots run
    concurrently. ``single_connection=True`` is for a console server's port that
    takes one connection (the serial line behind it, as with ser2net): the host
    then has one shell, as a `SerialHost` has. ``password`` is never logged and is
    masked in transcripts.
    """

    transport_name = "telnet"
    #: The connection each shell runs on.
    transport_class: type[TelnetTransport] = TelnetTransport

    def __init__(
        self, id: str, address: str, *, port: int = 23, single_connection: bool = False, **options: Any
    ) -> None:
        super().__init__(id, **options)
        self.address = address
        self.port = int(port)
        self.one_line = bool(single_connection)

    @classmethod
    def from_config(cls, config: TelnetConfig | TcpConfig, lab: object = None) -> TelnetHost:
        """Build from a lab file entry (``transport = "telnet"``, or ``"tcp"`` for a `TcpHost`)."""
        return cls(
            config.id,
            config.address,
            port=config.port,
            single_connection=config.single_connection,
            **cls._common_from_config(config),
        )

    def _make_shell_transport(self) -> TelnetTransport:
        transport = self.transport_class(self.id, self.address, self.port, **self._login_options())
        self._configure(transport)
        return transport

    def _where(self) -> str:
        return f"{self.transport_name} {self.address}:{self.port}"


class TcpHost(TelnetHost):
    """A raw TCP console (ser2net raw, QEMU ``-serial tcp:``): telnet's handling without telnet.

    Such a port is a serial line behind a socket, so it takes one connection
    (``single_connection=True``) unless told otherwise.
    """

    transport_name = "tcp"
    transport_class = TcpTransport

    def __init__(
        self, id: str, address: str, *, port: int, single_connection: bool = True, **options: Any
    ) -> None:
        super().__init__(id, address, port=port, single_connection=single_connection, **options)


class SerialHost(ConsoleHost):
    """A console on a serial port (``/dev/ttyUSB0``), opened with the stdlib ``termios``.

    One line carries one shell (``one_line``, see `ConsoleHost`).
    """

    transport_name = "serial"
    one_line = True

    def __init__(
        self,
        id: str,
        device: str | os.PathLike[str],
        *,
        baud: int = 115200,
        flow_control: str = "none",
        **options: Any,
    ) -> None:
        super().__init__(id, **options)
        self.device = Path(device).expanduser()
        self.baud = int(baud)
        if flow_control not in FLOW_CONTROLS:
            raise ValueError(f"flow_control must be one of {', '.join(FLOW_CONTROLS)}, not {flow_control!r}")
        self.flow_control = flow_control

    @classmethod
    def from_config(cls, config: SerialConfig, lab: object = None) -> SerialHost:
        """Build from a lab file entry (``transport = "serial"``)."""
        return cls(
            config.id,
            config.device,
            baud=config.baud,
            flow_control=config.flow_control,
            **cls._common_from_config(config),
        )

    def _make_shell_transport(self) -> SerialTransport:
        transport = SerialTransport(
            self.id, self.device, self.baud, flow_control=self.flow_control, **self._login_options()
        )
        self._configure(transport)
        return transport

    def _where(self) -> str:
        return f"serial line {self.device}"


def _same_checksum(tool: str, remote_output: str, data: bytes) -> bool:
    """Compare the console's ``tool <file`` output with the local bytes."""
    fields = 2 if tool == "cksum" else 1  # cksum prints CRC and length
    return remote_output.split()[:fields] == _checksum(tool, data).split()[:fields]


def _checksum(tool: str, data: bytes) -> str:
    if tool == "sha256sum":
        return hashlib.sha256(data).hexdigest()
    if tool == "md5sum":
        return hashlib.md5(data).hexdigest()
    return f"{_posix_cksum(data)} {len(data)}"


def _posix_cksum(data: bytes) -> int:
    """The CRC of POSIX ``cksum`` (polynomial 0x04C11DB7, length appended)."""
    crc = 0
    for byte in data:
        crc = _CRC_TABLE[((crc >> 24) ^ byte) & 0xFF] ^ ((crc << 8) & 0xFFFFFFFF)
    length = len(data)
    while length:
        crc = _CRC_TABLE[((crc >> 24) ^ (length & 0xFF)) & 0xFF] ^ ((crc << 8) & 0xFFFFFFFF)
        length >>= 8
    return ~crc & 0xFFFFFFFF


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else (crc << 1)
        table.append(crc & 0xFFFFFFFF)
    return table


_CRC_TABLE = _crc_table()
