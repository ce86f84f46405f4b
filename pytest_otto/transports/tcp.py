"""A raw TCP console: ser2net in raw mode, QEMU's ``-serial tcp:``, many console servers.

The same bytes as telnet without telnet: no option negotiation, ``0xFF`` and CR
travel as they are, and the server greets nobody (so the login pokes it after a
quiet spell instead of waiting for a greeting). Login, hand-over and shell-end
detection are `ConsoleTransport`'s; the connection handling is `TelnetTransport`'s.
"""

from __future__ import annotations

import asyncio

from .telnet import TelnetTransport, _setup_gate

__all__ = ["TcpTransport"]


class TcpTransport(TelnetTransport):
    """A plain TCP connection to ``address:port`` with the console login on top."""

    greets_on_connect = False

    def describe(self) -> str:
        """``tcp address:port``."""
        return f"tcp {self.address}:{self.port}"

    async def _connect(self) -> None:
        async with _setup_gate(self.address, self.port):
            self._reader, self._writer = await asyncio.open_connection(self.address, self.port)
            self._reached = True
            self._pump = asyncio.get_running_loop().create_task(self._read_loop())

    def _parse(self, chunk: bytes) -> bytes:
        """Every byte is data."""
        return chunk

    @staticmethod
    def _escape(data: bytes) -> bytes:
        """Nothing to escape on a raw connection."""
        return data
