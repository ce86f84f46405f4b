"""A whole session as root: its shell replaced by ``sudo -s`` each time it starts.

``host.open_session(name, sudo=True)`` gives a session whose every command runs as
root without ``sudo`` in front: after the login user's shell has started (and again
whenever a lost shell is replaced), it is replaced by ``exec sudo -s``, root's
shell (``$SHELL``, as sudo picks it) in the same directory, which the session then
sets up like any fresh shell. ``exit`` ends the session, as it ends any session; it
never falls back to the login user.

Whether sudo needs a password is found out first, the way ``run(cmd, sudo=True)``
runs a command (`pytest_otto.sudo`): the lab's password on a pipe from ``printf``,
sudo's prompt a fresh random marker. So a password the lab lacks, or one sudo
refuses, is a `HostConnectionError` that says so and names the host, before any
shell is replaced. Where sudo asked, the ``exec`` ignores cached credentials
(``-k``) so that it asks again, deterministically, and the password is typed
after its prompt, on the shell's stdin; it never appears in a transcript, a log
or an error.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import HostConnectionError
from .framing import shell_quote
from .result import CommandStatus, Status
from .sudo import wrap

if TYPE_CHECKING:
    from .session import ShellSession

__all__ = ["RootShell"]


class RootShell:
    """The step that turns a freshly started session shell into root's (see the module)."""

    def __init__(self, host_id: str, user: str | None, password: Callable[[], str | None]) -> None:
        self.host_id = host_id
        self.user = user
        #: the lab's password of the login user, read each time a shell starts
        self._password = password

    async def __call__(self, shell: ShellSession, deadline: float) -> None:
        """Replace the set-up shell of ``shell`` by root's; set that one up too."""
        password = self._password()
        if await self._check(shell, deadline, password):
            prompt = f"OTTO_SUDO_{secrets.token_hex(6)}"
            # the prompt ends its line, so that it is waited for as a line
            await shell._write(f"exec sudo -k -S -p {shell_quote(prompt + chr(10))} -s\n", deadline)
            await shell._await_line(prompt.encode(), deadline)
            assert password is not None  # _check raised otherwise
            await shell._write(password + "\n", deadline)
        else:  # no password needed (NOPASSWD, or root): none may be asked now either
            await shell._write("exec sudo -n -s\n", deadline)
        await shell._probe(deadline, setup=True)

    async def _check(self, shell: ShellSession, deadline: float, password: str | None) -> bool:
        """Whether sudo asks this user for a password; raise when it cannot get one."""
        call = wrap("true", password)
        done = f"OTTO_SUDO_{secrets.token_hex(6)}_"
        await shell._write(f"{call.line}; printf '%s%s\\n' {done[:5]} {done[5:]}$?\n", deadline)
        output, rest = await shell._await_text_and_line(done.encode(), deadline)
        code = int(rest) if rest.isdigit() else -1
        status = CommandStatus("true", output, Status.Success if code == 0 else Status.Failed, code)
        settled = call.settle(status, self.host_id, self.user)
        if settled.status is Status.Error:
            why = settled.output.removeprefix(f"{self.host_id}: ")
            raise HostConnectionError(self.host_id, f"cannot open a root session: {why}")
        if code != 0:
            raise HostConnectionError(
                self.host_id, f"cannot open a root session: sudo failed (exit code {code}): {settled.output}"
            )
        return call.marker in output
