"""The pytest side of reports: ``--otto-matrix``, ``--otto-log-dir``, ``--otto-report``, JUnit.

Two plugin objects, in the style of pytest's own JUnit plugin:

- `Recorder`, in every process that runs tests (each pytest-xdist worker): after each
  test phase it takes what the hosts ran (its own `TranscriptWatch`) and what happened
  to them (`events`), masked, and puts it on the test report as plain data
  (``report.otto``), which pytest-xdist carries to the controller as JSON.
- `Collector`, in the process that reports (never on a worker): folds the reports into
  `TestRecord` values, appends each test to the host logs as soon as it ends, adds the
  transcript to the JUnit test case, and at the end prints the matrix and writes the
  HTML page.

A test stopped by Ctrl-C gets no report: the recorder hands what its hosts did
(the command that hung among it, marked unfinished) to the collector at session end.
"""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Generator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ..hosts.base import Host
from ..lab import Lab, LabError, get_active_lab
from ..transcript import TranscriptWatch
from . import events
from .events import HostEvent
from .html import render_html
from .logs import HostLogs, test_lines
from .matrix import build_matrix, render_matrix
from .records import KEPT_KINDS, CommandRecord, HostInfo, RunRecord, TestRecord, trim

__all__ = ["Collector", "Recorder"]

#: The widest the matrix gets, whatever the terminal: CI logs are read at 80 columns.
MATRIX_WIDTH = 80
#: A console line longer than this is cut into pieces (a line that never ends stays bounded).
MAX_CONSOLE_LINE = 4096


def add_options(parser: pytest.Parser) -> None:
    """The report options, in pytest-otto's option group (pytest-otto's plugin calls this)."""
    group = parser.getgroup("otto", "pytest-otto (hardware-in-the-loop hosts)")
    group.addoption(
        "--otto-matrix",
        dest="otto_matrix",
        choices=("auto", "yes", "no"),
        default="auto",
        help="Test x host matrix at the end of the terminal summary: auto (when the run covers "
        "two or more hosts, the default), yes (also for one host), no.",
    )
    group.addoption(
        "--otto-log-dir",
        dest="otto_log_dir",
        metavar="DIR",
        default=None,
        help="Write one log file per host into DIR: every command with its test, timestamps, "
        "exit code and duration, and the raw console lines (masked).",
    )
    group.addoption(
        "--otto-report",
        dest="otto_report",
        metavar="PATH.html",
        default=None,
        help="Write a self-contained HTML report (hosts, matrix, timeline, failures with transcripts).",
    )


def pytest_configure(config: pytest.Config) -> None:
    """A recorder in every process; a collector where reports are written (not on xdist workers)."""
    recorder = Recorder(config)
    config.pluginmanager.register(recorder, "otto-reports-recorder")
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(Collector(config), "otto-reports-collector")


def pytest_unconfigure(config: pytest.Config) -> None:
    for name in ("otto-reports-recorder", "otto-reports-collector"):
        plugin = config.pluginmanager.get_plugin(name)
        if plugin is not None:
            plugin.close()
            config.pluginmanager.unregister(plugin, name)


def _lab() -> Lab | None:
    try:
        return get_active_lab()
    except (LabError, OSError):
        return None


def _mask(host_id: str, text: str, lab: Lab | None) -> str:
    """``text`` with ``host_id``'s secrets masked (by the host itself, the one place that knows them)."""
    if lab is None or host_id not in lab:
        return text
    return lab[host_id]._mask(text)


def _hosts_of(item_or_report: Any) -> tuple[str, ...]:
    """The hosts pytest-otto bound a test to (its ``otto_host`` properties)."""
    return tuple(v for k, v in getattr(item_or_report, "user_properties", ()) if k == "otto_host")


