"""What a host ran: command, output, exit code, duration; secrets masked.

The pytest plugin shows these in reports, but they are a library feature: a
script can read ``host.transcript`` too.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice

from .masking import MASK, SecretText, mask_secrets, shown_masked
from .result import Status

#: The masking lives in `pytest_otto.masking`; these names stay importable from here.
__all__ = [
    "MASK",
    "SecretText",
    "Transcript",
    "TranscriptEntry",
    "TranscriptWatch",
    "mask_secrets",
    "shown_masked",
]

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
    #: False for a command still running when its caller was stopped (a test killed by
    #: pytest-timeout, Ctrl-C, a cancelled task); ``output`` is what it printed so far.
    finished: bool = True

    def format(self, max_output: int = 4000) -> str:
        """Human-readable block for reports."""
        output = self.output
        if len(output) > max_output:
            output = output[:max_output] + f"\n[... {len(self.output) - max_output} more characters]"
        if self.finished:
            end = f"{self.status.name} (exit {self.retcode}, {self.duration:.3f}s)"
        else:
            end = f"UNFINISHED (still running after {self.duration:.3f}s when it was stopped; output so far)"
        head = f"[{self.host_id}:{self.session}] {self.kind} {self.command!r} -> {end}"
        return f"{head}\n{output}" if output else head


class Transcript:
    """A bounded, thread-safe log of a host's commands."""

    def __init__(self, max_entries: int = 10000) -> None:
        self._entries: deque[TranscriptEntry] = deque(maxlen=max_entries)
        self._count = 0
        self._lock = threading.Lock()

    def append(self, entry: TranscriptEntry) -> None:
        """Record ``entry`` (and tell every open `TranscriptWatch` this transcript moved)."""
        with self._lock:
            before = self._count
            self._entries.append(entry)
            self._count += 1
            # Inside the lock: two appends racing from different threads must reach a
            # watch in count order, or it would remember the later mark and lose an entry.
            for watch in _watches:
                watch._moved(self, before)

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


#: Open watches; replaced (never mutated) so `Transcript.append` reads it without a lock.
_watches: tuple[TranscriptWatch, ...] = ()
_watches_lock = threading.Lock()


class TranscriptWatch:
    """Which transcripts recorded something since the last `take`, and what.

    Finding the hosts a test used by asking every host's transcript costs a mark
    and a read per host per test phase: with a lab of 100 hosts, 400 lock round
    trips for a test that ran one command on one host. A watch is told by the
    transcripts themselves, so reading it costs only what was recorded, whatever
    the number of hosts, and it also sees hosts reached in any way (a ``host``
    fixture, the lab, a host made inside the test). The pytest plugin keeps one
    open for the run; a script can use it as a context manager::

        with TranscriptWatch() as watch:
            await lab.run_on_all_hosts("uptime")
            for transcript, entries in watch.take():
                ...
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: transcript -> its count before the first entry not taken yet
        self._moved_since: dict[Transcript, int] = {}
        self._open = False

    def open(self) -> TranscriptWatch:
        """Start watching every transcript of the process (idempotent)."""
        global _watches
        with _watches_lock:
            if not self._open:
                _watches = (*_watches, self)
                self._open = True
        return self

    def close(self) -> None:
        """Stop watching (idempotent); what was seen can still be taken."""
        global _watches
        with _watches_lock:
            if self._open:
                _watches = tuple(w for w in _watches if w is not self)
                self._open = False

    def _moved(self, transcript: Transcript, before: int) -> None:
        with self._lock:
            self._moved_since.setdefault(transcript, before)

    def take(self) -> list[tuple[Transcript, list[TranscriptEntry]]]:
        """The transcripts that recorded something since the last take, with those entries.

        In the order each first recorded something; as many entries as each still keeps.
        """
        with self._lock:
            moved, self._moved_since = self._moved_since, {}
        taken = [(transcript, transcript.since(mark)) for transcript, mark in moved.items()]
        return [(transcript, entries) for transcript, entries in taken if entries]

    def __enter__(self) -> TranscriptWatch:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
