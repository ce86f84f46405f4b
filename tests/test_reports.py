"""The reports' core without pytest: records, matrix layout, host logs, HTML, events.

Pure functions over plain values, so most tests build records by hand; what the
library itself records (unfinished commands, reconnects) is shown on a real local shell.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import warnings
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_otto import LocalHost, ShellResetWarning
from pytest_otto.reports import (
    CommandRecord,
    HostEvent,
    HostInfo,
    HostLogs,
    RunRecord,
    TestRecord,
    build_matrix,
    events,
    render_html,
    render_matrix,
)
from pytest_otto.reports.logs import format_command, log_file_name, timestamp
from pytest_otto.reports.records import clip, row_name, trim

T0 = 1_800_000_000.0


def command(host: str, cmd: str = "uname -s", output: str = "Linux", **kw: object) -> CommandRecord:
    fields: dict[str, object] = dict(
        host=host,
        session="default",
        kind="run",
        command=cmd,
        output=output,
        status="Success",
        retcode=0,
        started=T0 + 1,
        duration=0.25,
    )
    fields.update(kw)
    return CommandRecord(**fields)  # type: ignore[arg-type]


def test(nodeid: str, host: str, outcome: str = "passed", start: float = T0, **kw: object) -> TestRecord:
    return TestRecord(nodeid, (host,), outcome, start, start + 2, **kw)  # type: ignore[arg-type]


test.__test__ = False  # type: ignore[attr-defined]


def test_row_name_drops_the_host_parameter_only() -> None:
    assert row_name("t.py::test_a[router1]", ["router1"]) == "t.py::test_a"
    assert row_name("t.py::test_a[router-1-fast]", ["router-1"]) == "t.py::test_a[fast]"
    assert row_name("t.py::test_a[fast-router-1]", ["router-1"]) == "t.py::test_a[fast]"
    assert row_name("t.py::test_a[a-r1-b]", ["r1"]) == "t.py::test_a[a-b]"
    assert row_name("t.py::test_a", ["r1"]) == "t.py::test_a"


def test_matrix_cells_rows_in_file_order_and_worst_outcome() -> None:
    tests = [
        test("t.py::test_b[r2]", "r2", "failed", file="t.py", line=9),
        test("t.py::test_a[r1]", "r1", file="t.py", line=1),
        test("t.py::test_b[r1]", "r1", "skipped", file="t.py", line=9),
        test("t.py::test_a[r2]", "r2", "error", file="t.py", line=1),
        TestRecord("t.py::test_lab", ("r2",), "passed", commands=[command("r2")], file="t.py", line=20),
    ]
    matrix = build_matrix(tests, ["r1", "r2"])
    assert matrix.rows == ["t.py::test_a", "t.py::test_b", "t.py::test_lab"]
    assert matrix.hosts == ["r1", "r2"]
    assert [[matrix.outcome(r, h) for h in matrix.hosts] for r in matrix.rows] == [
        ["passed", "error"],
        ["skipped", "failed"],
        [None, "passed"],
    ]
    assert matrix.totals("r2") == {"error": 1, "failed": 1, "passed": 1}
    assert render_matrix(matrix) == [
        "3 tests x 2 hosts",
        ". passed F failed E error s skipped x xfail X xpass ! unfinished - not run there",
        "test" + " " * 70 + "r1  r2",
        "t.py::test_a" + " " * 63 + ".   E",
        "t.py::test_b" + " " * 63 + "s   F",
        "t.py::test_lab" + " " * 61 + "-   .",
        "  error" + " " * 68 + "0   1",
        "  failed" + " " * 67 + "0   1",
        "  skipped" + " " * 66 + "1   0",
        "  passed" + " " * 67 + "1   1",
    ]


def test_matrix_abbreviates_hosts_then_numbers_them() -> None:
    long = [f"serial-board-{i}-in-rack-7" for i in range(4)]
    matrix = build_matrix([test(f"t.py::test_a[{h}]", h) for h in long])
    lines = render_matrix(matrix, 80)
    header = next(line for line in lines if line.startswith("test"))
    assert header.split()[1:] == ["1", "2", "3", "4"]  # no unique prefix of <= 12 characters
    assert "hosts: 1=serial-board-0-in-rack-7 2=serial-board-1-in-rack-7" in "\n".join(lines)
    short = build_matrix([test(f"t.py::test_a[{h}]", h) for h in ("alpha-router", "beta-switch-long")])
    header = next(line for line in render_matrix(short) if line.startswith("test"))
    assert header.split()[1:] == ["alpha-router", "beta-switch-"]


@settings(max_examples=60, deadline=None)
@given(
    hosts=st.lists(
        st.text("abcdefghij-0123456789", min_size=1, max_size=30), min_size=1, max_size=60, unique=True
    ),
    names=st.lists(st.text("abc_xyz/.:", min_size=1, max_size=120), min_size=1, max_size=5),
    width=st.integers(40, 200),
)
def test_matrix_always_fits_the_width(hosts: list[str], names: list[str], width: int) -> None:
    """Whatever the hosts and test names, no line is wider than asked (80 in the terminal)."""
    tests = [
        test(f"{n}[{h}]", h, "failed" if i % 3 else "passed") for i, h in enumerate(hosts) for n in names
    ]
    matrix = build_matrix(tests)
    lines = render_matrix(matrix, width)
    assert lines and all(len(line) <= width for line in lines), [line for line in lines if len(line) > width]
    shown = sum(len(line.split()) - 1 for line in lines if line.startswith("test"))
    assert shown == len(matrix.hosts)  # every host has a column in some block


def test_records_travel_as_json() -> None:
    """What a pytest-xdist worker puts on a report comes back equal on the controller."""
    record = test(
        "t.py::test_a[r1]",
        "r1",
        "failed",
        longrepr="boom",
        commands=[command("r1", finished=False)],
        events=[HostEvent("r1", "reconnect", T0, 0.5, "s")],
        file="t.py",
        line=3,
    )
    assert TestRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record


def test_clip_keeps_head_and_tail() -> None:
    text = "a" * 10_000 + "MIDDLE" + "z" * 10_000
    clipped = clip(text, 1000)
    assert clipped.startswith("a" * 500) and clipped.endswith("z" * 500) and "MIDDLE" not in clipped
    assert "[... 19006 characters left out ...]" in clipped
    assert clip("short", 1000) == "short"


def test_host_logs(tmp_path: Path) -> None:
    """One file per host; unfinished commands say so; control characters are made visible."""
    logs = HostLogs(tmp_path / "logs")
    record = test(
        "t.py::test_a[r/1]",
        "r/1",
        "failed",
        commands=[
            command("r/1", "sleep 60", "partial", status="Error", retcode=-1, finished=False, duration=3.0)
        ],
        events=[
            HostEvent("r/1", "console", T0 + 0.5, 0, "login: \x1b[0m"),
            HostEvent("r2", "reboot", T0 + 1.5),
        ],
    )
    logs.write_test(record)
    logs.write_events([HostEvent("r/1", "connect", T0 - 1, 0.4, "session default")])
    logs.close()
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["r2.log", "r_1.log"]
    text = (tmp_path / "logs" / log_file_name("r/1")).read_text().splitlines()
    assert text[1:] == [
        f"{timestamp(T0)} t.py::test_a[r/1] START",
        f"{timestamp(T0 + 0.5)} t.py::test_a[r/1] console| login: \\x1b[0m",
        f"{timestamp(T0 + 1)} t.py::test_a[r/1] [default] run sleep 60 -> UNFINISHED"
        " (still running after 3.000s when the test was stopped)",
        "    | (output so far)",
        "    | partial",
        f"{timestamp(T0 + 2)} t.py::test_a[r/1] END failed (2.000s)",
        f"{timestamp(T0 - 1)} (between tests) connect (0.400s): session default",
    ]
    assert f"{timestamp(T0 + 1.5)} t.py::test_a[r/1] reboot" in (tmp_path / "logs" / "r2.log").read_text()
    assert timestamp(T0 + 0.25) == "2027-01-15T08:00:00.250Z"
    assert format_command(command("h"), "t")[1] == "    | Linux"


class _Attributes(HTMLParser):
    """Every attribute name of every tag of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.names.update(name for name, _ in attrs)


