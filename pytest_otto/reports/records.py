"""What a run leaves for its reports, as plain values.

A test report travels from a pytest-xdist worker to the controller as JSON, so
everything here converts to and from plain dicts (`to_dict`/`from_dict`). The
renderers (`matrix`, `logs`, `html`) take these values and know nothing of pytest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, TypeVar

from ..transcript import TranscriptEntry
from .events import HostEvent

__all__ = [
    "OUTCOMES",
    "CommandRecord",
    "HostInfo",
    "RunRecord",
    "TestRecord",
    "clip",
    "row_name",
    "trim",
]

#: Outcomes of one test on one host, worst first (a test with several phases takes the worst).
OUTCOMES = ("interrupted", "error", "failed", "xpassed", "xfailed", "skipped", "passed")

#: Characters of one command's output a report keeps: the head and the tail of longer ones.
MAX_OUTPUT = 16 * 1024
#: Characters of each command's output the HTML page keeps for a test that did not fail.
PASSED_OUTPUT = 2048
#: Console lines the HTML page keeps of a failed test (a tenth of it for the others).
PAGE_CONSOLE_LINES = 2000
#: Event kinds drawn on the timeline (``console`` lines and first connects are log material).
TIMELINE_KINDS = ("reconnect", "connect-failed", "reboot", "power", "lease-wait")
#: Events a run keeps to its end: the timeline's, and ``info`` for the host table.
KEPT_KINDS = frozenset((*TIMELINE_KINDS, "info"))

_T = TypeVar("_T")


def clip(text: str, limit: int = MAX_OUTPUT) -> str:
    """``text``, or its head and tail with a note of what was left out in between."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters left out ...]\n{text[-half:]}"


def _from_dict(cls: type[_T], data: Mapping[str, Any]) -> _T:
    """Build a record from its dict, ignoring keys a newer worker may have added."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class CommandRecord:
    """One command a host ran (or was still running when its test was killed)."""

    host: str
    session: str
    kind: str
    command: str
    output: str
    status: str  # a Status name
    retcode: int
    started: float
    duration: float
    finished: bool = True

    @classmethod
    def from_entry(cls, entry: TranscriptEntry) -> CommandRecord:
        """The report's copy of a transcript entry (already masked by its host), output clipped."""
        return cls(
            host=entry.host_id,
            session=entry.session,
            kind=entry.kind,
            command=entry.command,
            output=clip(entry.output),
            status=entry.status.name,
            retcode=entry.retcode,
            started=entry.started,
            duration=entry.duration,
            finished=getattr(entry, "finished", True),
        )

    @property
    def verdict(self) -> str:
        """``Success``, ``Failed``, ... or ``UNFINISHED``."""
        return self.status if self.finished else "UNFINISHED"

    def headline(self) -> str:
        """One line: session, kind, command and how it ended."""
        if self.finished:
            end = f"{self.status} (exit {self.retcode}, {self.duration:.3f}s)"
        else:
            end = f"UNFINISHED (still running after {self.duration:.3f}s when the test was stopped)"
        return f"[{self.session}] {self.kind} {self.command} -> {end}"

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))  # flat fields: no need for asdict's deep copy (one per command)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CommandRecord:
        return _from_dict(cls, data)


