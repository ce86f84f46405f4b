"""The host API shared by every kind of host.

A `Host` turns the user's calls into work for its `ShellSession`s (``run``,
``send``, ``expect``) or for its transport-specific parts (``oneshot``, ``put``,
``get``). Every public coroutine is marshalled onto the otto loop (see
`pytest_otto.loop`), so a host works from any event loop and from none: each
``name()`` coroutine has a blocking twin ``name_sync()``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

from .. import loop
from ..config import Revealed, Secret
from ..errors import HostConnectionError
from ..output import DEFAULT_MAX_OUTPUT
from ..result import CommandStatus, RunResult, Status, TransferResult
from ..session import LostShell, ShellSession
from ..sudo import shown_command as shown_sudo_command
from ..sudo import wrap as wrap_in_sudo
from ..sudo_session import RootShell
from ..timeouts import DEFAULT, format_seconds, resolve_timeout, wait_bounded
from ..transcript import Transcript, TranscriptEntry, mask_secrets, shown_masked
from ..transports.base import TTY_LINE_LIMIT, Transport
from .board import BoardControl

if TYPE_CHECKING:
    from ..config import HostConfig

__all__ = ["DEFAULT", "Host", "PathArg", "Session"]

log = logging.getLogger("pytest_otto")

#: A file argument: one path or several.
PathArg = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]

DEFAULT_SESSION = "default"

#: Every host that may hold a live shell; closed when the interpreter exits, so no
#: shell process or connection outlives the test run.
_live_hosts: weakref.WeakSet[Host] = weakref.WeakSet()


async def _close_live_hosts() -> None:
    await asyncio.gather(*(h._close() for h in list(_live_hosts)), return_exceptions=True)


loop.on_shutdown(_close_live_hosts)


#: How long a oneshot whose command has exited still collects output: a background
#: job it started may hold the output open for as long as it runs.
ONESHOT_DRAIN_GRACE = 0.5


def resolve_line_limit(tty: bool, line_limit: int | object | None) -> int | None:
    """A host's ``line_limit`` option: `DEFAULT` by terminal, ``None`` for none, else >= 64."""
    if line_limit is DEFAULT:
        return TTY_LINE_LIMIT if tty else None
    if line_limit is None:
        return None
    if isinstance(line_limit, bool) or not isinstance(line_limit, int):
        raise TypeError(f"line_limit must be an int or None, not {type(line_limit).__name__}")
    if line_limit < 64:
        raise ValueError(f"line_limit must be at least 64 bytes (or None for no limit), not {line_limit}")
    return line_limit


def line_limit_from(config: HostConfig) -> int | object | None:
    """The lab file's ``line_limit`` as a host option: absent `DEFAULT`, ``0`` none."""
    if config.line_limit is None:
        return DEFAULT
    return config.line_limit or None


def reveal_password(password: str | Secret | None, host_id: str) -> Revealed | None:
    """The password to log in with, read now if it comes from the environment.

    It is a `Revealed`, so a traceback's locals (``pytest -l``) show a mask.
    """
    if password is None:
        return None
    if isinstance(password, str):
        return Revealed(password)
    return password.reveal(host_id, "password")


def _as_commands(commands: str | Sequence[str]) -> list[str]:
    if isinstance(commands, str):
        return [commands]
    if isinstance(commands, (bytes, bytearray)) or not isinstance(commands, Sequence):
        raise TypeError(f"commands must be a str or a sequence of str, not {type(commands).__name__}")
    result = list(commands)
    for index, command in enumerate(result):  # the whole list, before its first command runs
        if not isinstance(command, str):
            raise TypeError(f"each command must be a str, not {type(command).__name__}: {command!r}")
        if "\x00" in command:
            where = f"command {index + 1} of {len(result)}"
            raise ValueError(f"a command cannot contain NUL characters ({where})")
    return result


def _as_paths(files: PathArg) -> list[str]:
    if isinstance(files, (str, os.PathLike)):
        return [os.fspath(files)]
    return [os.fspath(f) for f in files]


