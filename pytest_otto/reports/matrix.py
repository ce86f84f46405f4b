"""The test x host matrix: which test did what on which host.

`build_matrix` folds test records into cells; `render_matrix` lays them out as
text that fits a terminal width, abbreviating host names (or numbering them, with
a legend) and the test names when it must.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .records import OUTCOMES, TestRecord

__all__ = ["SYMBOLS", "Matrix", "build_matrix", "render_matrix"]

#: One character per outcome, as pytest's progress line uses them; "-" is "not run there".
SYMBOLS = {
    "passed": ".",
    "failed": "F",
    "error": "E",
    "skipped": "s",
    "xfailed": "x",
    "xpassed": "X",
    "interrupted": "!",
}
NOT_RUN = "-"
_LEGEND = (
    ". passed",
    "F failed",
    "E error",
    "s skipped",
    "x xfail",
    "X xpass",
    "! unfinished",
    "- not run there",
)

#: The narrowest the test-name column gets before host columns are abbreviated.
MIN_NAME = 24
#: Host labels longer than this are cut (to unique prefixes) so test names keep room.
MAX_LABEL = 12


@dataclass
class Matrix:
    """Rows (tests without their host parameter) x hosts; each cell an outcome and its node."""

    rows: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    cells: dict[tuple[str, str], TestRecord] = field(default_factory=dict)

    def outcome(self, row: str, host: str) -> str | None:
        """The outcome of ``row`` on ``host``, None when it did not run there."""
        test = self.cells.get((row, host))
        return test.outcome if test is not None else None

    def totals(self, host: str) -> Counter[str]:
        """How many tests ended in each outcome on ``host``."""
        return self.totals_by_host().get(host, Counter())

    def totals_by_host(self) -> dict[str, Counter[str]]:
        """`totals` of every host, in one pass over the cells (a lab of hundreds of hosts)."""
        by_host: dict[str, Counter[str]] = {}
        for (_, host), test in self.cells.items():
            by_host.setdefault(host, Counter())[test.outcome] += 1
        return by_host


def build_matrix(tests: Iterable[TestRecord], host_order: Sequence[str] = ()) -> Matrix:
    """One row per test function (and non-host parameters), one column per host.

    Rows come in file order (the tests' ``file`` and ``line``), however the run ordered them.
    Columns follow ``host_order`` (the lab's), then hosts it does not name. A cell
    that two nodes share keeps the worse outcome.
    """
    matrix = Matrix()
    seen_hosts: dict[str, None] = {}
    seen_rows: set[str] = set()
    for test in sorted(tests, key=lambda t: (t.file, t.line)):  # stable: same line keeps run order
        hosts = test.hosts
        if not hosts:
            continue
        row = test.row
        if row not in seen_rows:
            seen_rows.add(row)
            matrix.rows.append(row)
        for host in hosts:
            seen_hosts[host] = None
            old = matrix.cells.get((row, host))
            if old is None or OUTCOMES.index(test.outcome) < OUTCOMES.index(old.outcome):
                matrix.cells[(row, host)] = test
    ordered = [h for h in host_order if h in seen_hosts]
    matrix.hosts = ordered + [h for h in seen_hosts if h not in ordered]
    return matrix


def _fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` from the left: the end of a test name says the most."""
    return text if len(text) <= width else "..." + text[-(width - 3) :]


def _labels(hosts: Sequence[str], room: int, min_width: int) -> tuple[list[str], int] | None:
    """Host labels of one width that fit ``room`` columns: full names, else unique prefixes."""
    longest = min(max(len(h) for h in hosts), MAX_LABEL)
    for width in range(max(longest, min_width), min_width - 1, -1):
        labels = [h[:width] for h in hosts]
        if len(set(labels)) == len(labels) and len(hosts) * (width + 1) <= room:
            return labels, width
        if width <= 3:
            break
    return None


def _block(matrix: Matrix, hosts: Sequence[str], labels: Sequence[str], colw: int, width: int) -> list[str]:
    name_w = width - len(hosts) * (colw + 1)
    lines = [f"{'test':<{name_w}}" + "".join(f" {label:>{colw}}" for label in labels)]
    for row in matrix.rows:
        cells = "".join(f" {SYMBOLS.get(matrix.outcome(row, h) or '', NOT_RUN):>{colw}}" for h in hosts)
        lines.append(f"{_fit(row, name_w):<{name_w}}{cells}")
    every = matrix.totals_by_host()
    totals = {h: every.get(h, Counter()) for h in hosts}
    for outcome in OUTCOMES:
        if any(totals[h][outcome] for h in hosts):
            counts = "".join(f" {totals[h][outcome]:>{colw}}" for h in hosts)
            lines.append(f"{'  ' + outcome:<{name_w}}{counts}")
    return [line.rstrip() for line in lines]


def render_matrix(matrix: Matrix, width: int = 80) -> list[str]:
    """The matrix as lines no longer than ``width`` (at least 40).

    Host names are shown whole when they fit, else cut to unique prefixes, else
    numbered with a legend; hosts that do not fit even numbered go to further blocks.
    """
    width = max(width, 40)
    if not matrix.hosts:
        return []
    counts = max((n for totals in matrix.totals_by_host().values() for n in totals.values()), default=0)
    min_colw = max(1, len(str(counts)))
    n_rows, n_hosts = len(matrix.rows), len(matrix.hosts)
    title = f"{n_rows} test{'s' * (n_rows != 1)} x {n_hosts} host{'s' * (n_hosts != 1)}"
    lines = [title, *_wrap(_LEGEND, width, "")]
    used = {t.outcome for t in matrix.cells.values()}
    labels_w = max(len(f"  {o}") for o in used)  # the totals' row names
    room = width - max(4, labels_w, min(MIN_NAME, max(len(row) for row in matrix.rows)))
    found = _labels(matrix.hosts, room, max(min_colw, 3))
    if found is not None:
        labels, colw = found
        return lines + _block(matrix, matrix.hosts, labels, colw, width)
    colw = max(min_colw, len(str(len(matrix.hosts))))
    per_block = max(1, room // (colw + 1))
    numbers = [str(i + 1) for i in range(len(matrix.hosts))]
    for first in range(0, len(matrix.hosts), per_block):
        block = matrix.hosts[first : first + per_block]
        lines += _block(matrix, block, numbers[first : first + per_block], colw, width)
    legend = [f"{n}={_fit(h, width - 8 - len(n))}" for n, h in zip(numbers, matrix.hosts, strict=True)]
    lines += _wrap(legend, width, "hosts: ")
    return lines


def _wrap(words: Sequence[str], width: int, first: str) -> list[str]:
    lines: list[str] = []
    line = first
    for word in words:
        if len(line) + len(word) > width and line.strip():
            lines.append(line.rstrip())
            line = " " * len(first)
        line += word + " "
    if line.strip():
        lines.append(line.rstrip())
    return lines
