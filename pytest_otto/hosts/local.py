"""The machine pytest runs on."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..output import OutputBuffer
from ..result import CommandStatus, Status
from ..timeouts import DEFAULT, format_seconds
from ..transports.local import LocalShellTransport
from ..transports.reaper import forget_session, watch_session
from .base import ONESHOT_DRAIN_GRACE, Host, line_limit_from, resolve_line_limit

if TYPE_CHECKING:
    from ..config import LocalConfig

__all__ = ["ONESHOT_SHELL", "LocalHost"]

#: The command line of a oneshot, before the command: started as the session shell is
#: (``--norc --noprofile``). A plain ``bash -c`` reads ``~/.bashrc`` when it believes
#: sshd started it (``SSH_CLIENT`` set and ``SHLVL`` below 2, as under a CI runner
#: that logs in over SSH and starts Python directly), so whatever the user's rc file
#: prints (pyenv's messages, say) would land in the command's output.
ONESHOT_SHELL = ("bash", "--norc", "--noprofile", "-c")


class LocalHost(Host):
    """The local machine: a persistent ``bash`` for ``run``, ``bash -c`` for ``oneshot``.

    Neither shell reads the user's startup files (``--norc --noprofile``): their output
    would be mixed into results. ``BASH_ENV``, which a user sets on purpose, is read
    by both, as by every non-interactive bash.

    ``pty=False`` (the default) runs each session's shell on pipes, as ``ssh host
    cmd`` would: a non-interactive ``bash --norc --noprofile``, the fastest per
    command. ``pty=True`` runs an interactive bash on a pty with job control, for
    programs that need a terminal (see `pytest_otto.transports.local`). ``shell``
    replaces the bash command line (the default depends on ``pty``). ``line_limit``
    sends longer commands in acknowledged pieces (by default 512 on a pty, where a
    small shell such as BusyBox ash may cut long typed lines; none on pipes).
    ``put``/``get`` are local copies. The default id is ``local``.
    """

    transport_name = "local"

    def __init__(
        self,
        id: str = "local",
        *,
        shell: Sequence[str] | None = None,
        pty: bool = False,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        line_limit: int | object | None = DEFAULT,
        **options: Any,
    ) -> None:
        super().__init__(id, **options)
        self.shell = list(shell) if shell is not None else None
        self.pty = bool(pty)
        self.line_limit = resolve_line_limit(self.pty, line_limit)
        self.env = dict(env) if env is not None else None
        self.cwd = os.fspath(cwd) if cwd is not None else None

    @classmethod
    def from_config(cls, config: LocalConfig, lab: object = None) -> LocalHost:
        """Build from a lab file entry."""
        return cls(
            config.id,
            tags=config.tags,
            vars=config.vars,
            command_timeout=config.command_timeout,
            connect_timeout=config.connect_timeout,
            max_output=config.max_output,
            pty=config.pty,
            line_limit=line_limit_from(config),
        )

    def _make_shell_transport(self) -> LocalShellTransport:
        transport = LocalShellTransport(self.shell, pty=self.pty, env=self.env, cwd=self.cwd)
        transport.line_limit = self.line_limit
        return transport

    async def _oneshot(self, command: str, deadline: float, timeout: float) -> CommandStatus:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.subprocess_exec(
            lambda: _ExitWatch(limit=1 << 18, loop=loop),
            *ONESHOT_SHELL,
            command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed whole on timeout
            env=self.env,
            cwd=self.cwd,
        )
        pid = transport.get_pid()
        watch_session(pid)  # killed with this process while it runs (see the reaper)
        try:
            return await _finish_oneshot(command, transport, protocol, self.max_output, deadline, timeout)
        finally:
            forget_session(pid)

    async def _put_file(self, src: Path, dest_dir: str) -> None:
        await _copy_in_thread(src, Path(dest_dir))

    async def _get_file(self, src: str, dest_dir: Path) -> None:
        await _copy_in_thread(Path(src), dest_dir)


async def _finish_oneshot(
    command: str,
    transport: asyncio.SubprocessTransport,
    protocol: _ExitWatch,
    max_output: int,
    deadline: float,
    timeout: float,
) -> CommandStatus:
    """Collect a oneshot's output until it exits (or its time is up)."""
    loop = asyncio.get_running_loop()
    proc = asyncio.subprocess.Process(transport, protocol, loop)
    output = OutputBuffer(max_output)
    assert proc.stdout is not None
    stdout = proc.stdout

    async def pump() -> None:
        while chunk := await stdout.read(1 << 18):
            output.append(chunk)

    reader = asyncio.ensure_future(pump())
    try:
        remaining = deadline - time.monotonic()
        # Not proc.wait(): on Python 3.11 it also waits for the output pipe to close,
        # which a background job (`daemon &`) holds open for as long as it runs.
        await asyncio.wait_for(
            protocol.exited.wait(), None if remaining == float("inf") else max(remaining, 0)
        )
    except TimeoutError:
        _kill_group(proc.pid)
        await proc.wait()
        await _settle(reader)
        text = f"Command timed out after {format_seconds(timeout)}s"
        if len(output):
            text += f"; output before the timeout:\n{output.text()}"
        return CommandStatus(command, text, Status.Error, -1)
    except BaseException:
        _kill_group(proc.pid)
        reader.cancel()
        raise
    await _settle(reader)
    transport.close()  # our end of a pipe a background job may still hold; the job lives on
    returncode = proc.returncode
    assert returncode is not None
    code = returncode if returncode >= 0 else 128 - returncode
    return CommandStatus(command, output.text(), Status.Success if code == 0 else Status.Failed, code)


