"""SSH hosts (``transport = "ssh"``) over asyncssh.

One SSH connection per host carries everything: the persistent shell of each
session (a channel each: the user's shell on pipes, or on a pty with ``pty=True``),
every ``oneshot`` (an exec channel each, no pty, empty stdin) and SFTP transfers.
See `pytest_otto.transports.ssh` for how that connection is opened, shared,
budgeted and replaced.
"""

from __future__ import annotations

import asyncio
import logging
import math
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import HostConnectionError
from ..output import OutputBuffer
from ..result import CommandStatus, Status
from ..ssh_config import config_path as ssh_config_path
from ..ssh_config import lab_port as _lab_port
from ..ssh_config import resolve as resolve_ssh_config
from ..timeouts import DEFAULT, format_seconds
from ..transports import sftp as sftp_transfer
from ..transports._asyncssh import asyncssh
from ..transports.ssh import (
    DEFAULT_MAX_SESSIONS,
    HOST_KEY_POLICIES,
    Channel,
    SshConnection,
    SshOptions,
    SshShellTransport,
    describe_ssh_error,
)
from .base import ONESHOT_DRAIN_GRACE, Host, line_limit_from, resolve_line_limit, reveal_password

if TYPE_CHECKING:
    from ..config import SshConfig

__all__ = ["RemoteHost"]

log = logging.getLogger("pytest_otto")


#: Run before the command (on its own line, so the command's text is untouched):
#: stderr joins stdout at the source, so the merged output keeps arrival order.
_MERGE_STDERR = "exec 2>&1\n"


class _ExecSession(asyncssh.SSHClientSession[bytes]):
    """Collects one exec channel's merged output and how it ended."""

    def __init__(self, output: OutputBuffer) -> None:
        self.output = output
        self.exit_status: int | None = None
        self.exit_signal: str | None = None
        self.lost: Exception | None = None
        self.received = 0
        self.exited = asyncio.Event()
        self.closed = asyncio.Event()
        self.data = asyncio.Event()

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self.output.append(data)
        self.received += len(data)
        self.data.set()

    def exit_status_received(self, status: int) -> None:
        self.exit_status = status
        self.exited.set()

    def exit_signal_received(self, signal: str, core_dumped: bool, msg: str, lang: str) -> None:
        self.exit_signal = signal
        self.exited.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc
        self.exited.set()
        self.closed.set()
        self.data.set()


def _signal_number(name: str) -> int | None:
    try:
        return int(signal.Signals[name if name.startswith("SIG") else f"SIG{name}"])
    except KeyError:
        return None


def _sftp_path(path: str) -> str:
    """SFTP paths start in the home directory; ``~`` means it."""
    if path in ("~", "~/"):
        return "."
    if path.startswith("~/"):
        return path[2:]
    return path


