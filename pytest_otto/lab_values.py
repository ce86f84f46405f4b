"""Validators of lab-file values: one small function per kind of value, no I/O.

A validator takes the value as TOML gave it and the `Place` it was written in, and
returns the value normalised (a path resolved, a list made a tuple) or raises
`WrongType` / `BadValue` with the reason only. The loader (`pytest_otto.config`) adds
the file, the host and the key to make a `pytest_otto.LabError`, so each validator is
a few lines, tested without a lab file, and reused by every key of its kind: the
typed config classes name their keys' validators in their fields' metadata.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "BadValue",
    "Place",
    "Validator",
    "WrongType",
    "boolean",
    "choice",
    "delay",
    "flag_or_path",
    "int_range",
    "line_limit",
    "path",
    "regex",
    "resolve_path",
    "table",
    "tags",
    "text",
    "timeout",
    "type_name",
]


@dataclass(frozen=True)
class Place:
    """Where a value was written: the lab file, and the folder relative paths start from."""

    file: Path | None = None
    base: Path | None = None


class BadValue(ValueError):
    """The value has the right type but is not acceptable; the message says why."""


class WrongType(TypeError):
    """The value is not of the expected kind; ``expected`` describes the kind."""

    def __init__(self, value: object, expected: str) -> None:
        super().__init__(expected)
        self.value = value
        self.expected = expected


#: ``validator(value, place) -> normalised value``.
Validator = Callable[[Any, Place], Any]


def type_name(value: object) -> str:
    """The TOML name of ``value``'s type, for messages."""
    names = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}
    return names.get(type(value), type(value).__name__)


def resolve_path(text: str, base: str | Path | None) -> Path:
    """``text`` with ``~`` expanded, relative to ``base`` when not absolute."""
    found = Path(text).expanduser()
    if not found.is_absolute() and base is not None:
        found = Path(base) / found
    return found


def text(value: object, place: Place) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value:
        raise WrongType(value, "a non-empty string")
    return value


def regex(value: object, place: Place) -> str:
    """A non-empty string that compiles as a regular expression."""
    pattern = text(value, place)
    try:
        re.compile(pattern)
    except re.error as exc:
        raise BadValue(f"not a valid regular expression: {exc}") from None
    return pattern


def path(value: object, place: Place) -> Path:
    """A non-empty path string, resolved against the lab file's folder."""
    if not isinstance(value, str) or not value:
        raise WrongType(value, "a non-empty path string")
    return resolve_path(value, place.base)


def boolean(value: object, place: Place) -> bool:
    """``true`` or ``false``."""
    if not isinstance(value, bool):
        raise WrongType(value, "true or false")
    return value


def flag_or_path(value: object, place: Place) -> bool | Path:
    """``true``, ``false``, or a path resolved as `path` does (a file that may stand in for a default)."""
    if isinstance(value, bool):
        return value
    if not isinstance(value, str) or not value:
        raise WrongType(value, "true, false or a path")
    return path(value, place)


def _integer(value: object, expected: str = "an integer") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise WrongType(value, expected)
    return value


def int_range(low: int, high: int | None = None) -> Validator:
    """An integer in ``low..high`` (no upper bound when ``high`` is None)."""

    def check(value: object, place: Place) -> int:
        number = _integer(value)
        if number < low or (high is not None and number > high):
            bound = f"{low}..{high}" if high is not None else f">= {low}"
            raise BadValue(f"{number} is out of range ({bound})")
        return number

    return check


def line_limit(value: object, place: Place) -> int:
    """Bytes of the longest typed line: at least 64, or 0 for no limit."""
    number = _integer(value, "an integer (bytes; 0 for no limit)")
    if number != 0 and number < 64:
        raise BadValue(f"{number} is too small: at least 64 bytes, or 0 for no limit")
    return number


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise WrongType(value, "a number of seconds")
    if math.isnan(value):
        raise BadValue("nan is not a number of seconds")
    return float(value)


def timeout(value: object, place: Place) -> float:
    """A bound in seconds: positive, ``inf`` for none."""
    seconds = _seconds(value)
    if seconds <= 0:
        raise BadValue(f"{seconds:g} must be positive (inf for no bound)")
    return seconds


def delay(value: object, place: Place) -> float:
    """A pause or interval in seconds: zero or more, finite."""
    seconds = _seconds(value)
    if seconds < 0 or math.isinf(seconds):
        raise BadValue(f"{seconds:g} must be zero or a positive finite number")
    return seconds


def choice(*choices: str, hint: Callable[[str, tuple[str, ...]], str] | None = None) -> Validator:
    """One of ``choices``; ``hint(word, choices)`` adds a "did you mean" to the error."""

    def check(value: object, place: Place) -> str:
        if not isinstance(value, str):
            raise WrongType(value, "a string")
        if value not in choices:
            extra = hint(value, choices) if hint is not None else ""
            raise BadValue(f"{value!r} is not one of {', '.join(choices)}{extra}")
        return value

    return check


def tags(value: object, place: Place) -> tuple[str, ...]:
    """An array of non-empty strings, kept as a tuple."""
    if not isinstance(value, list):
        raise WrongType(value, "an array of strings")
    for tag in value:
        if not isinstance(tag, str) or not tag:
            raise BadValue(f"each tag must be a non-empty string, got {tag!r}")
    return tuple(value)


def table(value: object, place: Place) -> dict[str, Any]:
    """Any table, copied."""
    if not isinstance(value, dict):
        raise WrongType(value, "a table")
    return dict(value)
