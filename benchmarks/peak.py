"""Run a Python module and report its own peak RSS: ``python -m benchmarks.peak FILE MODULE ARGS...``.

Why not the parent's ``wait4`` rusage: Linux keeps a process's ``maxrss`` across
``fork``/``exec``, so a child of a big benchmark process inherits the parent's
peak. ``VmHWM`` belongs to the new program's memory map only. Written (KiB) to
FILE at exit.
"""

from __future__ import annotations

import atexit
import runpy
import sys


def vm_hwm_kib() -> int:
    """Peak resident set size of this process so far (``VmHWM``, KiB)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    """Run the module as ``__main__`` with the remaining arguments; record VmHWM at exit."""
    path, module, *args = sys.argv[1:]

    def record() -> None:
        with open(path, "w") as handle:
            handle.write(str(vm_hwm_kib()))

    atexit.register(record)
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