class Session:
    """A named shell of a host, with its own state (cwd, variables).

    Use it as an async (or plain) context manager to close it at the end.
    """

    def __init__(self, host: Host, name: str, *, sudo: bool = False) -> None:
        self.host = host
        self.name = name
        #: Every command of this session runs as root (`pytest_otto.sudo_session`).
        self.sudo = sudo
        root = RootShell(host.id, getattr(host, "user", None), host._reveal_password) if sudo else None
        self._shell = ShellSession(
            host.id,
            name,
            host._make_shell_transport,
            connect_timeout=lambda: host.connect_timeout,
            max_output=lambda: host.max_output,
            mask=host._mask,
            after_start=root,
        )
        #: One ``run()`` call at a time: a list's commands run back to back (B12).
        self._calls = asyncio.Lock()

    def __repr__(self) -> str:
        return f"<Session {self.name!r} of {self.host.id!r}>"

    @property
    def is_open(self) -> bool:
        """True while this session has a live shell (it opens again on use)."""
        return self._shell.is_open

    async def _run(self, commands: str | Sequence[str], timeout: object, sudo: bool = False) -> RunResult:
        host = self.host
        commands = _as_commands(commands)
        budget = resolve_timeout(timeout, host.command_timeout)
        # Waiting for another call of this session (itself bounded) is not charged to
        # this call's budget: each call gets its own commands' time.
        async with self._calls:
            await host._check_lease()
            if not self._shell.is_open:
                # connecting (a console login can take seconds) is bounded by connect_timeout,
                # not charged to the commands' budget
                unanswered = await self._shell.open_for_commands()
                if unanswered is not None:
                    return self._not_run(commands, unanswered)
            deadline = time.monotonic() + budget
            statuses: list[CommandStatus] = []
            for command in commands:
                started, t0 = time.time(), time.monotonic()
                if t0 >= deadline:
                    status = CommandStatus(command, "Skipped: timeout budget exhausted", Status.Error, -1)
                else:
                    await host._check_lease()
                    if log.isEnabledFor(logging.DEBUG):
                        log.debug("%s[%s]: run %s", host.id, self.name, host._mask(command))
                    status = await self._run_one(command, deadline, budget, started, t0, sudo)
                statuses.append(host._record(self.name, "run", status, started, time.monotonic() - t0))
        return RunResult(statuses)

    async def _run_one(
        self, command: str, deadline: float, budget: float, started: float, t0: float, sudo: bool
    ) -> CommandStatus:
        call = wrap_in_sudo(command, self.host._reveal_password()) if sudo else None
        try:
            status = await self._shell.run_command(call.line if call else command, deadline, budget)
        except asyncio.CancelledError:
            # The caller was stopped (pytest-timeout, Ctrl-C): the transcript keeps the
            # command that hung, marked unfinished, with what it printed so far.
            shown = shown_sudo_command(command) if call else command
            partial = CommandStatus(shown, self._shell.unfinished_output, Status.Error, -1)
            self.host._record(self.name, "run", partial, started, time.monotonic() - t0, finished=False)
            raise
        return call.settle(status, self.host.id, getattr(self.host, "user", None)) if call else status

    def _not_run(self, commands: list[str], why: str) -> RunResult:
        """Each command an `Error` saying ``why``: no shell answered to run them."""
        started = time.time()
        statuses = [CommandStatus(command, why, Status.Error, -1) for command in commands]
        return RunResult([self.host._record(self.name, "run", s, started, 0.0) for s in statuses])

    async def run(
        self, commands: str | Sequence[str], timeout: float | object = DEFAULT, *, sudo: bool = False
    ) -> RunResult:
        """Run one command or a list, in order, in this session's shell.

        Every command runs even after a failure. ``timeout`` bounds the whole call
        (default: the host's ``command_timeout``; ``float("inf")`` for none).
        ``sudo=True`` runs each command as root (see `pytest_otto.sudo`).
        """
        return await loop.call(self._run(commands, timeout, sudo))

    def run_sync(
        self, commands: str | Sequence[str], timeout: float | object = DEFAULT, *, sudo: bool = False
    ) -> RunResult:
        """Blocking twin of `run`."""
        return loop.wait(self._run(commands, timeout, sudo))

    async def _expect(self, pattern: str | re.Pattern[str], timeout: object) -> str:
        return await self._shell.expect(pattern, resolve_timeout(timeout, self.host.command_timeout))

    def _send(self, text: str, timeout: object) -> Coroutine[Any, Any, None]:
        if not isinstance(text, str):
            raise TypeError(f"send() takes a str, not {type(text).__name__}")
        return self._checked_send(text, resolve_timeout(timeout, self.host.command_timeout))

    async def _checked_send(self, text: str, timeout: float) -> None:
        await self.host._check_lease()
        await self._shell.send(text, timeout)

    async def send(self, text: str, timeout: float | object = DEFAULT) -> None:
        """Write ``text`` to the shell exactly as given (add ``\\n`` yourself).

        Bounded like every call: a shell that stops reading (its input buffers full)
        raises ``TimeoutError`` naming the host after ``timeout`` (default: the host's
        ``command_timeout``); the next command then re-syncs with the shell.
        """
        await loop.call(self._send(text, timeout))

    def send_sync(self, text: str, timeout: float | object = DEFAULT) -> None:
        """Blocking twin of `send`."""
        loop.wait(self._send(text, timeout))

    async def expect(self, pattern: str | re.Pattern[str], timeout: float | object = DEFAULT) -> str:
        """Read until ``pattern`` matches; return the text up to and including the match.

        Raises `pytest_otto.ExpectTimeout` (a ``TimeoutError``) carrying what was read.
        """
        return await loop.call(self._expect(pattern, timeout))

    def expect_sync(self, pattern: str | re.Pattern[str], timeout: float | object = DEFAULT) -> str:
        """Blocking twin of `expect`."""
        return loop.wait(self._expect(pattern, timeout))

    async def _open(self) -> Session:
        await self.host._check_lease()
        await self._shell.open()
        return self

    async def close(self) -> None:
        """Close this shell; using the session again opens a fresh one."""
        await loop.call(self._shell.close())

    def close_sync(self) -> None:
        """Blocking twin of `close`."""
        loop.wait(self._shell.close())

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_sync()


