"""Bytes on the wire per ``run("true")`` on a serial console (issue 22.4).

``python -m benchmarks.console_bytes``: starts testlab's serial relay (a pty pair with a
root bash behind it), runs 200 commands on a `SerialHost` and counts what the transport
wrote and what reached the session. The relay ignores the baud rate, so the time at
115200 baud is given as the floor of those bytes (10 bits a byte), not measured.
"""

from __future__ import annotations

from typing import Any

from pytest_otto import loop
from pytest_otto.hosts.console import SerialHost
from testlab.serial import SerialConsole

COMMANDS = 200
BAUD = 115200


class _CountingSink:
    """Stands in for the transport's sink, counting the bytes it passes on."""

    def __init__(self, inner: Any, counts: dict[str, int]) -> None:
        self.inner = inner
        self.counts = counts

    def feed(self, data: bytes) -> None:
        self.counts["received"] += len(data)
        self.inner.feed(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def count_bytes(device: str, commands: int = COMMANDS) -> dict[str, float]:
    """Sent and received bytes per ``run("true")`` on a warm serial shell."""
    host = SerialHost("serial1", device)
    await host.run("true")
    transport = host.default_session._shell._transport
    counts = {"sent": 0, "received": 0}
    write, write_nowait = transport.write, transport.write_nowait

    async def counted_write(data: bytes) -> None:
        counts["sent"] += len(data)
        await write(data)

    def counted_write_nowait(data: bytes) -> int:
        written: int = write_nowait(data)
        counts["sent"] += written
        return written

    transport.write, transport.write_nowait = counted_write, counted_write_nowait
    transport.sink = _CountingSink(transport.sink, counts)
    for _ in range(commands):
        await host.run("true")
    await host.close()
    return {k: v / commands for k, v in counts.items()}


def main() -> None:
    """Print the bytes per run() and their floor at 115200 baud."""
    console = SerialConsole(login=False).start()
    try:
        per_run = loop.wait(count_bytes(str(console.device)))
    finally:
        console.remove()
    floor_ms = max(per_run.values()) * 10 / BAUD * 1e3  # a UART sends and receives at once
    print(
        f"serial run('true'): {per_run['sent']:.1f} bytes sent, {per_run['received']:.1f} received;"
        f" floor at {BAUD} baud: {floor_ms:.2f} ms (the larger direction, 10 bits a byte)"
    )


if __name__ == "__main__":
    main()
