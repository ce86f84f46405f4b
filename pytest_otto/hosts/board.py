"""What makes a host a board under test: power, reboot, waiting for it (a mixin of `Host`).

The work is done in `pytest_otto.power` (the switches) and `pytest_otto.reboot`
(reboot and the waits); this holds the host's face of it, each coroutine with its
blocking ``_sync`` twin, marshalled onto the otto loop like every host call.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, cast

from .. import loop
from ..power.base import ACTIONS, PowerControl, PowerError
from ..result import CommandStatus, Status
from ..timeouts import DEFAULT, resolve_timeout

if TYPE_CHECKING:
    from ..config import HostConfig
    from ..lab import Lab
    from .base import Host

__all__ = ["BOOT_TIMEOUT", "BoardControl", "configure_board"]

log = logging.getLogger("pytest_otto")

#: Default bound of `BoardControl.reboot` and the waits: a board's boot, seconds.
BOOT_TIMEOUT = 180.0


class BoardControl:
    """Power control, reboot and the waits; mixed into every `Host`."""

    #: The host's power switch (``[hosts.X.power]``, or set in code); None: no power control.
    power_control: PowerControl | None = None
    #: What a soft `reboot` runs on the host's shell.
    reboot_command: str = "reboot"
    #: How long `reboot`, `wait_until_up` and `wait_until_down` wait by default, seconds.
    boot_timeout: float = BOOT_TIMEOUT
    #: ``"power-cycle"``: a pytest run power-cycles this host once when it stops answering.
    recover: str | None = None

    def _where_up(self) -> str:
        """Where "up" is looked for, for messages (a console says which)."""
        return "its default shell"

    @property
    def _host(self) -> Host:
        return cast("Host", self)

    async def _power_action(self, action: str) -> None:
        host = self._host
        if action not in ACTIONS:
            raise ValueError(f"{host.id}: power action must be one of {', '.join(ACTIONS)}, not {action!r}")
        control = self.power_control
        if control is None:
            raise PowerError(
                host.id, f"power {action}: this host has no power control (add [hosts.{host.id}.power])"
            )
        started, t0 = time.time(), time.monotonic()
        log.info("%s: power %s (%s)", host.id, action, control.describe())
        await getattr(control, action)(host.id)
        status = CommandStatus(f"power {action}", control.describe(), Status.Success, 0)
        host._record("power", "power", status, started, time.monotonic() - t0)
        if action != "on":
            # the shells of the old power-on are gone (no ShellResetWarning): nothing is typed
            # at what boots now (a logout, giving a console's line back)
            await host._close(silently=True)

    async def power(self, action: str) -> None:
        """Switch the host ``"on"``, ``"off"`` or ``"cycle"`` it (off, a pause, on).

        Raises `pytest_otto.power.PowerError` naming the host, the command and its output.
        """
        await loop.call(self._power_action(action))

    def power_sync(self, action: str) -> None:
        """Blocking twin of `power`."""
        loop.wait(self._power_action(action))

    async def _power_status(self) -> bool | None:
        control, host_id = self.power_control, self._host.id
        if control is None:
            why = f"power status: this host has no power control (add [hosts.{host_id}.power])"
            raise PowerError(host_id, why)
        return await control.status(host_id)

    async def power_status(self) -> bool | None:
        """True (powered), False (off), or None when the switch cannot tell."""
        return await loop.call(self._power_status())

    def power_status_sync(self) -> bool | None:
        """Blocking twin of `power_status`."""
        return loop.wait(self._power_status())

    def _boot_budget(self, timeout: object) -> float:
        return resolve_timeout(timeout, self.boot_timeout)

    async def _reboot(self, hard: bool, wait: bool, timeout: object) -> None:
        from ..reboot import reboot

        await reboot(self._host, hard=hard, wait=wait, timeout=self._boot_budget(timeout))

    async def reboot(self, hard: bool = False, wait: bool = True, timeout: float | object = DEFAULT) -> None:
        """Reboot: soft runs `reboot_command` on the shell, ``hard`` power-cycles the host.

        The connection dropping is expected. With ``wait`` this returns once a shell of
        the new boot answers (bounded by ``timeout``, default `boot_timeout`); every
        session is fresh afterwards, without a ``ShellResetWarning``.
        """
        await loop.call(self._reboot(hard, wait, timeout))

    def reboot_sync(self, hard: bool = False, wait: bool = True, timeout: float | object = DEFAULT) -> None:
        """Blocking twin of `reboot`."""
        loop.wait(self._reboot(hard, wait, timeout))

    async def _wait_up(self, timeout: object) -> None:
        from ..reboot import wait_until_up

        await wait_until_up(self._host, self._boot_budget(timeout))

    async def wait_until_up(self, timeout: float | object = DEFAULT) -> None:
        """Return once the host's shell answers a command; ``TimeoutError`` naming what was awaited."""
        await loop.call(self._wait_up(timeout))

    def wait_until_up_sync(self, timeout: float | object = DEFAULT) -> None:
        """Blocking twin of `wait_until_up`."""
        loop.wait(self._wait_up(timeout))

    async def _wait_down(self, timeout: object) -> None:
        from ..reboot import wait_until_down

        await wait_until_down(self._host, self._boot_budget(timeout))

    async def wait_until_down(self, timeout: float | object = DEFAULT) -> None:
        """Return once the host stops answering (a fresh connection fails or no shell
        answers within a few seconds); ``TimeoutError`` naming what was awaited."""
        await loop.call(self._wait_down(timeout))

    def wait_until_down_sync(self, timeout: float | object = DEFAULT) -> None:
        """Blocking twin of `wait_until_down`."""
        loop.wait(self._wait_down(timeout))


