"""Exceptions and warnings of pytest-otto: one tree under `OttoError`.

::

    OttoError
    ├── LabError             (also a ValueError)       a mistake in a lab file; a secret not set
    ├── HostConnectionError  (also a ConnectionError)  a host not reached, not logged into, or lost
    │   └── LineHeld                                   a console line held by another session or process
    ├── OttoTimeout          (also a TimeoutError)     an interaction with a shell ran out of time
    │   ├── ExpectTimeout                              expect() saw no match; .output holds what it read
    │   └── SendTimeout                                send() could not write all of its text
    ├── CommandFailed                                  check() on a result whose command failed
    └── TransferFailed                                 check() on a put/get that failed

    ShellResetWarning        (a UserWarning)           a shell was replaced; its state is gone

``except pytest_otto.OttoError`` catches every error of the library. Each error
also derives from the builtin it refines (its second base), so ``except
ValueError`` / ``ConnectionError`` / ``TimeoutError`` written before this tree
existed still catch what they caught. Messages start with the host id (or the lab
file) and say the cause. A command that fails is a result, not an exception
(every command of a list runs); ``check()`` turns it into `CommandFailed` on demand.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .result import CommandStatus, RunResult, TransferResult

__all__ = [
    "CommandFailed",
    "ExpectTimeout",
    "HostConnectionError",
    "LabError",
    "LineHeld",
    "OttoError",
    "OttoTimeout",
    "SendTimeout",
    "ShellResetWarning",
    "TransferFailed",
]


class OttoError(Exception):
    """Base class of pytest-otto's own errors."""


class LabError(OttoError, ValueError):
    """A mistake in a lab file, found at load time (or a missing secret at connect time).

    The message names the file, the host id and the key, so the user can fix the
    file without reading a traceback; the plugin turns it into a usage error.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        host_id: str | None = None,
        key: str | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.host_id = host_id
        self.key = key
        self.reason = message
        where = []
        if self.path is not None:
            where.append(str(self.path))
        if host_id is not None:
            where.append(f"host {host_id!r}")
        if key is not None:
            where.append(f"key {key!r}")
        super().__init__(": ".join([*where, message]))


class HostConnectionError(OttoError, ConnectionError):
    """A host could not be reached, logged into, or its connection was lost.

    A ``ConnectionError`` so callers can catch the builtin; the message always
    starts with the host id.
    """

    def __init__(self, host_id: str, cause: str) -> None:
        super().__init__(f"{host_id}: {cause}")
        self.host_id = host_id
        self.cause = cause


class LineHeld(HostConnectionError):
    """A console line that carries one shell is held elsewhere: by another session of the
    host, or (a serial device's lock) by another process."""


class OttoTimeout(OttoError, TimeoutError):
    """An interaction with a shell did not finish within its timeout; the message names the host."""


class ExpectTimeout(OttoTimeout):
    """``expect()`` saw no match in time; ``output`` holds what was read."""

    def __init__(self, message: str, output: str) -> None:
        super().__init__(message)
        self.output = output


class SendTimeout(OttoTimeout):
    """``send()`` could not write all of its text in time: the shell stopped reading."""


class CommandFailed(OttoError):
    """A command did not succeed, raised by ``check()`` on its `RunResult` or `CommandStatus`.

    ``result`` is the checked result and ``failed`` its first entry that is not ok.
    """

    def __init__(self, result: RunResult | CommandStatus, failed: CommandStatus) -> None:
        retcode = f"exit code {failed.retcode}" if failed.retcode >= 0 else "no exit code"
        # The tail of what the caller may see: a `SecretText` output's masked form, never its value.
        output = str(getattr(failed.output, "_masked", failed.output))[-500:]
        super().__init__(
            f"command {failed.command!r} failed: {failed.status.name}, {retcode}; output: {output!r}"
        )
        self.result = result
        self.failed = failed


class TransferFailed(OttoError):
    """A ``put`` or ``get`` did not copy every file, raised by ``TransferResult.check()``."""

    def __init__(self, result: TransferResult) -> None:
        super().__init__(result.message)
        self.result = result


class ShellResetWarning(UserWarning):
    """A persistent shell died or could not be recovered and was replaced.

    Anything the earlier shell held (cwd, exported variables, functions) is gone.
    """
