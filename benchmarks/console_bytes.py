"""Bytes on the wire per ``run("true")`` on a console, and its time on a 115200-baud line (issue 22.4).

``python -m benchmarks.console_bytes``: starts testlab's serial relay (a pty pair with a
root bash behind it) and a BusyBox telnetd, runs warm commands on a `SerialHost` and a
`TelnetHost` and counts what the transport wrote and what reached the session. Then it
times ``run("true")`` on a serial line the relay paces at 115200 baud (10 bits a byte)
against the floor of the bytes those commands moved at that rate. ``python -m
benchmarks --only 6`` measures the same with its repetitions interleaved.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pytest_otto import loop
from pytest_otto.hosts.console import ConsoleHost, SerialHost, TelnetHost
from testlab.serial import SerialConsole
from testlab.telnetd import TelnetServer

COMMANDS = 200
BAUD = 115200
#: Bit times per byte on an 8N1 line: start bit, 8 data bits, stop bit.
BITS_PER_BYTE = 10


@dataclass
class ConsoleRuns:
    """Warm ``run("true")`` on one console: time and bytes per command."""

    seconds: float
    sent: float
    received: float

    def floor(self, baud: int = BAUD) -> float:
        """Seconds per command if the line carried nothing but these bytes at ``baud``.

        The shell starts the command only once the whole line has arrived, and the
        answer follows it, so the two directions add up rather than overlap.
        """
        return (self.sent + self.received) * BITS_PER_BYTE / baud


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


class ByteCounter:
    """Counts what a warm host's shell transport writes and hands to its session."""

    def __init__(self, host: ConsoleHost) -> None:
        transport = host.default_session._shell._transport
        self.counts = {"sent": 0, "received": 0}
        write, write_nowait = transport.write, transport.write_nowait

        async def counted_write(data: bytes) -> None:
            self.counts["sent"] += len(data)
            await write(data)

        def counted_write_nowait(data: bytes) -> int:
            written: int = write_nowait(data)
            self.counts["sent"] += written
            return written

        transport.write, transport.write_nowait = counted_write, counted_write_nowait
        transport.sink = _CountingSink(transport.sink, self.counts)

    def take(self) -> dict[str, int]:
        """The counts since the last take, which start again from zero."""
        counts = dict(self.counts)
        self.counts.update(sent=0, received=0)
        return counts


async def warm(host: ConsoleHost) -> ByteCounter:
    """Log the host in, run one command, and start counting its bytes."""
    await host.run("true")
    return ByteCounter(host)


async def run_loop(host: ConsoleHost, counter: ByteCounter, commands: int) -> ConsoleRuns:
    """``commands`` warm ``run("true")``: seconds and bytes per command."""
    counter.take()
    start = time.perf_counter()
    for _ in range(commands):
        await host.run("true")
    seconds = time.perf_counter() - start
    counts = counter.take()
    return ConsoleRuns(seconds / commands, counts["sent"] / commands, counts["received"] / commands)


class ConsoleBench:
    """A telnetd, an unpaced serial line and one paced at `BAUD`, with a warm host on each."""

    def __init__(self) -> None:
        self.servers: list[Any] = []
        self.hosts: dict[str, tuple[ConsoleHost, ByteCounter]] = {}

    async def start(self) -> ConsoleBench:
        """Start the servers and warm a host on each (``telnet``, ``serial``, ``serial-paced``)."""
        telnetd = TelnetServer(login=False).start()
        serial = SerialConsole(login=False, name="ttyBENCH0").start()
        paced = SerialConsole(login=False, name="ttyBENCH1", baud=BAUD).start()
        self.servers = [telnetd, serial, paced]
        hosts: dict[str, ConsoleHost] = {
            "telnet": TelnetHost("telnet1", telnetd.address, port=telnetd.port),
            "serial": SerialHost("serial1", str(serial.device)),
            "serial-paced": SerialHost("serial2", str(paced.device), baud=BAUD),
        }
        for name, host in hosts.items():
            self.hosts[name] = (host, await warm(host))
        return self

    async def runs(self, name: str, commands: int) -> ConsoleRuns:
        """Time and count ``commands`` runs on the host ``name``."""
        host, counter = self.hosts[name]
        return await run_loop(host, counter, commands)

    async def close(self) -> None:
        """Close the hosts and stop the servers."""
        for host, _counter in self.hosts.values():
            await host.close()
        for server in self.servers:
            server.remove()


async def _main(commands: int) -> None:
    bench = await ConsoleBench().start()
    try:
        for name in ("telnet", "serial", "serial-paced"):
            per_run = await bench.runs(name, commands if name != "serial-paced" else commands // 4)
            line = f"{name} run('true'): {per_run.sent:.1f} bytes sent, {per_run.received:.1f} received"
            if name == "serial-paced":
                floor = per_run.floor()
                line += (
                    f"; {per_run.seconds * 1e3:.2f} ms per run at {BAUD} baud, floor {floor * 1e3:.2f} ms"
                    f" ({per_run.seconds / floor:.2f}x)"
                )
            print(line)
    finally:
        await bench.close()


def main() -> None:
    """Print the bytes per run() on telnet and serial, and the paced serial line's time."""
    loop.wait(_main(COMMANDS))


if __name__ == "__main__":
    main()