class Recorder:
    """Takes what the hosts did during each test phase and puts it on the report."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.watch = TranscriptWatch().open()
        self._lock = threading.Lock()
        self._events: list[HostEvent] = []
        self._partial: dict[str, tuple[float, str]] = {}  # console text after its last newline
        self._stop_listening = events.listen(self._on_event)
        self._current: pytest.Item | None = None
        self._done_phases: set[str] = set()
        self._item_commands: list[CommandRecord] = []
        self.lab: Lab | None = None

    @pytest.hookimpl(trylast=True)  # after pytest-otto's plugin loaded the lab
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.lab = _lab()

    def close(self) -> None:
        self._stop_listening()
        self.watch.close()

    def _on_event(self, event: HostEvent) -> None:  # any thread
        with self._lock:
            self._events.append(event)

    def _take_events(self, lab: Lab | None, flush: bool) -> list[HostEvent]:
        with self._lock:
            taken, self._events = self._events, []
        records: list[HostEvent] = []
        for event in taken:
            if event.kind == "console":
                records.extend(self._console_lines(event, lab))
            else:
                records.append(replace(event, detail=_mask(event.host_id, event.detail, lab)))
        if flush:  # the test is over: a line still open is shown too
            for host_id, (at, text) in self._partial.items():
                records.append(HostEvent(host_id, "console", at, 0.0, _mask(host_id, text, lab)))
            self._partial.clear()
        return records

    def _console_lines(self, event: HostEvent, lab: Lab | None) -> Iterator[HostEvent]:
        """Whole lines (masked as lines: a secret split between two reads is still found)."""
        at, text = self._partial.pop(event.host_id, (event.at, ""))
        text += event.detail
        *lines, rest = text.split("\n")
        for line in lines:
            for start in range(0, max(len(line), 1), MAX_CONSOLE_LINE):
                piece = line[start : start + MAX_CONSOLE_LINE].rstrip("\r")
                yield HostEvent(event.host_id, "console", at, 0.0, _mask(event.host_id, piece, lab))
            at = event.at
        if rest:
            self._partial[event.host_id] = (at, rest)

    def take(self, longrepr: str = "", flush: bool = False) -> dict[str, Any]:
        """What happened since the last take, as plain data for the report.

        ``flush``: the test is over, so a console line still open is taken too (not
        before: a secret split between two phases would escape the mask).
        """
        lab = self.lab
        commands = [CommandRecord.from_entry(e) for _, entries in self.watch.take() for e in entries]
        self._item_commands.extend(commands)
        if longrepr and lab is not None:  # a failure may quote any host's output
            for host in lab:
                longrepr = host._mask(longrepr)
        return {
            "commands": [c.to_dict() for c in commands],
            "events": [e.to_dict() for e in self._take_events(lab, flush)],
            "longrepr": longrepr,
        }

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self._done_phases.clear()
        self._item_commands = []

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """What ran between tests (a connect before the first one) is nobody's: keep it apart."""
        self._current = item
        item.stash[_BETWEEN] = self.take()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        longrepr = report.longreprtext if report.failed else ""
        payload = self.take(longrepr, flush=report.when == "teardown")
        if report.when == "setup":
            payload["between"] = item.stash.get(_BETWEEN, {})
        report.otto = payload  # type: ignore[attr-defined]
        self._done_phases.add(report.when)
        return report

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        """Allure (if installed) gets the transcript and the host while the test is still open."""
        item, self._current = self._current, None
        if item is not None and self.config.pluginmanager.has_plugin("allure_listener"):
            _attach_to_allure(item, self._item_commands)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """A test stopped without its reports (Ctrl-C): hand what its hosts did to the collector."""
        item = self._current
        if item is None or "teardown" in self._done_phases:
            return
        self._current = None
        collector = self.config.pluginmanager.get_plugin("otto-reports-collector")
        if collector is not None:
            collector.interrupted(item.nodeid, _hosts_of(item), self.take(flush=True))


_BETWEEN = pytest.StashKey[dict[str, Any]]()


def _junit_xml_key() -> Any:
    """pytest's stash key of its JUnit writer (imported at first use, once a node)."""
    from _pytest.junitxml import xml_key

    return xml_key


def _attach_to_allure(item: pytest.Item, commands: list[CommandRecord]) -> None:
    try:
        import allure
    except ImportError:
        return
    hosts = _hosts_of(item) or tuple(dict.fromkeys(c.host for c in commands))
    test = TestRecord(item.nodeid, hosts, commands=commands)
    for host in hosts:
        allure.dynamic.label("otto_host", host)  # type: ignore[no-untyped-call]
        text = "\n".join(line for line in test_lines(test, host)[1:-1])
        allure.attach(text or "(no command)", name=f"otto transcript {host}", attachment_type="text/plain")


def _invocation_path(config: pytest.Config, path: str) -> Path:
    """``path`` relative to where pytest was started (a test may change the current folder)."""
    return config.invocation_params.dir / Path(path).expanduser()


def _phase_outcome(report: pytest.TestReport) -> str:
    if report.skipped:
        return "xfailed" if hasattr(report, "wasxfail") else "skipped"
    if report.failed:
        return "failed" if report.when == "call" else "error"
    if report.when == "call" and hasattr(report, "wasxfail"):
        return "xpassed"
    return "passed"


def _host_info(host: Host) -> HostInfo:
    """Transport and endpoint (``user@address:port``, or the serial device) of a lab host."""
    address, port = getattr(host, "address", None), getattr(host, "port", None)
    if address and port:
        user = getattr(host, "user", None)
        endpoint = f"{user + '@' if user else ''}{address}:{port}"
    else:
        endpoint = str(getattr(host, "device", None) or "")
    return HostInfo(host.id, host.transport_name or type(host).__name__, endpoint, tuple(host.tags))


