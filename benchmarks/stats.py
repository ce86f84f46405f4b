"""Numbers in, comparisons out: repetition statistics, targets, the table and the JSON.

Every figure is a `Comparison`: one pytest-otto measurement against one baseline
measured in the same run (repetitions interleaved, so drift on a busy 2-core
machine hits both sides alike), with the target from issue 7 it must meet.
"""

from __future__ import annotations

import json
import math
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Comparison", "Stats", "Target", "environment", "format_table", "write_json"]


@dataclass
class Stats:
    """Repetitions of one measurement: the raw values and their median, min and max."""

    values: list[float]

    @property
    def median(self) -> float:
        """Median of the repetitions (the figure the table reports)."""
        return statistics.median(self.values) if self.values else math.nan

    @property
    def min(self) -> float:
        """Best repetition."""
        return min(self.values) if self.values else math.nan

    @property
    def max(self) -> float:
        """Worst repetition."""
        return max(self.values) if self.values else math.nan

    def as_dict(self) -> dict[str, Any]:
        """JSON shape: median, min, max, n and the raw values."""
        return {
            "median": self.median,
            "min": self.min,
            "max": self.max,
            "n": len(self.values),
            "values": self.values,
        }


@dataclass
class Target:
    """What issue 7 asks of one figure.

    ``kind``: ``"max_ratio"`` (otto / baseline must be <= value), ``"min_ratio"``
    (>= value, for throughput) or ``"max_value"`` (the otto figure itself, e.g.
    overhead per pytest node, must be <= value).
    """

    kind: str
    value: float
    text: str

    def met(self, subject: float, ratio: float | None) -> bool | None:
        """True/False when the target can be judged; None when a side is missing."""
        if self.kind == "max_value":
            return None if math.isnan(subject) else subject <= self.value
        if ratio is None or math.isnan(ratio):
            return None
        return ratio <= self.value if self.kind == "max_ratio" else ratio >= self.value


@dataclass
class Comparison:
    """One row of the report: pytest-otto (``subject``) against a ``baseline``."""

    section: str
    name: str
    unit: str
    subject_label: str
    baseline_label: str
    subject: Stats | None = None
    baseline: Stats | None = None
    target: Target | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        """Median of pytest-otto divided by median of the baseline."""
        if not self.subject or not self.baseline or not self.subject.values or not self.baseline.values:
            return None
        if self.baseline.median == 0:
            return None
        return self.subject.median / self.baseline.median

    @property
    def met(self) -> bool | None:
        """Whether the target is met (None: no target, or a side was not measured)."""
        if self.target is None or self.subject is None or not self.subject.values:
            return None
        return self.target.met(self.subject.median, self.ratio)

    def as_dict(self) -> dict[str, Any]:
        """JSON shape of the row, raw values included."""
        data = {
            "section": self.section,
            "name": self.name,
            "unit": self.unit,
            "subject_label": self.subject_label,
            "baseline_label": self.baseline_label,
            "subject": self.subject.as_dict() if self.subject else None,
            "baseline": self.baseline.as_dict() if self.baseline else None,
            "ratio": self.ratio,
            "target": asdict(self.target) if self.target else None,
            "met": self.met,
            "note": self.note,
        }
        if self.extra:
            data["extra"] = self.extra
        return data


def _num(value: float) -> str:
    if math.isnan(value):
        return "-"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _cell(stats: Stats | None) -> str:
    if stats is None or not stats.values:
        return "n/a"
    return f"{_num(stats.median)} [{_num(stats.min)}-{_num(stats.max)}]"


def format_table(rows: list[Comparison], markdown: bool = False) -> str:
    """The report table: medians with [min-max], ratio, target, met."""
    header = ["measurement", "unit", "pytest-otto", "baseline", "ratio", "target", "met"]
    lines: list[list[str]] = []
    for row in rows:
        ratio = row.ratio
        met = row.met
        lines.append(
            [
                f"{row.section} {row.name}",
                row.unit,
                _cell(row.subject),
                f"{_cell(row.baseline)} {row.baseline_label}" if row.baseline_label else _cell(row.baseline),
                "-" if ratio is None else f"{ratio:.2f}x",
                row.target.text if row.target else "",
                {True: "yes", False: "NO", None: "-"}[met],
            ]
        )
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(cells) + " |" for cells in lines]
        return "\n".join(out)
    widths = [
        max(len(h), *(len(cells[i]) for cells in lines)) if lines else len(h) for i, h in enumerate(header)
    ]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*cells) for cells in lines]
    return "\n".join(out)


def _command_output(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def environment() -> dict[str, Any]:
    """Machine and versions, so a results file says what it was measured on."""
    import os

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "ssh": _command_output(["ssh", "-V"]) or _command_output(["sh", "-c", "ssh -V 2>&1"]),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    for name in ("asyncssh", "pytest", "pytest-testinfra", "paramiko", "pytest-otto"):
        try:
            from importlib.metadata import version

            info[name] = version(name)
        except Exception:
            info[name] = None
    return info


def write_json(path: Path, rows: list[Comparison], meta: dict[str, Any]) -> Path:
    """Write the raw results (every repetition of every figure) as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"meta": meta, "results": [row.as_dict() for row in rows]}
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def interleave(
    reps: int, subject: Callable[[], float] | None, baseline: Callable[[], float] | None
) -> tuple[Stats | None, Stats | None]:
    """Run ``reps`` repetitions alternating baseline and subject (sync callables)."""
    s_vals: list[float] = []
    b_vals: list[float] = []
    for _ in range(reps):
        if baseline is not None:
            b_vals.append(baseline())
        if subject is not None:
            s_vals.append(subject())
    return (Stats(s_vals) if subject else None), (Stats(b_vals) if baseline else None)
