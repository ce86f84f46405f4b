"""Power through commands run on a lab host (a PDU's CLI, ``uhubctl``, ``ipmitool``, a relay script).

Each command runs with ``oneshot`` on the ``via`` host (the local machine by
default), after ``{id}``, ``{address}``, ``{port}`` and ``{vars.NAME}`` are replaced
by the controlled host's values. A command that fails is a `PowerError` naming the
host, the command as run and its output.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..result import CommandStatus
from .base import PowerControl, PowerError

if TYPE_CHECKING:
    from ..hosts.base import Host

__all__ = ["CommandPower", "expand", "placeholders"]

#: ``{id}``, ``{address}``, ``{port}``, ``{vars.NAME}``; ``${...}`` is the shell's and left alone.
_PLACEHOLDER = re.compile(r"(?<!\$)\{(id|address|port|vars\.[A-Za-z_][A-Za-z0-9_]*)\}")
#: How long one power command may run.
COMMAND_TIMEOUT = 60.0


def placeholders(command: str) -> list[str]:
    """The placeholders ``command`` uses (``id``, ``vars.pdu``, ...)."""
    return _PLACEHOLDER.findall(command)


def expand(command: str, values: Mapping[str, Any]) -> str:
    """``command`` with its placeholders replaced; `KeyError` names one without a value."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        found = values.get("vars", {}).get(name[5:]) if name.startswith("vars.") else values.get(name)
        if found is None:
            raise KeyError(name)
        return str(found)

    return _PLACEHOLDER.sub(value, command)


class CommandPower(PowerControl):
    """Power switched by shell commands on the ``via`` host.

    ``via``: a callable returning the host that runs the commands (looked up when
    used, so the lab can build hosts in any order). ``values``: what the
    placeholders expand to. ``status_on``: a regex on the status command's output
    meaning "powered"; without it the status command's exit code tells (0 on,
    1 off; anything else is an error).
    """

    def __init__(
        self,
        via: Callable[[], Host],
        *,
        on: str,
        off: str,
        cycle: str | None = None,
        status: str | None = None,
        status_on: str | None = None,
        off_delay: float = 1.0,
        values: Mapping[str, Any] | None = None,
        via_name: str = "local",
        timeout: float = COMMAND_TIMEOUT,
    ) -> None:
        self._via = via
        self.via_name = via_name
        self.commands = {"on": on, "off": off, "cycle": cycle, "status": status}
        self.status_on = re.compile(status_on) if status_on is not None else None
        self.off_delay = float(off_delay)
        self.values = dict(values or {})
        self.timeout = timeout

    def describe(self) -> str:
        """``commands on <via>``."""
        return f"commands on {self.via_name}"

    async def _run(self, host_id: str, action: str) -> CommandStatus:
        template = self.commands[action]
        assert template is not None
        try:
            command = expand(template, self.values)
        except KeyError as exc:
            why = f"power {action}: {template!r} uses {{{exc.args[0]}}}, which has no value"
            raise PowerError(host_id, why) from None
        via = self._via()
        result = await via.oneshot(command, timeout=self.timeout)
        if action == "status" and self._tells_status(result):
            return result
        if not result.ok:
            output = result.output.strip()
            raise PowerError(
                host_id,
                f"power {action}: command {command!r} on {via.id} failed"
                f" ({result.status.name}, exit code {result.retcode})"
                + (f": {output[-500:]}" if output else " with no output"),
            )
        return result

    def _tells_status(self, result: CommandStatus) -> bool:
        """A status command that ran says on or off by its output (``status_on``) or exit code."""
        if result.retcode in (-1, 126, 127):  # timed out, cannot run, not found
            return False
        return self.status_on is not None or result.retcode in (0, 1)

    async def on(self, host_id: str) -> None:
        """Run the ``on`` command."""
        await self._run(host_id, "on")

    async def off(self, host_id: str) -> None:
        """Run the ``off`` command."""
        await self._run(host_id, "off")

    async def cycle(self, host_id: str) -> None:
        """Run the ``cycle`` command, or off, ``off_delay``, on."""
        if self.commands["cycle"] is None:
            await super().cycle(host_id)
        else:
            await self._run(host_id, "cycle")

    async def status(self, host_id: str) -> bool | None:
        """Run the ``status`` command (None without one)."""
        if self.commands["status"] is None:
            return None
        result = await self._run(host_id, "status")
        if self.status_on is not None:
            return bool(self.status_on.search(result.output))
        return result.retcode == 0