class Collector:
    """Builds the run's records from test reports; writes logs, JUnit output, matrix, HTML."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.run = RunRecord(started=time.time())
        self._open: dict[str, TestRecord] = {}
        log_dir = config.getoption("otto_log_dir")
        self.logs = HostLogs(_invocation_path(config, log_dir)) if log_dir else None

    @pytest.hookimpl(trylast=True)  # after pytest-otto's plugin loaded the lab
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        lab = _lab()
        if lab is not None:
            self.run.lab = lab.name
            self.run.lab_path = str(lab.path or "")
            self.run.hosts = [_host_info(h) for h in lab.hosts]

    def close(self) -> None:
        if self.logs is not None:
            self.logs.close()

    def _record(self, nodeid: str, hosts: tuple[str, ...]) -> TestRecord:
        test = self._open.get(nodeid)
        if test is None:
            test = self._open[nodeid] = TestRecord(nodeid, hosts)
            self.run.tests.append(test)
        return test

    def _add(self, test: TestRecord, payload: dict[str, Any]) -> None:
        test.commands.extend(CommandRecord.from_dict(c) for c in payload.get("commands", ()))
        test.events.extend(HostEvent.from_dict(e) for e in payload.get("events", ()))
        between = [HostEvent.from_dict(e) for e in payload.get("between", {}).get("events", ())]
        self.run.events.extend(e for e in between if e.kind in KEPT_KINDS)  # the log has the rest
        if self.logs is not None and between:
            self.logs.write_events(between)

    @pytest.hookimpl(tryfirst=True)  # before JUnit closes the test case at teardown
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        test = self._record(report.nodeid, _hosts_of(report))
        test.file, line, _ = report.location
        test.line = line if line is not None else -1
        payload: dict[str, Any] = getattr(report, "otto", None) or {}
        self._add(test, payload)
        start = getattr(report, "start", 0.0) or time.time() - report.duration
        stop = getattr(report, "stop", 0.0) or time.time()
        test.add_phase(_phase_outcome(report), start, stop, payload.get("longrepr", ""))
        if report.when == "teardown":
            self._finish(test, report)

    def _finish(self, test: TestRecord, report: pytest.TestReport | None) -> None:
        self._open.pop(test.nodeid, None)
        if not test.hosts:  # a test using the whole lab counts for the lab hosts it ran commands on
            lab = {h.id for h in self.run.hosts}
            test.hosts = tuple(h for h in dict.fromkeys(c.host for c in test.commands) if h in lab)
        if self.logs is not None:
            self.logs.write_test(test)
        if report is not None:
            self._add_to_junit(test, report)
        trim(test, page=bool(self.config.getoption("otto_report")))  # a long run's memory stays small

    def _add_to_junit(self, test: TestRecord, report: pytest.TestReport) -> None:
        """The test's transcript on each host as the test case's ``system-out`` (what CI dashboards show)."""
        xml = self.config.stash.get(_junit_xml_key(), None)
        if xml is None:  # no --junitxml: the common case, checked before anything else
            return
        hosts = [h for h in dict.fromkeys((*test.hosts, *(c.host for c in test.commands)))]
        if not hosts:
            return
        text = "\n".join(
            f"--- otto transcript {host} ---\n" + "\n".join(test_lines(test, host)) for host in hosts
        )
        if xml.logging in ("system-out", "out-err", "all"):
            # pytest writes its own <system-out> from the captured output: join it, as one more
            # section, rather than give the test case a second element a dashboard may ignore
            report.sections.append(("Captured stdout otto transcripts", text))
            return
        element = ET.Element("system-out")
        element.text = text
        xml.node_reporter(report).append(element)

    def interrupted(self, nodeid: str, hosts: tuple[str, ...], payload: dict[str, Any]) -> None:
        """A test stopped without a report (Ctrl-C): it ends as ``interrupted`` with what it did."""
        test = self._record(nodeid, hosts)
        self._add(test, payload)
        started = min((c.started for c in test.commands), default=time.time())
        test.add_phase("interrupted", test.start or started, time.time(), "interrupted (Ctrl-C)")
        self._finish(test, None)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        for test in list(self._open.values()):
            self._finish(test, None)
        self.run.finished = time.time()
        path = self.config.getoption("otto_report")
        if path:
            target = _invocation_path(self.config, path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(render_html(self.run), encoding="utf-8")
        self.close()

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> Generator[None, None, None]:
        """The summary ends with the matrix: after pytest's short summary, before its last line."""
        yield
        self._print_matrix(terminalreporter)

    def _print_matrix(self, terminalreporter: Any) -> None:
        """The test x host matrix, when the run covers two or more hosts (``--otto-matrix``)."""
        choice = self.config.getoption("otto_matrix")
        if choice == "no":
            return
        matrix = build_matrix(self.run.tests, [h.id for h in self.run.hosts])
        if len(matrix.hosts) < (1 if choice == "yes" else 2):
            return
        width = min(MATRIX_WIDTH, terminalreporter._tw.fullwidth)
        terminalreporter.write_sep("=", "otto test x host matrix")
        for line in render_matrix(matrix, width):
            terminalreporter.write_line(line)
        if self.config.getoption("otto_report"):
            terminalreporter.write_line(f"HTML report: {self.config.getoption('otto_report')}")
        if self.logs is not None:
            terminalreporter.write_line(f"host logs: {self.logs.folder}")

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        """pytest-html: a Host column."""
        cells.insert(2, "<th>Host</th>")

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        import html

        cells.insert(2, f"<td>{html.escape(', '.join(_hosts_of(report)))}</td>")
