"""One log file per host: everything it ran during a run, in order, with timestamps.

`HostLogs` appends each test's part as soon as the test is reported, so a run
that is killed still leaves what came before. Lines look like::

    2026-12-07T19:01:02.123Z test_a.py::test_one[ssh1] START
    2026-12-07T19:01:02.130Z test_a.py::test_one[ssh1] [default] run uname -s -> Success (exit 0, 0.004s)
        | Linux
    2026-12-07T19:01:02.200Z test_a.py::test_one[ssh1] console| login: root
    2026-12-07T19:01:02.210Z test_a.py::test_one[ssh1] END passed (0.087s)
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

from .events import HostEvent
from .records import CommandRecord, TestRecord

__all__ = ["HostLogs", "format_command", "format_event", "log_file_name", "timestamp"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def timestamp(at: float) -> str:
    """UTC, milliseconds: ``2026-12-07T19:01:02.123Z``."""
    whole = int(at)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((at - whole) * 1000):03d}Z"


def log_file_name(host_id: str) -> str:
    """A file name for a host's log, safe on every file system."""
    return _UNSAFE.sub("_", host_id) + ".log"


def _visible(text: str) -> str:
    """Control characters (a console's ``\\r``, escape sequences) written as ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _indented(text: str) -> Iterator[str]:
    for line in text.split("\n"):
        yield f"    | {_visible(line)}"


def format_command(command: CommandRecord, test: str) -> list[str]:
    """A command's headline and its output, indented."""
    lines = [f"{timestamp(command.started)} {test} {_visible(command.headline())}"]
    if command.output:
        if not command.finished:
            lines.append("    | (output so far)")
        lines.extend(_indented(command.output))
    return lines


def format_event(event: HostEvent, test: str) -> list[str]:
    """A console line as received, or an event (reconnect, reboot, ...) with its detail."""
    where = f"{timestamp(event.at)} {test}".rstrip()
    if event.kind == "console":
        return [f"{where} console| {_visible(event.detail)}"]
    span = f" ({event.duration:.3f}s)" if event.duration else ""
    detail = f": {_visible(event.detail)}" if event.detail else ""
    return [f"{where} {event.kind}{span}{detail}"]


def _timed(test: TestRecord, host: str) -> list[tuple[float, int, list[str]]]:
    items = [(c.started, 1, format_command(c, test.nodeid)) for c in test.commands_on(host)]
    items += [(e.at, 0, format_event(e, test.nodeid)) for e in test.events if e.host_id == host]
    return sorted(items, key=lambda item: (item[0], item[1]))


def test_lines(test: TestRecord, host: str) -> list[str]:
    """What ``host`` did during ``test``, framed by START and END lines."""
    lines = [f"{timestamp(test.start)} {test.nodeid} START"]
    for _, _, block in _timed(test, host):
        lines.extend(block)
    lines.append(f"{timestamp(test.stop)} {test.nodeid} END {test.outcome} ({test.stop - test.start:.3f}s)")
    return lines


test_lines.__test__ = False  # type: ignore[attr-defined]


class HostLogs:
    """A folder with one ``<host>.log`` per host, appended to as tests are reported."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, TextIO] = {}

    def path(self, host: str) -> Path:
        """Where ``host``'s log goes."""
        return self.folder / log_file_name(host)

    def _file(self, host: str) -> TextIO:
        handle = self._files.get(host)
        if handle is None:
            handle = self._files[host] = self.path(host).open("w", encoding="utf-8", errors="replace")
            handle.write(f"# pytest-otto log of host {host}: every command, with the test that ran it\n")
        return handle

    def _write(self, host: str, lines: Iterable[str]) -> None:
        handle = self._file(host)
        handle.write("\n".join(lines) + "\n")
        handle.flush()  # a run killed later keeps this test's part

    def write_test(self, test: TestRecord) -> None:
        """Append ``test``'s part to the log of every host it ran on or touched."""
        hosts = dict.fromkeys(test.hosts)
        hosts.update(dict.fromkeys(c.host for c in test.commands))
        hosts.update(dict.fromkeys(e.host_id for e in test.events))
        for host in hosts:
            self._write(host, test_lines(test, host))

    def write_events(self, events: Iterable[HostEvent]) -> None:
        """Events outside any test (a connect before the first one), in their hosts' logs."""
        for event in sorted(events, key=lambda e: e.at):
            self._write(event.host_id, format_event(event, "(between tests)"))

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()
