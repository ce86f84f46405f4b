"""Result values: plain data, importable without starting anything.

``Status`` is an ``Enum`` (not an ``IntEnum``) on purpose: ``Status.Success`` has
the value 0, and an ``IntEnum`` would make it falsy, so ``if result.status:`` would
read backwards. Truthiness lives on ``RunResult`` instead, where it means "ok".
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from .errors import CommandFailed, TransferFailed

__all__ = ["CommandStatus", "RunResult", "Status", "TransferResult"]


class Status(enum.Enum):
    """Outcome of one command or one operation."""

    Success = 0
    Failed = 1
    Error = 2
    Unstable = 3
    Skipped = 4

    @property
    def is_ok(self) -> bool:
        """True for ``Success`` and ``Skipped``: nothing went wrong."""
        return self in (Status.Success, Status.Skipped)


class CommandStatus(NamedTuple):
    """One command's outcome.

    ``retcode`` is the shell's exit code, or -1 when the command never finished
    (timeout, lost connection, ended session).
    """

    command: str
    output: str
    status: Status
    retcode: int

    @property
    def ok(self) -> bool:
        """Same as ``bool(status)``: the command succeeded (as ``RunResult.ok``)."""
        return self.status.is_ok

    def __bool__(self) -> bool:
        # A tuple of four is always true: ``assert host.oneshot_sync(cmd)`` must not pass
        # on a failed command.
        return self.status.is_ok

    def check(self) -> CommandStatus:
        """This status when the command was ok, else raise `CommandFailed` (for chaining)."""
        if not self.status.is_ok:
            raise CommandFailed(self, self)
        return self


class TransferResult(NamedTuple):
    """The outcome of ``put`` or ``get``: unpacks as ``status, message``.

    ``message`` is empty on success, else it names the file and the cause. False
    when the transfer failed, so ``assert host.put_sync(src, dest)`` fails with it
    (a plain tuple of two would always be true).
    """

    status: Status
    message: str

    @property
    def ok(self) -> bool:
        """Same as ``bool(result)``: every file was copied."""
        return self.status.is_ok

    def __bool__(self) -> bool:
        return self.status.is_ok

    def check(self) -> TransferResult:
        """This result when every file was copied, else raise `TransferFailed`."""
        if not self.status.is_ok:
            raise TransferFailed(self)
        return self


class RunResult:
    """The outcome of ``Host.run()``: every command's status, in execution order.

    ``status`` is derived, so it can never disagree with ``statuses``: ``Success``
    when every entry is ok, else the first non-ok entry's status.
    """

    __slots__ = ("statuses",)

    def __init__(self, statuses: Iterable[CommandStatus]) -> None:
        self.statuses: list[CommandStatus] = list(statuses)

    @property
    def status(self) -> Status:
        """Aggregate status: the first non-ok entry's, else ``Success``."""
        for entry in self.statuses:
            if not entry.status.is_ok:
                return entry.status
        return Status.Success

    @property
    def only(self) -> CommandStatus:
        """The single entry; ``ValueError`` when there are none or several."""
        if len(self.statuses) != 1:
            raise ValueError(
                f"RunResult.only needs exactly one command status, this result has {len(self.statuses)}"
            )
        return self.statuses[0]

    @property
    def ok(self) -> bool:
        """Same as ``bool(result)``: every command was ok."""
        return self.status.is_ok

    def __bool__(self) -> bool:
        return self.status.is_ok

    def check(self) -> RunResult:
        """This result when every command was ok, else raise `CommandFailed` for the first that was not.

        As httpx's ``raise_for_status``: a failed command is a result (every command of
        a list runs); ``host.run_sync(cmds).check()`` makes it an exception on demand.
        """
        for entry in self.statuses:
            if not entry.status.is_ok:
                raise CommandFailed(self, entry)
        return self

    def __iter__(self) -> Iterator[CommandStatus]:
        return iter(self.statuses)

    def __len__(self) -> int:
        return len(self.statuses)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RunResult):
            return NotImplemented
        return self.statuses == other.statuses

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"RunResult(status={self.status!r}, statuses={self.statuses!r})"
