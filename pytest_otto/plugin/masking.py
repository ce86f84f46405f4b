"""Secrets masked in everything pytest writes: each report and each log record.

A lab password can reach a report by ways no ``repr`` controls: an assertion's
diff of two strings, an f-string message, printed output, a log record. The
masking itself is the library's (`pytest_otto.masking`); these hooks apply it to
each report before pytest (or pytest-xdist, or the JUnit writer) sees it, and to
the records pytest's logging handlers write (captured, live, ``--log-file``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from ..masking import MaskingFilter, mask_report

__all__: list[str] = []

#: The handlers of pytest's logging plugin that write records somewhere.
_LOG_HANDLERS = ("caplog_handler", "report_handler", "log_file_handler", "log_cli_handler")

_filter = MaskingFilter()


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Mask secrets in every record pytest's logging handlers write."""
    logging_plugin = session.config.pluginmanager.get_plugin("logging-plugin")
    for name in _LOG_HANDLERS:
        handler = getattr(logging_plugin, name, None)
        if isinstance(handler, logging.Handler):
            handler.addFilter(_filter)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """Mask secrets in the test's report: longrepr (diffs, messages, locals), sections, properties."""
    report = yield
    mask_report(report)
    return report


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[Any]:
    """Mask secrets in a collection error's report too."""
    report = yield
    mask_report(report)
    return report