class Host(BoardControl, ABC):
    """Base of every host: local, SSH, telnet, serial and tcp.

    ``id`` names the host in results, errors and test ids; ``tags`` and ``vars``
    come from the lab file. Timeouts are read at call time, so changing
    ``host.command_timeout`` takes effect at once.
    """

    #: The ``transport`` value of the lab file this class serves.
    transport_name: ClassVar[str] = ""
    #: One holder at a time (a serial line, a console server's port): two processes
    #: of one run must not both reach for it (pytest-xdist workers).
    single_holder: ClassVar[bool] = False

    def __init__(
        self,
        id: str,
        *,
        tags: Iterable[str] = (),
        vars: dict[str, Any] | None = None,
        command_timeout: float = 60.0,
        connect_timeout: float = 10.0,
        max_output: int = DEFAULT_MAX_OUTPUT,
    ) -> None:
        if not isinstance(id, str) or not id:
            raise ValueError(f"a host id must be a non-empty str, not {id!r}")
        self.id = id
        self.tags: tuple[str, ...] = tuple(tags)
        self.vars: dict[str, Any] = dict(vars or {})
        self.command_timeout = resolve_timeout(command_timeout, 60.0)
        self.connect_timeout = resolve_timeout(connect_timeout, 10.0)
        self.max_output = max_output
        self.transcript = Transcript()
        self._sessions: dict[str, Session] = {}
        #: Awaited before anything is sent to the device; raises to refuse (a lost lease,
        #: see `pytest_otto.leases`). None: nothing to check.
        self.lease_guard: Callable[[], Awaitable[None]] | None = None
        _live_hosts.add(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id!r}>"

    # -- what a kind of host provides --------------------------------------------

    @classmethod
    def from_config(cls, config: Any, lab: Any = None) -> Host:
        """Build from its transport's typed lab-file config (see `pytest_otto.registry`)."""
        raise NotImplementedError(f"{cls.__name__} cannot be built from a lab file")

    @abstractmethod
    def _make_shell_transport(self) -> Transport:
        """A new, unopened transport to a shell of this host."""

    @abstractmethod
    async def _oneshot(self, command: str, deadline: float, timeout: float) -> CommandStatus:
        """Run ``command`` in a fresh process with empty stdin (on the otto loop)."""

    @abstractmethod
    async def _put_file(self, src: Path, dest_dir: str) -> None:
        """Copy local ``src`` to ``dest_dir/<name>`` on the host; raise on failure."""

    @abstractmethod
    async def _get_file(self, src: str, dest_dir: Path) -> None:
        """Copy host file ``src`` to local ``dest_dir/<name>``; raise on failure."""

    async def _disconnect(self) -> None:
        """Release shared resources (an SSH connection) after the sessions closed."""
        return None

    def _secret_values(self) -> list[str]:
        """Revealed secrets of this host, masked in transcripts and logs."""
        return []

    def _reveal_password(self) -> str | None:
        """The lab's password of this host's user (read now), or None: what sudo is fed."""
        return None

    # -- helpers for subclasses --------------------------------------------------------

    async def _check_lease(self) -> None:
        if self.lease_guard is not None:
            await self.lease_guard()

    def _mask(self, text: str) -> str:
        return mask_secrets(text, self._secret_values())

    def _record(
        self,
        session: str,
        kind: str,
        status: CommandStatus,
        started: float,
        duration: float,
        finished: bool = True,
    ) -> CommandStatus:
        """Add ``status`` to the transcript, masked; return it as the caller should see it.

        A command or output that holds a secret comes back intact, as a `SecretText`
        whose repr is masked: assertion messages and ``pytest -l`` do not print it.
        """
        secrets = self._secret_values()  # once: an SSH host reveals its password to list it
        command = mask_secrets(status.command, secrets)
        output = mask_secrets(status.output, secrets)
        self.transcript.append(
            TranscriptEntry(
                host_id=self.id,
                session=session,
                kind=kind,
                command=command,
                output=output,
                status=status.status,
                retcode=status.retcode,
                started=started,
                duration=duration,
                finished=finished,
            )
        )
        log.debug(
            "%s[%s]: %s %s -> %s/%s", self.id, session, kind, command, status.status.name, status.retcode
        )
        if command is status.command and output is status.output:
            return status
        return status._replace(
            command=shown_masked(status.command, command), output=shown_masked(status.output, output)
        )

    def _session(self, name: str, sudo: bool = False) -> Session:
        session = self._sessions.get(name)
        if session is None:
            session = self._sessions[name] = Session(self, name, sudo=sudo)
        elif session.sudo != sudo:
            who = ("the login user", "root")
            raise ValueError(
                f"{self.id}: session {name!r} runs as {who[session.sudo]}, not as {who[sudo]}:"
                " close it first, or use another name"
            )
        return session

    @property
    def default_session(self) -> Session:
        """The session behind ``run``, ``send`` and ``expect``."""
        return self._session(DEFAULT_SESSION)

    # -- run / oneshot ---------------------------------------------------------------

    async def run(
        self, commands: str | Sequence[str], timeout: float | object = DEFAULT, *, sudo: bool = False
    ) -> RunResult:
        """Run one command or a list on the host's persistent shell.

        State (cwd, variables) carries over between calls. Commands run in order
        and all run even after a failure; ``timeout`` bounds the whole call.
        ``sudo=True`` runs each command as root with ``sudo``, fed the lab's
        ``password`` when sudo asks (see `pytest_otto.sudo`).
        """
        return await loop.call(self.default_session._run(commands, timeout, sudo))

    def run_sync(
        self, commands: str | Sequence[str], timeout: float | object = DEFAULT, *, sudo: bool = False
    ) -> RunResult:
        """Blocking twin of `run`."""
        return loop.wait(self.default_session._run(commands, timeout, sudo))

    async def _oneshot_checked(self, command: str, timeout: object) -> CommandStatus:
        if not isinstance(command, str):
            raise TypeError(f"oneshot() takes one command as a str, not {type(command).__name__}")
        budget = resolve_timeout(timeout, self.command_timeout)
        await self._check_lease()
        started, t0 = time.time(), time.monotonic()
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s: oneshot %s", self.id, self._mask(command))
        try:
            status = await self._oneshot(command, t0 + budget, budget)
        except asyncio.CancelledError:  # the caller was stopped: keep the command that hung
            partial = CommandStatus(command, "", Status.Error, -1)
            self._record("oneshot", "oneshot", partial, started, time.monotonic() - t0, finished=False)
            raise
        return self._record("oneshot", "oneshot", status, started, time.monotonic() - t0)

    async def oneshot(self, command: str, timeout: float | object = DEFAULT) -> CommandStatus:
        """Run ``command`` in a fresh process: no shared state, empty stdin.

        Safe under ``asyncio.gather``.
        """
        return await loop.call(self._oneshot_checked(command, timeout))

    def oneshot_sync(self, command: str, timeout: float | object = DEFAULT) -> CommandStatus:
        """Blocking twin of `oneshot`."""
        return loop.wait(self._oneshot_checked(command, timeout))

    # -- sessions, send / expect ------------------------------------------------------

    async def open_session(self, name: str, *, sudo: bool = False) -> Session:
        """Open (or return the already open) shell session called ``name``.

        ``sudo=True``: a session whose shell is root's (``sudo -s``, fed the lab's
        ``password`` when sudo asks), for a test whose every step needs root; see
        `pytest_otto.sudo_session`.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"a session name must be a non-empty str, not {name!r}")
        return await loop.call(self._session(name, sudo)._open())

    def open_session_sync(self, name: str, *, sudo: bool = False) -> Session:
        """Blocking twin of `open_session`."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a session name must be a non-empty str, not {name!r}")
        return loop.wait(self._session(name, sudo)._open())

    async def send(self, text: str, timeout: float | object = DEFAULT) -> None:
        """Write ``text`` to the default shell exactly as given (see `Session.send`)."""
        await self.default_session.send(text, timeout)

    def send_sync(self, text: str, timeout: float | object = DEFAULT) -> None:
        """Blocking twin of `send`."""
        self.default_session.send_sync(text, timeout)

    async def expect(self, pattern: str | re.Pattern[str], timeout: float | object = DEFAULT) -> str:
        """Read the default shell until ``pattern`` matches (see `Session.expect`)."""
        return await self.default_session.expect(pattern, timeout)

    def expect_sync(self, pattern: str | re.Pattern[str], timeout: float | object = DEFAULT) -> str:
        """Blocking twin of `expect`."""
        return self.default_session.expect_sync(pattern, timeout)

    # -- transfers -----------------------------------------------------------------

    async def _transfer(
        self, kind: str, src_files: PathArg, dest_dir: str | os.PathLike[str], timeout: object
    ) -> TransferResult:
        budget = resolve_timeout(timeout, self.command_timeout)
        files = _as_paths(src_files)
        await self._check_lease()
        dest = os.fspath(dest_dir)
        started, t0 = time.time(), time.monotonic()
        result = TransferResult(Status.Success, "")
        for src in files:
            try:
                if kind == "put":
                    await wait_bounded(self._put_file(Path(src), dest), budget - (time.monotonic() - t0))
                else:
                    await wait_bounded(self._get_file(src, Path(dest)), budget - (time.monotonic() - t0))
            except TimeoutError:
                result = TransferResult(
                    Status.Error, f"{self.id}: {kind} {src}: timed out after {format_seconds(budget)}s"
                )
            except HostConnectionError as exc:
                result = TransferResult(Status.Error, f"{kind} {src}: {exc}")
            except Exception as exc:
                result = TransferResult(Status.Failed, f"{self.id}: {kind} {src} -> {dest}: {exc}")
            if not result:
                break
        summary = CommandStatus(
            f"{kind} {' '.join(files)} -> {dest}", result.message, result.status, 0 if result else -1
        )
        self._record("transfer", kind, summary, started, time.monotonic() - t0)
        return result

    async def put(
        self, src_files: PathArg, dest_dir: str | os.PathLike[str], timeout: float | object = DEFAULT
    ) -> TransferResult:
        """Copy local files to ``dest_dir`` on the host, byte-identical, mode kept.

        Returns a `TransferResult`: ``(Status.Success, "")``, or a non-ok status and a
        message naming the file; it is false when the transfer failed.
        """
        return await loop.call(self._transfer("put", src_files, dest_dir, timeout))

    def put_sync(
        self, src_files: PathArg, dest_dir: str | os.PathLike[str], timeout: float | object = DEFAULT
    ) -> TransferResult:
        """Blocking twin of `put`."""
        return loop.wait(self._transfer("put", src_files, dest_dir, timeout))

    async def get(
        self, src_files: PathArg, dest_dir: str | os.PathLike[str], timeout: float | object = DEFAULT
    ) -> TransferResult:
        """Copy files from the host into local ``dest_dir``; same results as `put`."""
        return await loop.call(self._transfer("get", src_files, dest_dir, timeout))

    def get_sync(
        self, src_files: PathArg, dest_dir: str | os.PathLike[str], timeout: float | object = DEFAULT
    ) -> TransferResult:
        """Blocking twin of `get`."""
        return loop.wait(self._transfer("get", src_files, dest_dir, timeout))

    # -- lifetime ------------------------------------------------------------------

    async def _connect(self) -> None:
        await self._check_lease()
        await self.default_session._shell.open()

    async def connect(self) -> None:
        """Connect and open the default shell now instead of on first use.

        Raises `HostConnectionError` (a ``ConnectionError``) naming the host.
        """
        await loop.call(self._connect())

    def connect_sync(self) -> None:
        """Blocking twin of `connect`."""
        loop.wait(self._connect())

    def _take_lost_shells(self) -> list[LostShell]:
        """The shells of this host's sessions lost and not replaced yet (on the otto loop);
        see `LostShell`."""
        taken = (s._shell.take_lost_shell() for s in list(self._sessions.values()))
        return [lost for lost in taken if lost is not None]

    async def _close(self, *, silently: bool = False) -> None:
        # Named sessions stay registered: one the caller still holds reopens on use,
        # and the next close() closes it again. ``silently``: see `ShellSession.close`.
        sessions = list(self._sessions.values())
        await asyncio.gather(*(s._shell.close(silently=silently) for s in sessions), return_exceptions=True)
        await self._disconnect()

    async def close(self) -> None:
        """Close every session and connection; the host reconnects if used again."""
        await loop.call(self._close())

    def close_sync(self) -> None:
        """Blocking twin of `close`."""
        loop.wait(self._close())

    async def __aenter__(self) -> Host:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __enter__(self) -> Host:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close_sync()
