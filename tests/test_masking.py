"""The library's secret masking (`pytest_otto.masking`), without a server.

Against real servers: `test_faults.test_no_secret_in_any_output_of_a_failing_run`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pytest

from pytest_otto import masking
from pytest_otto.masking import (
    MASK,
    MaskingFilter,
    Revealed,
    known_secrets,
    mask,
    mask_report,
    mask_secrets,
)


@pytest.fixture(autouse=True)
def own_secrets(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The secrets these tests reveal are forgotten after each: remembered for the whole
    process, short ones would mask words in every later report of this worker."""
    monkeypatch.setattr(masking, "_known", ())
    yield


def test_a_revealed_value_is_masked_everywhere_from_then_on() -> None:
    value = Revealed("token-Q7")
    assert repr(value) == repr(MASK) and value == "token-Q7"
    assert "token-Q7" in known_secrets()
    assert mask("token-Q7 here") == f"{MASK} here"


def test_a_secret_that_holds_another_is_masked_whole() -> None:
    Revealed("ab12")
    Revealed("xxab12yy")
    assert mask("xxab12yy and ab12") == f"{MASK} and {MASK}"
    assert mask_secrets("xxab12yy", ["ab12", "xxab12yy"]) == MASK


def test_short_secrets_are_masked_too() -> None:
    """The policy: every occurrence, however short (docs/ci-runners.md)."""
    Revealed("rt")
    assert mask("/rt/dir") == f"/{MASK}/dir"


def test_log_records_are_masked_with_their_arguments_and_traceback() -> None:
    Revealed("pw-in-log-3k")
    try:
        raise ValueError("failed with pw-in-log-3k")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "said %s", ("pw-in-log-3k",), exc_info)
    assert MaskingFilter().filter(record)
    text = logging.Formatter().format(record)
    assert "pw-in-log-3k" not in text and f"said {MASK}" in text and "ValueError" in text


class _Report:
    def __init__(self) -> None:
        self.longrepr: object = ("file.py", 1, "Skipped: pw-in-report-8j")
        self.sections = [("Captured stdout call", "pw-in-report-8j")]
        self.user_properties = [("out", "pw-in-report-8j"), ("n", 3)]


def test_a_report_is_masked_in_its_longrepr_sections_and_properties() -> None:
    Revealed("pw-in-report-8j")
    report = _Report()
    mask_report(report)
    assert report.longrepr == ("file.py", 1, f"Skipped: {MASK}")
    assert report.sections == [("Captured stdout call", MASK)]
    assert report.user_properties == [("out", MASK), ("n", 3)]