def test_html_escapes_everything_and_loads_nothing() -> None:
    """A device's output is text, never markup; the page names no outside resource."""
    evil = "<script>alert(1)</script><img src=http://example.invalid/x.png>"
    run = RunRecord(
        "bench <b>",
        "/labs/lab.toml",
        [HostInfo("r1", "ssh", "root@10.0.0.1:22", ("router",), (("uname", evil),))],
        [test("t.py::test_a[r1]", "r1", "failed", longrepr=evil, commands=[command("r1", evil, evil)])],
        [HostEvent("r1", "lease-wait", T0 - 5, 4.0, evil)],
        T0 - 10,
        T0 + 10,
    )
    page = render_html(run)
    assert evil not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<script>") == 1  # our own, inline
    attributes = _Attributes()
    attributes.feed(page)
    assert attributes.names.isdisjoint({"src", "href", "action", "srcset", "poster"})
    assert "default-src 'none'" in page
    assert 'data-kind="lease-wait"' in page  # other features' events reach the timeline
    assert "<th>uname</th>" in page  # and their host columns reach the host table


def test_info_events_fill_the_host_table() -> None:
    """A feature (leases, boards) adds a host-table column with one ``info`` event; last one wins."""
    run = RunRecord(
        "bench",
        "",
        [HostInfo("r1", "ssh"), HostInfo("r2", "telnet")],
        [test("t.py::test_a[r1]", "r1", events=[HostEvent("r1", "info", T0 + 1, 0, "lease holder: ci-4")])],
        [
            HostEvent("r1", "info", T0, 0, "lease holder: ci-3"),
            HostEvent("r2", "info", T0, 0, "uname: Linux 6.1"),
        ],
    )
    cells = re.findall(
        r"<tr>(.*?)</tr>", render_html(run).split('<table class="hosts">')[1].split("</table>")[0]
    )
    assert cells == [
        "<th>host</th><th>transport</th><th>endpoint</th><th>tags</th><th>lease holder</th><th>uname</th>",
        "<td>r1</td><td>ssh</td><td></td><td></td><td>ci-4</td><td></td>",
        "<td>r2</td><td>telnet</td><td></td><td></td><td></td><td>Linux 6.1</td>",
    ]


