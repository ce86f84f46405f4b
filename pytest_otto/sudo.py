"""Running one command as root through ``sudo``, with the lab's password.

``host.run(cmd, sudo=True)`` runs ``cmd`` in ``sh -c`` under ``sudo -S``, in the
session's current directory. The password is the host's lab ``password`` (the
user's own, which is what sudo asks for). It reaches sudo on a pipe from the
shell's ``printf`` builtin, so it is in no process's argument list, and the
command's own stdin is ``/dev/null``, so a command sudo let through without asking
cannot read it. Transcripts, logs and results show ``sudo sh -c '<cmd>'``; the
password is masked wherever it could still appear (an ``xtrace`` of the line).

sudo's prompt is a fresh random marker (``-p``), so what sudo did is read from the
output, whatever the remote language: no marker, it did not ask; one, it asked and
took the password; more, it asked again because the password was wrong. Everything
up to the last marker (a first-use lecture, "Sorry, try again.") is sudo's own and
is cut from the command's output.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from .framing import shell_quote
from .result import CommandStatus, Status

__all__ = ["SudoCall", "shown_command", "wrap"]


@dataclass(frozen=True)
class SudoCall:
    """One command as sent through sudo, and what is needed to read its outcome."""

    command: str
    line: str
    marker: str
    with_password: bool

    def settle(self, status: CommandStatus, host_id: str, user: str | None) -> CommandStatus:
        """``status`` of the wrapped line as the caller should see it: the user's command,
        its own output, and an ``Error`` naming the cause when sudo never ran it."""
        output = status.output
        asked = output.count(self.marker)
        shown = shown_command(self.command)
        if asked == 0:
            return status._replace(command=shown)
        sudo_said = output.rsplit(self.marker, 1)[1].strip()
        who = f"user {user!r}" if user else "the login user"
        if not self.with_password:
            message = (
                f"{host_id}: sudo asked for the password of {who}, and the lab has no password"
                f" for this host: set `password` in its [hosts.{host_id}] table (or let {who} run"
                f" sudo without one, NOPASSWD)"
            )
        elif asked > 1:
            message = f"{host_id}: sudo refused the lab's password for {who}"
        else:  # asked once, and took the password
            return status._replace(command=shown, output=output.rsplit(self.marker, 1)[1].lstrip("\n"))
        detail = f"; sudo said: {sudo_said}" if sudo_said else ""
        return CommandStatus(shown, message + detail, Status.Error, -1)  # -1: sudo never ran it


def shown_command(command: str) -> str:
    """How a command run through sudo appears in results and transcripts."""
    return f"sudo sh -c {shell_quote(command)}"


def wrap(command: str, password: str | None) -> SudoCall:
    """The shell line that runs ``command`` as root, fed ``password`` if sudo asks for one."""
    marker = f"OTTO_SUDO_{secrets.token_hex(6)}:"
    inner = shell_quote(f"exec </dev/null; {command}")
    sudo = f"sudo -S -p {shell_quote(marker)} -- sh -c {inner}"
    if password is None:
        return SudoCall(command, f"{sudo} </dev/null", marker, with_password=False)
    return SudoCall(command, f"printf '%s\\n' {shell_quote(password)} | {sudo}", marker, with_password=True)
