"""Cost of leasing: 100 device leases taken and released, against redis-py doing the same keys.

``python -m benchmarks.leases [--quick]`` from the repository root. Starts a real
``redis-server`` on loopback (testlab). Each repetition interleaves the two sides so
a busy machine slows both alike:

- **otto**: ``LeaseSet`` over 100 devices: open the store, take every lease (``SET NX
  PX`` each, one pipeline, keeping the sorted order), start renewal, release them all
  (a compare-and-delete script each, one pipeline), close. This is what a run pays at
  its start and end (its per-run overhead): the pytest plugin does exactly this.
- **redis-py**: a new asyncio client, ``SET key value NX PX`` for the same 100 keys in
  one pipeline, then ``DEL`` them in another, close: the least a client-side lease does.
- **file**: the same ``LeaseSet`` on the default store (``flock`` in a directory).

Targets (issue 17): otto within 1.5x of redis-py, and under 50 ms for 100 devices.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

from pytest_otto.leases import LeaseSet, LeaseSettings, this_holder, thread
from testlab import RedisServer

DEVICES = [f"bench-dev-{i:03d}" for i in range(100)]


def otto_once(store: str) -> float:
    leases = LeaseSet({d: d for d in DEVICES}, LeaseSettings(store=store))
    start = time.perf_counter()
    leases.acquire_sync()
    leases.release_sync()
    took = time.perf_counter() - start
    assert len(leases.devices) == len(DEVICES)
    return took


async def _redis_py(url: str) -> None:
    import redis.asyncio

    client = redis.asyncio.from_url(url)
    value = this_holder().to_json()
    pipe = client.pipeline(transaction=False)
    for device in DEVICES:
        pipe.set("otto:lease:" + device, value, nx=True, px=60000)
    assert all(await pipe.execute())
    pipe = client.pipeline(transaction=False)
    for device in DEVICES:
        pipe.delete("otto:lease:" + device)
    await pipe.execute()
    await client.aclose()


def redis_py_once(url: str) -> float:
    start = time.perf_counter()
    thread.run(_redis_py(url))  # on the same kind of loop thread as otto's, hop included
    return time.perf_counter() - start


def measure(reps: int, sides: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    for side in sides.values():  # warm-up: imports, script loading, first connection
        side()
    found: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(reps):
        for name, side in sides.items():
            found[name].append(side())
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 repetitions instead of 31")
    reps = 5 if parser.parse_args().quick else 31
    with RedisServer() as server, tempfile.TemporaryDirectory() as locks:
        found = measure(
            reps,
            {
                "otto (redis)": lambda: otto_once(server.url),
                "redis-py": lambda: redis_py_once(server.url),
                "otto (file)": lambda: otto_once(f"file://{locks}"),
            },
        )
    medians = {name: statistics.median(values) * 1000 for name, values in found.items()}
    print(f"take and release {len(DEVICES)} leases, median of {reps} (ms; min-max)")
    for name, values in found.items():
        print(f"  {name:14} {medians[name]:7.1f}   ({min(values) * 1000:.1f}-{max(values) * 1000:.1f})")
    ratio = medians["otto (redis)"] / medians["redis-py"]
    ok_ratio, ok_abs = ratio <= 1.5, medians["otto (redis)"] < 50
    print(f"  otto / redis-py: {ratio:.2f}x (target <= 1.5x: {'met' if ok_ratio else 'MISSED'})")
    verdict = "met" if ok_abs else "MISSED"
    print(f"  otto, 100 devices: {medians['otto (redis)']:.1f} ms (target < 50 ms: {verdict})")
    return 0 if ok_ratio and ok_abs else 1


if __name__ == "__main__":
    sys.exit(main())
