"""What every power switch offers a host: on, off, cycle, status."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod

from ..errors import OttoError

__all__ = ["ACTIONS", "PowerControl", "PowerError"]

#: What `Host.power` accepts.
ACTIONS = ("on", "off", "cycle")


class PowerError(OttoError):
    """Switching a host's power failed; the message names the host, the command and its output."""

    def __init__(self, host_id: str, cause: str) -> None:
        super().__init__(f"{host_id}: {cause}")
        self.host_id = host_id
        self.cause = cause


class PowerControl(ABC):
    """A host's power switch (a PDU's command line, QEMU's monitor, ...).

    ``cycle`` defaults to off, ``off_delay`` seconds, on; `status` to unknown (None).
    Methods run on the otto loop and raise `PowerError` naming ``host_id``.
    """

    #: Seconds between off and on in the default `cycle`.
    off_delay: float = 1.0

    @abstractmethod
    async def on(self, host_id: str) -> None:
        """Switch the host on."""

    @abstractmethod
    async def off(self, host_id: str) -> None:
        """Switch the host off."""

    async def cycle(self, host_id: str) -> None:
        """Off, wait `off_delay`, on."""
        await self.off(host_id)
        await asyncio.sleep(self.off_delay)
        await self.on(host_id)

    async def status(self, host_id: str) -> bool | None:
        """True (powered), False (off) or None (this switch cannot tell)."""
        return None

    def describe(self) -> str:
        """What switches the power, for messages."""
        return type(self).__name__
