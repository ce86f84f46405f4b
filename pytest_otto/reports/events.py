"""Things that happen to a host besides commands: connects, reconnects, raw console bytes.

Reports place them on a host's timeline and in its log. The library emits
``connect``/``reconnect`` (a session got a shell) and ``console`` (raw bytes a
console host received); other parts add their own kinds with one call, for
example::

    from pytest_otto.reports import events
    events.emit(host.id, "reboot", "power cycle by PDU outlet 3", duration=41.5)

Kinds the report draws on the timeline: ``reconnect``, ``connect-failed``, ``reboot``,
``power``, ``lease-wait``. Kind ``info`` with a detail ``name: value`` (``lease holder:
ci-runner-3``, ``uname: Linux 6.1 armv7l``) fills a column of the report's host table.
Emitting costs one check when nobody listens (a run without reports).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["HostEvent", "emit", "emit_console", "listen", "listening"]


@dataclass(frozen=True)
class HostEvent:
    """One thing that happened to a host at a point (or over a span) of wall-clock time."""

    host_id: str
    kind: str
    #: time.time() when it started
    at: float
    #: seconds it lasted (0 for a point in time)
    duration: float = 0.0
    #: what a person reads next to the mark; raw text for ``console``
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain data (a pytest-xdist worker sends it to the controller as JSON)."""
        return dict(vars(self))  # flat fields: no need for asdict's deep copy (one per command)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HostEvent:
        return cls(**{k: v for k, v in data.items() if k in _FIELDS})


_FIELDS = frozenset(("host_id", "kind", "at", "duration", "detail"))


Listener = Callable[[HostEvent], None]

#: Replaced (never mutated), so `emit` reads it without a lock.
_listeners: tuple[Listener, ...] = ()
_lock = threading.Lock()


def listen(listener: Listener) -> Callable[[], None]:
    """Call ``listener`` with every event from now on (from any thread); returns the unsubscribe."""
    global _listeners
    with _lock:
        _listeners = (*_listeners, listener)

    def stop() -> None:
        global _listeners
        with _lock:
            _listeners = tuple(other for other in _listeners if other is not listener)

    return stop


def listening() -> bool:
    """True when someone listens (so an emitter may skip building an expensive detail)."""
    return bool(_listeners)


def emit(
    host_id: str, kind: str, detail: str = "", *, at: float | None = None, duration: float = 0.0
) -> None:
    """Tell every listener that ``kind`` happened to ``host_id``; never raises.

    ``at`` defaults to now (or to now minus ``duration``: the event just ended).
    ``detail`` must not hold a secret: the report shows it as it is.
    """
    listeners = _listeners
    if not listeners:
        return
    when = at if at is not None else time.time() - duration
    event = HostEvent(host_id, kind, when, duration, detail)
    for listener in listeners:
        try:
            listener(event)
        except Exception:  # a broken report must not break the host that emits
            pass


def emit_console(host_id: str, data: bytes) -> None:
    """Raw bytes a console host received, as they came (a listener masks them by line)."""
    if _listeners and data:
        emit(host_id, "console", data.decode("utf-8", "replace"))