@dataclass
class TestRecord:
    """One test node: where it ran, how it ended, when, and what its hosts did meanwhile."""

    nodeid: str
    hosts: tuple[str, ...]
    outcome: str = "passed"
    start: float = 0.0
    stop: float = 0.0
    #: the failure as pytest prints it (masked)
    longrepr: str = ""
    commands: list[CommandRecord] = field(default_factory=list)
    events: list[HostEvent] = field(default_factory=list)
    #: where the test function is (file, line): the matrix lists rows in file order
    file: str = ""
    line: int = -1

    __test__ = False  # not a pytest test class, whatever its name

    @property
    def row(self) -> str:
        """The matrix row: the node id without its host parameter."""
        return row_name(self.nodeid, self.hosts)

    @property
    def failed(self) -> bool:
        return self.outcome in ("failed", "error", "interrupted", "xpassed")

    def commands_on(self, host: str) -> list[CommandRecord]:
        return [c for c in self.commands if c.host == host]

    def add_phase(self, outcome: str, start: float, stop: float, longrepr: str) -> None:
        """Fold one phase (setup, call, teardown) into the node's outcome and span."""
        if OUTCOMES.index(outcome) < OUTCOMES.index(self.outcome):
            self.outcome = outcome
        if start and (not self.start or start < self.start):
            self.start = start
        self.stop = max(self.stop, stop)
        if longrepr:
            self.longrepr = f"{self.longrepr}\n\n{longrepr}" if self.longrepr else longrepr

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["hosts"] = list(self.hosts)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TestRecord:
        record = _from_dict(cls, data)
        record.hosts = tuple(record.hosts)
        record.commands = [CommandRecord.from_dict(c) for c in data.get("commands", ())]
        record.events = [HostEvent.from_dict(e) for e in data.get("events", ())]
        return record


@dataclass(frozen=True)
class HostInfo:
    """A lab host as the report's host table shows it."""

    id: str
    transport: str
    endpoint: str = ""
    tags: tuple[str, ...] = ()
    #: more columns other features fill in (``lease holder``, ``uname``)
    extra: tuple[tuple[str, str], ...] = ()


@dataclass
class RunRecord:
    """A whole run: the lab, its hosts, every test node, and events outside any test."""

    lab: str = ""
    lab_path: str = ""
    hosts: list[HostInfo] = field(default_factory=list)
    tests: list[TestRecord] = field(default_factory=list)
    events: list[HostEvent] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0

    def host_ids(self) -> list[str]:
        """Hosts of the lab that ran something, in lab order, then any others the tests name."""
        used = {h for t in self.tests for h in t.hosts}
        ordered = [h.id for h in self.hosts if h.id in used]
        return ordered + sorted(used - set(ordered))

    def all_events(self) -> Iterable[HostEvent]:
        yield from self.events
        for test in self.tests:
            yield from test.events


_PARAMS = re.compile(r"\[(.*)\]$")


def row_name(nodeid: str, hosts: Iterable[str]) -> str:
    """``test_x.py::test_a[router1-fast]`` on host ``router1`` is row ``test_x.py::test_a[fast]``."""
    match = _PARAMS.search(nodeid)
    if not match:
        return nodeid
    inner = match.group(1)
    for host in hosts:  # a host id may hold '-' itself: remove it as a whole
        if inner == host:
            inner = ""
        elif inner.startswith(f"{host}-"):
            inner = inner[len(host) + 1 :]
        elif inner.endswith(f"-{host}"):
            inner = inner[: -len(host) - 1]
        else:
            inner = inner.replace(f"-{host}-", "-", 1)
    base = nodeid[: match.start()]
    return f"{base}[{inner}]" if inner else base


def trim(test: TestRecord, page: bool) -> None:
    """Keep of a finished test only what the run's end still needs, so memory stays small.

    Without a page (``page=False``) the matrix needs outcomes and the timeline's events
    only. For the page, a passing test's outputs are cut to their head and tail
    (`PASSED_OUTPUT`), a failure's kept, and a console's lines to the last
    `PAGE_CONSOLE_LINES` (a tenth when it passed). The host logs were written before.
    """
    if not page:
        test.commands, test.events = [], [e for e in test.events if e.kind in KEPT_KINDS]
        return
    if not test.failed:
        test.commands = [replace(c, output=clip(c.output, PASSED_OUTPUT)) for c in test.commands]
    console = [e for e in test.events if e.kind == "console"]
    keep = PAGE_CONSOLE_LINES if test.failed else PAGE_CONSOLE_LINES // 10
    if len(console) > keep:
        dropped = {id(e) for e in console[:-keep]}
        test.events = [e for e in test.events if id(e) not in dropped]
