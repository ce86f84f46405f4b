"""What a host ran: command, output, exit code, duration; secrets masked.

The pytest plugin shows these in reports, but they are a library feature: a
script can read ``host.transcript`` too.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

from .result import Status

__all__ = ["Transcript", "TranscriptEntry", "mask_secrets"]

MASK = "********"


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret value in ``text`` with a mask."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, MASK)
    return text


@dataclass(frozen=True)
class TranscriptEntry:
    """One thing a host did."""

    host_id: str
    session: str
    kind: str  # "run", "oneshot", "put", "get"
    command: str
    output: str
    status: Status
    retcode: int
    started: float  # time.time()
    duration: float  # seconds

    def format(self, max_output: int = 4000) -> str:
        """Human-readable block for reports."""
        output = self.output
        if len(output) > max_output:
            output = output[:max_output] + f"\n[... {len(self.output) - max_output} more characters]"
        head = (
            f"[{self.host_id}:{self.session}] {self.kind} {self.command!r} -> "
            f"{self.status.name} (exit {self.retcode}, {self.duration:.3f}s)"
        )
        return f"{head}\n{output}" if output else head


class Transcript:
    """A bounded, thread-safe log of a host's commands."""

    def __init__(self, max_entries: int = 10000) -> None:
        self._entries: deque[TranscriptEntry] = deque(maxlen=max_entries)
        self._count = 0
        self._lock = threading.Lock()

    def append(self, entry: TranscriptEntry) -> None:
        """Record ``entry``."""
        with self._lock:
            self._entries.append(entry)
            self._count += 1

    def mark(self) -> int:
        """A position to later ask ``since(mark)`` for what happened after it."""
        with self._lock:
            return self._count

    def since(self, mark: int) -> list[TranscriptEntry]:
        """Entries recorded after ``mark`` (as many as are still kept)."""
        with self._lock:
            new = min(self._count - mark, len(self._entries))
            if new <= 0:
                return []
            # walk only the new tail: the plugin asks this of every host after every test phase
            return list(islice(reversed(self._entries), new))[::-1]

    def __iter__(self) -> Iterator[TranscriptEntry]:
        with self._lock:
            return iter(list(self._entries))

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()