def test_events_reach_listeners_and_never_break_the_emitter() -> None:
    seen: list[HostEvent] = []

    def broken(event: HostEvent) -> None:
        raise RuntimeError("a broken report")

    stops = [events.listen(broken), events.listen(seen.append)]
    try:
        events.emit("r1", "power", "outlet 3 off", duration=2.0)
        events.emit_console("r1", b"login: \xff")
    finally:
        for stop in stops:
            stop()
    events.emit("r1", "power", "nobody listens")
    assert [(e.host_id, e.kind, e.detail, e.duration) for e in seen] == [
        ("r1", "power", "outlet 3 off", 2.0),
        ("r1", "console", "login: \ufffd", 0.0),
    ]
    assert not events.listening() or all(s is not seen.append for s in events._listeners)


async def test_a_cancelled_command_is_kept_unfinished_with_its_output() -> None:
    """A real shell: the command a stopped caller was waiting for stays in the transcript."""
    host = LocalHost("dut")
    try:
        mark = host.transcript.mark()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(host.run("echo partial-output; sleep 30"), 2)
        deadline = time.monotonic() + 30  # the otto loop records it once the cancel reached it
        while not host.transcript.since(mark) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        (entry,) = host.transcript.since(mark)
        assert not entry.finished and entry.command == "echo partial-output; sleep 30"
        assert entry.output == "partial-output"
        assert "UNFINISHED (still running after" in entry.format()
        assert (await host.run("echo next")).only.output == "next"  # and the host goes on
    finally:
        await host.close()


def test_connects_and_reconnects_are_events() -> None:
    """A real shell that dies is replaced: the report sees a connect, then a reconnect."""
    seen: list[HostEvent] = []
    stop = events.listen(seen.append)
    host = LocalHost("dut")
    try:
        host.run_sync("true")
        host.run_sync("kill -9 $$")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ShellResetWarning)
            assert host.run_sync("echo back").only.output == "back"
    finally:
        stop()
        host.close_sync()
    kinds = [(e.host_id, e.kind, e.detail) for e in seen if e.kind != "console"]
    assert kinds == [("dut", "connect", "session default"), ("dut", "reconnect", "session default")]


def test_trim_keeps_what_the_end_of_the_run_needs() -> None:
    """A long run's memory stays small: outcomes only without a page; for the page, passing
    tests keep the head and tail of outputs and their last console lines, failures more."""
    big = "x" * 100_000
    console = [HostEvent("r1", "console", T0 + i, 0, f"line {i}") for i in range(3000)]
    events_ = [HostEvent("r1", "reconnect", T0, 0.5, "s"), *console]

    def fresh(outcome: str) -> TestRecord:
        return test(
            "t.py::test_a[r1]", "r1", outcome, commands=[command("r1", output=big)], events=list(events_)
        )

    bare = fresh("failed")
    trim(bare, page=False)
    assert bare.commands == [] and [e.kind for e in bare.events] == ["reconnect"]
    passed, failed = fresh("passed"), fresh("failed")
    trim(passed, page=True)
    trim(failed, page=True)
    assert len(passed.commands[0].output) < 2100 and failed.commands[0].output == big
    assert [e.detail for e in passed.events if e.kind == "console"] == [
        f"line {i}" for i in range(2800, 3000)
    ]
    assert len([e for e in failed.events if e.kind == "console"]) == 2000
    assert failed.events[0].kind == "reconnect"  # the timeline's events are never dropped