RECOVER_CHOICES = ("power-cycle",)


def parse_recover(value: object) -> str:
    """The lab loader's parser of ``recover`` (see `pytest_otto.registry`)."""
    if value not in RECOVER_CHOICES:
        raise ValueError(f"expected one of {', '.join(map(repr, RECOVER_CHOICES))}, got {value!r}")
    return str(value)


def configure_board(host: Host, config: HostConfig, lab: Lab) -> None:
    """Give ``host`` what its lab file entry says about power, bootloader and recovery.

    A ``{vars.NAME}`` the power commands use but the host lacks, a ``via`` host the
    lab lacks, or ``recover`` without power is a `LabError` naming the host and the key.
    """
    from ..errors import LabError
    from ..power.config import check_power_table, power_from_table

    sections = config.sections
    power = sections.get("power")
    if power is not None:
        try:
            table = check_power_table(dict(power), config.vars)
        except ValueError as exc:
            raise LabError(str(exc), path=lab.path, host_id=config.id, key="power") from None
        via = table.get("via", "local")
        known = lab.config.ids if lab.config is not None else lab.ids  # hosts not built yet count
        if "qmp" not in table and via not in known and via != "local":
            raise LabError(
                f"power.via: no host {via!r} in this lab", path=lab.path, host_id=config.id, key="power"
            )
        values = {
            "id": config.id,
            "address": getattr(config, "address", None),
            "port": getattr(config, "port", None),
            "vars": config.vars,
        }
        host.power_control = power_from_table(table, values, lambda name: _via_host(lab, name))
    if "recover" in sections:
        if power is None:
            raise LabError(
                "needs power control: add a [hosts.<id>.power] table",
                path=lab.path,
                host_id=config.id,
                key="recover",
            )
        host.recover = sections["recover"]
    if "bootloader" in sections:
        from ..bootloader import BootloaderConfig

        host.bootloader_config = BootloaderConfig.from_table(sections["bootloader"])  # type: ignore[attr-defined]


_local_via: dict[str, Host] = {}


def _via_host(lab: Lab, name: str) -> Host:
    """The host that runs power commands: one of the lab, or (for "local") this machine."""
    if name in lab:
        return lab[name]
    host = _local_via.get(name)
    if host is None:
        from .local import LocalHost

        host = _local_via[name] = LocalHost(id="local")
    return host
