"""Timeouts of every call: the ``DEFAULT`` sentinel, checking a ``timeout=`` argument,
waiting with a bound that may be infinite, and writing seconds in messages.

Hosts, sessions and transports all use these; none of them depends on the others.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable
from typing import Final, TypeVar

__all__ = ["DEFAULT", "format_seconds", "resolve_timeout", "wait_bounded"]

T = TypeVar("T")


class _Default:
    """Marker for "use the host's configured timeout" (resolved at call time)."""

    _instance: _Default | None = None

    def __new__(cls) -> _Default:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "DEFAULT"


#: Use the host's ``command_timeout`` (looked up when the call is made, not frozen).
DEFAULT: Final = _Default()


def resolve_timeout(value: object, default: float) -> float:
    """Validate a ``timeout=`` argument before anything is sent (B13).

    ``DEFAULT`` means ``default``; ``float("inf")`` disables the bound; ``None``,
    NaN, zero, negative numbers and booleans are refused.
    """
    if value is DEFAULT:
        value = default
    if value is None:
        raise TypeError("timeout=None is not allowed; pass float('inf') to wait without a bound")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, not {value!r}")
    if math.isnan(value) or value <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {value!r}")
    return float(value)


async def wait_bounded(awaitable: Awaitable[T], seconds: float) -> T:
    """``asyncio.wait_for`` that treats an infinite bound as none."""
    if math.isinf(seconds):
        return await awaitable
    # asyncio.timeout, unlike wait_for, wraps nothing in a new task: cheaper per call
    async with asyncio.timeout(max(seconds, 0)):
        return await awaitable


def format_seconds(value: float) -> str:
    """``1.0`` -> ``1``, ``0.5`` -> ``0.5`` for messages."""
    return f"{value:g}"