class RemoteHost(Host):
    """A machine reached over SSH (asyncssh).

    ``password`` may be a str or a lab-file secret (revealed when connecting, never
    logged); ``key`` is a private key file; ``agent`` uses ``SSH_AUTH_SOCK``.
    ``host_key_check`` is ``strict`` (the key must be in ``known_hosts``),
    ``accept-new`` (unknown keys are added, a changed key is an error) or ``off``.
    ``hop`` is another `RemoteHost` to tunnel through (chains allowed).
    ``max_sessions`` is the channel budget of the connection (sshd's
    ``MaxSessions``): more concurrent oneshots queue instead of being refused.
    ``line_limit`` sends longer commands in acknowledged pieces, for shells that cut
    long typed lines (BusyBox ash on a terminal: about 1 KiB); by default 512 on a
    pty and none on pipes, where a shell reads lines of any length.
    ``pty=False`` (the default) runs each session's shell the way ``ssh host cmd``
    does, on pipes: cheaper to start, full-speed output. ``pty=True`` runs the
    user's login shell on a pseudo-terminal (``term_type``), for programs that
    need one.
    """

    transport_name = "ssh"

    def __init__(
        self,
        id: str,
        address: str,
        *,
        port: int | None = None,
        user: str | None = None,
        password: Any = None,
        key: str | Path | None = None,
        host_key_check: str = "accept-new",
        known_hosts: str | Path | None = None,
        agent: bool = True,
        ssh_config: bool | str | Path = True,
        hop: RemoteHost | None = None,
        keepalive_interval: float = 15.0,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        pty: bool = False,
        term_type: str = "dumb",
        line_limit: int | object | None = DEFAULT,
        **options: Any,
    ) -> None:
        super().__init__(id, **options)
        if host_key_check not in HOST_KEY_POLICIES:
            raise ValueError(
                f"{id}: host_key_check must be one of {', '.join(HOST_KEY_POLICIES)}, not {host_key_check!r}"
            )
        if hop is not None and not isinstance(hop, RemoteHost):
            raise TypeError(f"{id}: hop must be a RemoteHost, not {type(hop).__name__}")
        if not isinstance(max_sessions, int) or max_sessions < 1:
            raise ValueError(f"{id}: max_sessions must be a positive int, not {max_sessions!r}")
        target = resolve_ssh_config(
            id, ssh_config_path(ssh_config), address, port=int(port) if port else None, user=user
        )
        self.address = target.address
        self.port = target.port
        self.user = target.user
        self.key = Path(key).expanduser() if key is not None else None
        self.host_key_check = host_key_check
        self.known_hosts = Path(known_hosts).expanduser() if known_hosts is not None else None
        self.agent = agent
        self.hop = hop
        self.keepalive_interval = keepalive_interval
        self.pty = bool(pty)
        self.term_type = term_type
        self.line_limit = resolve_line_limit(self.pty, line_limit)
        self._password = password
        self._revealed: list[str] = []
        self._ssh: SshConnection = SshConnection(
            id,
            SshOptions(
                address=self.address,
                port=self.port,
                user=self.user,
                password=self._reveal_password,
                key=self.key,
                host_key_check=host_key_check,
                known_hosts=self.known_hosts,
                agent=agent,
                keepalive_interval=keepalive_interval,
                identity_files=target.identity_files,
                proxy_jump=target.proxy_jump if hop is None else None,
                ssh_config=target.config,
            ),
            connect_timeout=lambda: self.connect_timeout,
            tunnel=hop._ssh.get if hop is not None else None,
            hop_id=hop.id if hop is not None else None,
            max_sessions=max_sessions,
        )

    @classmethod
    def from_config(cls, config: SshConfig, lab: Any = None) -> RemoteHost:
        """Build from a lab file entry; ``hop`` is looked up among the lab's hosts."""
        return cls(
            config.id,
            config.address,
            port=_lab_port(config),
            user=config.user,
            password=config.password,
            key=config.key,
            host_key_check=config.host_key_check,
            known_hosts=config.known_hosts,
            agent=config.agent,
            ssh_config=config.ssh_config,
            hop=_lab_host(lab, config.hop) if config.hop else None,
            pty=config.pty,
            tags=config.tags,
            vars=config.vars,
            connect_timeout=config.connect_timeout,
            command_timeout=config.command_timeout,
            max_output=config.max_output,
            keepalive_interval=config.keepalive_interval,
            line_limit=line_limit_from(config),
        )

    def __repr__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        via = f" via {self.hop.id!r}" if self.hop is not None else ""
        return f"<RemoteHost {self.id!r} {user}{self.address}:{self.port}{via}>"

    # -- secrets -------------------------------------------------------------------------

    def _reveal_password(self) -> str | None:
        value = reveal_password(self._password, self.id)
        if value and value not in self._revealed:
            self._revealed.append(value)
        return value

    def _secret_values(self) -> list[str]:
        # Also the not-yet-revealed value: a command logged before the first connect
        # may already contain it. Reading it here is for masking only.
        values = list(self._revealed)
        try:
            value = reveal_password(self._password, self.id)
        except Exception:
            value = None
        if value and value not in values:
            values.append(value)
        return values

    # -- the Host contract -------------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        """True while the shared SSH connection is up."""
        return self._ssh.is_connected

    def _make_shell_transport(self) -> SshShellTransport:
        return SshShellTransport(
            self._ssh, pty=self.pty, term_type=self.term_type, line_limit=self.line_limit
        )

    async def _oneshot(self, command: str, deadline: float, timeout: float) -> CommandStatus:
        output = OutputBuffer(self.max_output)
        session = _ExecSession(output)

        def timed_out(extra: str = "") -> CommandStatus:
            text = f"Command timed out after {format_seconds(timeout)}s{extra}"
            if len(output):
                text += f"; output before the timeout:\n{output.text()}"
            return CommandStatus(command, text, Status.Error, -1)

        try:
            channel = await self._ssh.open_channel(
                lambda: session, command=_MERGE_STDERR + command, encoding=None, deadline=deadline
            )
        except TimeoutError as exc:
            return timed_out(f" ({exc})")
        try:
            assert channel.chan is not None  # an exec channel always has one
            channel.chan.write_eof()  # empty stdin
            remaining = deadline - time.monotonic()
            try:
                if math.isinf(remaining):
                    await session.exited.wait()
                else:
                    await asyncio.wait_for(session.exited.wait(), max(remaining, 0))
            except TimeoutError:
                _kill(channel)
                return timed_out()
            if session.exit_status is None and session.exit_signal is None:
                cause = (
                    describe_ssh_error(session.lost) if session.lost else "channel closed without exit status"
                )
                text = f"Connection to {self.id} lost during the command: {cause}"
                if len(output):
                    text += f"; output before:\n{output.text()}"
                log.warning("%s: oneshot %s: %s", self.id, self._mask(command), cause)
                return CommandStatus(command, text, Status.Error, -1)
            await self._drain(session, deadline)
        except BaseException:
            _kill(channel)  # cancelled from outside: the remote command must not live on
            raise
        finally:
            await channel.close()
        if session.exit_signal is not None:
            number = _signal_number(session.exit_signal)
            code = 128 + number if number is not None else -1
        else:
            assert session.exit_status is not None
            code = session.exit_status
        return CommandStatus(command, output.text(), Status.Success if code == 0 else Status.Failed, code)

    async def _drain(self, session: _ExecSession, deadline: float) -> None:
        """Wait for the channel to close while output keeps coming (bounded)."""
        while not session.closed.is_set():
            seen = session.received
            session.data.clear()
            wait = min(ONESHOT_DRAIN_GRACE, deadline - time.monotonic())
            if wait <= 0:
                return
            try:
                await asyncio.wait_for(session.data.wait(), wait)
            except TimeoutError:
                if session.received == seen:
                    return  # a background child holds the channel open: stop here

    async def _put_file(self, src: Path, dest_dir: str) -> None:
        src = src.expanduser()
        if not src.is_file():
            raise FileNotFoundError(f"no such local file: {src}")
        remote_dir = _sftp_path(dest_dir)
        await self._with_sftp(lambda sftp: sftp_transfer.put_file(sftp, src, remote_dir))

    async def _get_file(self, src: str, dest_dir: Path) -> None:
        dest_dir = dest_dir.expanduser()
        dest_dir.mkdir(parents=True, exist_ok=True)
        remote = _sftp_path(src)
        await self._with_sftp(lambda sftp: sftp_transfer.get_file(sftp, remote, dest_dir))

    async def _with_sftp(self, action: Any) -> None:
        conn, slot = await self._ssh.channel_slot()
        try:
            async with conn.start_sftp_client() as sftp:
                await action(sftp)
        except asyncssh.SFTPError as exc:
            if isinstance(exc, asyncssh.SFTPConnectionLost) or conn.is_closed():
                raise HostConnectionError(self.id, f"connection lost during transfer: {exc.reason}") from None
            raise OSError(exc.reason) from None
        except (asyncssh.DisconnectError, asyncssh.ChannelOpenError) as exc:
            raise HostConnectionError(self.id, f"transfer failed: {describe_ssh_error(exc)}") from None
        except OSError as exc:
            if conn.is_closed():
                raise HostConnectionError(
                    self.id, f"connection lost during transfer: {describe_ssh_error(exc)}"
                ) from None
            raise
        finally:
            slot.release()

    async def _disconnect(self) -> None:
        await self._ssh.close()


def _kill(channel: Channel) -> None:
    """Kill the remote command's whole process group.

    sshd created that group with ``setsid`` for the command, and delivers the
    channel's ``signal`` request to it: the command and every child it did not
    move elsewhere die.
    """
    try:
        channel.send_signal("KILL")
    except Exception:  # called while cleaning up: never replace the error being handled
        log.debug("ssh: sending KILL to a oneshot failed", exc_info=True)


def _lab_host(lab: Any, host_id: str) -> RemoteHost:
    """Find the hop host ``host_id`` in ``lab`` (mapping-like or with ``.hosts``)."""
    host: Any = None
    getters: tuple[Callable[[], Any], ...] = (
        lambda: lab[host_id],
        lambda: lab.hosts[host_id],
        lambda: lab.get_host(host_id),
    )
    for getter in getters:
        try:
            host = getter()
        except (KeyError, AttributeError, TypeError, IndexError):
            continue
        if host is not None:
            break
    if not isinstance(host, RemoteHost):
        raise ValueError(f"hop {host_id!r} is not an SSH host of the lab")
    return host
