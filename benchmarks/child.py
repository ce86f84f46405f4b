"""Measurements that need a process of their own, run as ``python -m benchmarks.child MODE ...``.

- ``raw-memory ENDPOINTS_JSON KEY``: RSS growth per asyncssh connection with one
  shell channel open (the baseline of figure 5).
- ``otto-memory LAB_TOML``: RSS growth per pytest-otto SSH host with its shell open.
- ``plain-loop LAB_TOML TESTS``: the baseline of figure 4: connect every host,
  then ``TESTS`` x hosts sequential ``await host.run("true")`` in a plain asyncio
  loop, like the pytest run does per node: on the otto loop, as the plugin runs
  an async host test.

Each prints one JSON line as its last line of output.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from pathlib import Path


def vm_rss_kib() -> int:
    """Current resident set size of this process in KiB (``/proc/self/status`` VmRSS)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def settled_rss() -> int:
    """RSS after a garbage collection and a short pause (buffers from the last step released)."""
    gc.collect()
    time.sleep(0.2)
    return vm_rss_kib()


async def raw_memory(endpoints_json: str, key: str) -> dict:
    """Open one asyncssh connection with one shell channel per endpoint; RSS growth per connection."""
    from .raw import ShellLoop, connect
    from .servers import Endpoint

    endpoints = [Endpoint(**item) for item in json.loads(Path(endpoints_json).read_text())]
    keypath = Path(key)

    async def open_one(ep: Endpoint) -> ShellLoop:
        conn = await connect(ep, keypath)
        return await ShellLoop(conn).open()

    warm = await open_one(endpoints[0])  # imports, lazy tables, first-use allocations
    warm.close()
    warm.conn.close()
    await warm.conn.wait_closed()
    before = settled_rss()
    shells = await asyncio.gather(*(open_one(ep) for ep in endpoints))
    after = settled_rss()
    for shell in shells:
        shell.close()
        shell.conn.close()
    return {
        "hosts": len(shells),
        "before_kib": before,
        "after_kib": after,
        "per_host_kib": (after - before) / len(shells),
    }


async def otto_memory(lab_toml: str) -> dict:
    """Connect every pytest-otto host of the lab (shell open); RSS growth per host."""
    from . import otto

    lab = otto.load(Path(lab_toml))
    hosts = otto.hosts(lab)
    await otto.connect_all(hosts[:1])  # imports, first-use allocations
    await otto.close_all(hosts[:1])
    before = settled_rss()
    await otto.connect_all(hosts)
    after = settled_rss()
    await otto.close_all(hosts)
    return {
        "hosts": len(hosts),
        "before_kib": before,
        "after_kib": after,
        "per_host_kib": (after - before) / len(hosts),
    }


async def plain_loop(lab_toml: str, tests: str) -> dict:
    """Connect all hosts, then run ``tests`` rounds of ``run("true")`` on each host in turn."""
    from . import otto

    t_start = time.perf_counter()
    lab = otto.load(Path(lab_toml))
    hosts = otto.hosts(lab)
    await otto.connect_all(hosts)
    t_connected = time.perf_counter()
    for _ in range(int(tests)):
        for host in hosts:
            result = await host.run("true")
            assert result.status.is_ok, result
    t_done = time.perf_counter()
    await otto.close_all(hosts)
    return {
        "hosts": len(hosts),
        "commands": int(tests) * len(hosts),
        "connect_s": t_connected - t_start,
        "commands_s": t_done - t_connected,
        "per_command_s": (t_done - t_connected) / (int(tests) * len(hosts)),
    }


MODES = {"raw-memory": raw_memory, "otto-memory": otto_memory, "plain-loop": plain_loop}


def main(argv: list[str]) -> int:
    """Run one mode and print its JSON result."""
    if not argv or argv[0] not in MODES:
        print(f"usage: python -m benchmarks.child {{{','.join(MODES)}}} ARGS...", file=sys.stderr)
        return 2
    coro = MODES[argv[0]](*argv[1:])
    if argv[0] == "plain-loop":
        # As the plugin runs an async host test: on the otto loop, no hop per call.
        from pytest_otto import loop

        result = loop.wait(coro)
    else:
        result = asyncio.run(coro)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
