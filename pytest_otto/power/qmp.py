"""QEMU's QMP monitor as a power switch (virtual boards), with a small asyncio client.

QMP is a line of JSON per message: a greeting, ``qmp_capabilities``, then one
``{"execute": ...}`` per command, answered by ``{"return": ...}`` or
``{"error": ...}`` with ``{"event": ...}`` lines in between. That is little enough
that a client of our own (connect, one command, disconnect) is clearer than a
dependency (``qemu.qmp``), and a connection per command never keeps the monitor
(which serves one client at a time) from another user, such as the lab's own tools.

The switch: ``off`` stops the CPU and holds the machine at reset (``stop``,
``system_reset``: it starts from the beginning when switched on), ``on`` lets it
run (``cont``), ``cycle`` is a reset (and ``cont`` if it was stopped), ``status`` is
``query-status`` (``running`` is on).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from .base import PowerControl, PowerError

__all__ = ["QmpPower", "qmp_execute"]

#: How long one QMP exchange may take.
QMP_TIMEOUT = 10.0


def _endpoint(address: str) -> tuple[str, str | tuple[str, int]]:
    """``unix:PATH`` or ``HOST:PORT`` -> ("unix", path) or ("tcp", (host, port))."""
    if address.startswith("unix:"):
        path = address[5:]
        if not path:
            raise ValueError("qmp: 'unix:' needs a socket path")
        return "unix", path
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f'qmp: {address!r} is neither "unix:PATH" nor "HOST:PORT"')
    return "tcp", (host.strip("[]"), int(port))


async def _reply(reader: asyncio.StreamReader, greeting: bool = False) -> Any:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionResetError("QEMU closed the QMP connection")
        message = json.loads(line)
        if greeting and "QMP" in message:
            return message
        if "return" in message:
            return message["return"]
        if "error" in message:
            error = message["error"]
            raise RuntimeError(f"QMP error {error.get('class', '')}: {error.get('desc', error)}")
        # {"event": ...}: not our answer


async def qmp_execute(address: str, *commands: str, timeout: float = QMP_TIMEOUT) -> list[Any]:
    """Run ``commands`` on the QMP monitor at ``address`` in order; their return values."""
    kind, where = _endpoint(address)

    async def exchange() -> list[Any]:
        if kind == "unix":
            assert isinstance(where, str)
            reader, writer = await asyncio.open_unix_connection(where)
        else:
            assert isinstance(where, tuple)
            reader, writer = await asyncio.open_connection(*where)
        try:
            await _reply(reader, greeting=True)
            results = []
            for command in ("qmp_capabilities", *commands):
                writer.write(json.dumps({"execute": command}).encode() + b"\n")
                await writer.drain()
                results.append(await _reply(reader))
            return results[1:]
        finally:
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), 1.0)
            except (OSError, TimeoutError):
                pass

    return await asyncio.wait_for(exchange(), timeout)


class QmpPower(PowerControl):
    """Power through QEMU's QMP monitor (``qmp = "unix:PATH"`` or ``"HOST:PORT"``)."""

    off_delay = 0.0

    def __init__(self, address: str) -> None:
        _endpoint(address)  # a malformed address is an error now, not at first use
        self.address = address

    def describe(self) -> str:
        """``QMP <address>``."""
        return f"QMP {self.address}"

    async def _execute(self, host_id: str, action: str, *commands: str) -> list[Any]:
        try:
            return await qmp_execute(self.address, *commands)
        except TimeoutError:
            raise PowerError(
                host_id, f"power {action}: QMP {self.address} did not answer within {QMP_TIMEOUT:g}s"
            ) from None
        except (OSError, RuntimeError, ValueError) as exc:
            raise PowerError(
                host_id, f"power {action}: QMP {self.address} ({' + '.join(commands)}) failed: {exc}"
            ) from exc

    async def on(self, host_id: str) -> None:
        """``cont``: the machine runs (from reset after `off`)."""
        await self._execute(host_id, "on", "cont")

    async def off(self, host_id: str) -> None:
        """``stop`` then ``system_reset``: frozen, and it starts from the beginning when on."""
        await self._execute(host_id, "off", "stop", "system_reset")

    async def cycle(self, host_id: str) -> None:
        """``system_reset``, then ``cont`` (a stopped machine runs again)."""
        await self._execute(host_id, "cycle", "stop", "system_reset", "cont")

    async def status(self, host_id: str) -> bool | None:
        """``query-status``: True when ``running``."""
        (result,) = await self._execute(host_id, "status", "query-status")
        return bool(result.get("running"))
