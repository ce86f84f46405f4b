"""Where the time of one local ``run("true")`` goes, layer by layer.

``python -m benchmarks.breakdown [--count 2000] [--reps 5]`` peels pytest-otto's
local ``run()`` into the layers it is built from and times each on its own,
medians over repetitions (microseconds per command):

1. ``bash pipe loop``: ``true; echo MARK $?`` on a bash over pipes (the baseline);
2. ``bash pipe loop, otto framing``: the exact framed line pytest-otto sends, on the
   local host's default bash over pipes, read with a bare ``add_reader``;
3. ``ShellSession.run_command``: the session's framing code, called on the otto loop;
4. ``Session._run``: plus timeout resolution, transcript and logging;
5. ``await host.run`` / ``host.run_sync``: plus the hop to the otto loop and back;
6. ``loop.call(noop)``: the hop alone.

The difference between neighbouring layers is what that layer costs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

from pytest_otto import LocalHost, loop
from pytest_otto.framing import _SETUP_COMMON, _SETUP_PIPES, frame_command, framing_setup
from pytest_otto.transports.local import DEFAULT_SHELL

from .otto import noop
from .raw import BashLoop


class _FramedLoop:
    """pytest-otto's framed line on a bash over pipes (the local default), least code possible."""

    async def open(self) -> _FramedLoop:
        self.proc = subprocess.Popen(
            list(DEFAULT_SHELL),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.wfd, self.fd = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.buf = bytearray()
        self.event = asyncio.Event()
        asyncio.get_running_loop().add_reader(self.fd, self._readable)
        self.prefix = secrets.token_hex(8)
        setup = _SETUP_PIPES + _SETUP_COMMON + "\n" + framing_setup(self.prefix)
        os.write(self.wfd, (setup + "echo READY_$((6*7))\n").encode())
        await self._until(b"READY_42")
        return self

    def _readable(self) -> None:
        try:
            self.buf += os.read(self.fd, 1 << 16)
        except OSError:
            return
        self.event.set()

    async def _until(self, marker: bytes) -> None:
        while True:
            idx = self.buf.find(marker)
            if idx >= 0 and (nl := self.buf.find(b"\n", idx)) >= 0:
                del self.buf[: nl + 1]
                return
            self.event.clear()
            await self.event.wait()

    async def loop(self, count: int) -> float:
        t0 = time.perf_counter()
        for serial in range(count):
            line = frame_command(str(serial), "'true'", start_marker=False, aliases=True)
            os.write(self.wfd, line.encode())
            await self._until(f"OTTO_{self.prefix}_{serial}_E_".encode())
        return (time.perf_counter() - t0) / count

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.fd)
        self.proc.kill()
        self.proc.wait()
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.stdout.close()


async def breakdown(count: int, reps: int) -> list[tuple[str, list[float]]]:
    """Time every layer ``reps`` times (interleaved); return microseconds per command."""
    bash = await BashLoop().open()
    framed = await _FramedLoop().open()
    host = LocalHost()
    await host.connect()
    session = host.default_session
    shell = session._shell

    async def on_otto(make: Callable[[], Awaitable[object]]) -> float:
        async def body() -> float:
            t0 = time.perf_counter()
            for _ in range(count):
                await make()
            return (time.perf_counter() - t0) / count

        return await loop.call(body())

    async def hop() -> float:
        t0 = time.perf_counter()
        for _ in range(count):
            await loop.call(noop())
        return (time.perf_counter() - t0) / count

    async def host_run() -> float:
        t0 = time.perf_counter()
        for _ in range(count):
            await host.run("true")
        return (time.perf_counter() - t0) / count

    def host_run_sync() -> float:
        t0 = time.perf_counter()
        for _ in range(count):
            host.run_sync("true")
        return (time.perf_counter() - t0) / count

    layers: list[tuple[str, Callable[[], Awaitable[float]]]] = [
        ("bash pipe loop (baseline)", lambda: bash.loop(count)),
        ("bash pipe loop, otto framing", lambda: framed.loop(count)),
        (
            "ShellSession.run_command (otto loop)",
            lambda: on_otto(lambda: shell.run_command("true", time.monotonic() + 60, 60)),
        ),
        ("Session._run (otto loop)", lambda: on_otto(lambda: session._run("true", 60))),
        ("await host.run (from caller loop)", host_run),
        ("host.run_sync (blocking twin)", lambda: asyncio.to_thread(host_run_sync)),
        ("loop.call(noop): the hop alone", hop),
    ]
    results: dict[str, list[float]] = {name: [] for name, _ in layers}
    try:
        for _ in range(reps + 1):  # first round warms up and is dropped
            for name, fn in layers:
                results[name].append(await fn() * 1e6)
    finally:
        await host.close()
        framed.close()
        await bash.close()
    return [(name, values[1:]) for name, values in results.items()]


def main(argv: list[str] | None = None) -> int:
    """Print the layer table."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.breakdown", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--count", type=int, default=2000, help="commands per repetition")
    parser.add_argument("--reps", type=int, default=5, help="repetitions (median reported)")
    args = parser.parse_args(argv)
    rows = asyncio.run(breakdown(args.count, args.reps))
    print(f"{'layer':<40} {'median us':>10} {'min':>8} {'max':>8}")
    for name, values in rows:
        print(f"{name:<40} {statistics.median(values):>10.1f} {min(values):>8.1f} {max(values):>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
