"""Secrets kept out of everything a run writes: logs, reprs, transcripts, reports, JUnit.

Every secret the library reveals (a lab password read at connect time) becomes a
`Revealed`, which remembers its value here. What leaves the process is masked
with every value remembered so far, wherever it came from:

- a host's transcript and log lines (`mask_secrets` with the host's own secrets);
- the results a test gets back: intact values, but a `SecretText` whose ``repr``
  (what assertion messages and ``pytest -l`` print) is masked;
- the pytest reports, where a value reaches text in ways no ``repr`` controls (an
  assertion's diff, an f-string message, captured output and log records): the
  plugin masks each report (`mask_report`) and every log record its handlers
  write (`MaskingFilter`), so the terminal and the JUnit file never hold one.

Policy for short secrets: every occurrence of a secret's text is masked, however
short it is. A password ``root`` masks the ``root`` in ``/root`` too: reports may
lose a word, but never show the password. Values returned to the test stay intact,
so a test can still compare them; only what is written out is masked.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Iterable
from typing import Any

__all__ = [
    "MASK",
    "MaskingFilter",
    "Revealed",
    "SecretText",
    "known_secrets",
    "mask",
    "mask_report",
    "mask_secrets",
    "remember_secret",
    "shown_masked",
]

MASK = "********"

_known: tuple[str, ...] = ()  # longest first, so a secret that holds another is masked whole
_known_lock = threading.Lock()


def remember_secret(value: str) -> None:
    """Mask ``value`` in every report and log record from now on (empty values are ignored)."""
    global _known
    value = str.__str__(value)
    if not value or value in _known:
        return
    with _known_lock:
        if value not in _known:
            _known = tuple(sorted((*_known, value), key=len, reverse=True))


def known_secrets() -> tuple[str, ...]:
    """Every secret value revealed in this process so far, longest first."""
    return _known


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret value in ``text`` with a mask (``text`` itself if none occurs)."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and secret in text:
            text = text.replace(secret, MASK)
    return text


def mask(text: str) -> str:
    """``text`` with every known secret masked (``text`` itself if none occurs)."""
    for secret in _known:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class Revealed(str):
    """A revealed secret: the plain value for every use, but masked by ``repr``.

    Tracebacks shown with ``pytest -l`` (and written to JUnit XML) print each
    frame's locals with ``repr``; a password held in a local or in a dict of
    connect options then shows as a mask instead of its value. Making one
    remembers the value, so that reports mask it wherever else it shows up.
    """

    __slots__ = ()

    def __new__(cls, value: str) -> Revealed:
        remember_secret(value)
        return super().__new__(cls, value)

    def __repr__(self) -> str:
        return repr(MASK)


class SecretText(str):
    """A command or output that contains a host's secret, as the test gets it.

    The value is intact (a test may compare it), but its ``repr``, which is what
    an assertion message, ``pytest -l`` and a result's own repr print, masks it.
    """

    _masked: str

    def __new__(cls, text: str, masked: str) -> SecretText:
        obj = super().__new__(cls, text)
        obj._masked = masked
        return obj

    def __repr__(self) -> str:
        return repr(self._masked)

    def __reduce__(self) -> tuple[Any, ...]:
        return (SecretText, (str(self), self._masked))


def shown_masked(text: str, masked: str) -> str:
    """``text``, or a `SecretText` of it when masking changed it (``masked`` from `mask_secrets`)."""
    return text if masked is text else SecretText(text, masked)


class MaskingFilter(logging.Filter):
    """A handler filter that masks known secrets in each record it lets through.

    The record's message is formatted once and masked (its arguments dropped), and
    so is a traceback it carries, so every handler after this one sees it masked too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not _known:
            return True
        message = record.getMessage()
        masked = mask(message)
        if masked is not message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return True


def _masked_value(value: Any, depth: int = 0) -> Any:
    """``value`` with known secrets masked in every string it holds (dataclasses changed in place)."""
    if isinstance(value, str):
        return mask(value)
    if depth > 8:
        return value
    if isinstance(value, list):
        value[:] = [_masked_value(item, depth + 1) for item in value]
        return value
    if isinstance(value, tuple):
        items = [_masked_value(item, depth + 1) for item in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, dict):
        return {key: _masked_value(item, depth + 1) for key, item in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            current = getattr(value, field.name)
            masked = _masked_value(current, depth + 1)
            if masked is not current:
                object.__setattr__(value, field.name, masked)
    return value


def _holds_secret(text: str) -> bool:
    return any(secret in text for secret in _known)


def mask_report(report: Any) -> None:
    """Mask known secrets in a pytest report: its longrepr, sections and user properties.

    The longrepr's parts (traceback lines, locals, the crash message that JUnit's
    ``message`` attribute holds) are masked where they are, so the report keeps
    its layout; should any secret remain in its text, the longrepr becomes the
    masked text.
    """
    if not _known:
        return
    longrepr = getattr(report, "longrepr", None)
    if longrepr is not None and _holds_secret(str(longrepr)):
        longrepr = report.longrepr = _masked_value(longrepr)
        if _holds_secret(str(longrepr)):
            report.longrepr = mask(str(longrepr))
    sections = getattr(report, "sections", None)
    if sections:
        report.sections = [(title, mask(content)) for title, content in sections]
    properties = getattr(report, "user_properties", None)
    if properties:
        report.user_properties = [
            (name, mask(str(value)) if _holds_secret(str(value)) else value) for name, value in properties
        ]