async def _copy_in_thread(src: Path, dest_dir: Path) -> None:
    """`_copy` in a worker thread that stops, leaving nothing behind, when the call is cancelled.

    A thread cannot be cancelled: without the flag a copy that timed out would go on
    and finish after the result said it had not.
    """
    stop = threading.Event()
    try:
        await asyncio.to_thread(_copy, src, dest_dir, stop)
    except BaseException:
        stop.set()
        raise


#: How much a local copy moves between two looks at its stop flag.
COPY_CHUNK = 1 << 20


def _copy(src: Path, dest_dir: Path, stop: threading.Event) -> None:
    """Copy ``src`` into ``dest_dir`` (content, mode, times) under a temporary name, renamed
    at the end: a copy that stops halfway leaves no partial file."""
    src = src.expanduser()
    if not src.is_file():
        raise FileNotFoundError(f"no such file: {src}")
    dest_dir = dest_dir.expanduser()
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / src.name
    # a name of this copy's own: two hosts on one machine may copy the same file at once
    partial = dest_dir / f".{src.name}.{secrets.token_hex(4)}.otto-partial"
    try:
        with open(src, "rb") as reader, open(partial, "wb") as writer:
            while chunk := reader.read(COPY_CHUNK):
                if stop.is_set():
                    raise InterruptedError(f"copy of {src} stopped")
                writer.write(chunk)
        shutil.copystat(src, partial)
        if stop.is_set():
            raise InterruptedError(f"copy of {src} stopped")
        os.replace(partial, dest)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass


class _ExitWatch(asyncio.subprocess.SubprocessStreamProtocol):
    """The stream protocol of ``create_subprocess_exec``, plus an event set when the
    process exits (not when its output pipe closes)."""

    def __init__(self, *, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=limit, loop=loop)
        self.exited = asyncio.Event()

    def process_exited(self) -> None:
        super().process_exited()
        self.exited.set()


async def _settle(reader: asyncio.Future[None]) -> None:
    """Give the output reader a moment; a background child may hold the pipe open."""
    try:
        await asyncio.wait_for(asyncio.shield(reader), ONESHOT_DRAIN_GRACE)
    except TimeoutError:
        reader.cancel()
