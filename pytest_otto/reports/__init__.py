"""Reports a person can look at: the test x host matrix, per-host logs, one HTML page.

The core is plain functions over plain values (`records`), so a script can build
the same reports: `build_matrix`/`render_matrix` for the terminal, `HostLogs` for
one log file per host, `render_html` for the self-contained page. `events` is
where the library (and other features: reboots, power, leases) tells reports
what happened to a host besides its commands. The pytest side lives in
`pytest_otto.reports.pytest_hooks`.
"""

from __future__ import annotations

from . import events
from .events import HostEvent
from .html import render_html
from .logs import HostLogs
from .matrix import Matrix, build_matrix, render_matrix
from .records import CommandRecord, HostInfo, RunRecord, TestRecord

__all__ = [
    "CommandRecord",
    "HostEvent",
    "HostInfo",
    "HostLogs",
    "Matrix",
    "RunRecord",
    "TestRecord",
    "build_matrix",
    "events",
    "render_html",
    "render_matrix",
]
