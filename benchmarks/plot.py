"""``python -m benchmarks.plot RESULTS.json OUT.png``: time and memory against N (issue 22.3).

Reads a results file of ``python -m benchmarks`` (``{"results": [...]}``, or a bare
list of rows) and draws the cold fan-out's time and the memory per host against the
number of hosts, pytest-otto beside raw asyncssh, medians with min-max bars.
Needs matplotlib, which pytest-otto does not depend on: install it only to draw.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path
from typing import Any

_FANOUT = re.compile(r"cold fan-out N=(\d+)$")
_MEMORY = re.compile(r"RSS per connected host \(N=(\d+)")


Point = tuple[int, float, float, float]


def _series(rows: list[dict[str, Any]], pattern: re.Pattern[str], side: str) -> list[Point]:
    points = []
    for row in rows:
        match = pattern.search(row["name"])
        if match and row.get(side) and row[side]["values"]:
            values = row[side]["values"]
            points.append((int(match.group(1)), statistics.median(values), min(values), max(values)))
    return sorted(points)


def plot(results: Path, out: Path) -> None:
    """Draw the two panels into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = json.loads(results.read_text())
    rows = data["results"] if isinstance(data, dict) else data
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    panels = ((left, _FANOUT, "cold fan-out (s)"), (right, _MEMORY, "RSS per connected host (KiB)"))
    for axis, pattern, label in panels:
        for side, name, style in (("subject", "pytest-otto", "o-"), ("baseline", "raw asyncssh", "s--")):
            points = _series(rows, pattern, side)
            if not points:
                continue
            ns, med, lo, hi = zip(*points, strict=True)
            errors = [
                [m - low for m, low in zip(med, lo, strict=True)],
                [high - m for m, high in zip(med, hi, strict=True)],
            ]
            axis.errorbar(ns, med, yerr=errors, fmt=style, capsize=3, label=name)
        axis.set_xlabel("hosts (N)")
        axis.set_ylabel(label)
        axis.grid(True, alpha=0.3)
        axis.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)


if __name__ == "__main__":
    plot(Path(sys.argv[1]), Path(sys.argv[2]))
