"""What a host ran: command, output, exit code, duration; secrets masked.

The pytest plugin shows these in reports, but they are a library feature: a
script can read ``host.transcript`` too.

A transcript is for reading what happened, not for keeping output: the caller
has each result's full output. So its memory is bounded whatever the volume:
each entry keeps the head and the tail of its command and output (`KEEP_HEAD`,
`KEEP_TAIL`: where a command says what it does and how it failed), and a host's
transcript keeps at most `DEFAULT_BUDGET` characters of them, forgetting its
oldest entries first.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
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

#: Characters a transcript keeps of the start and of the end of each output (and command).
KEEP_HEAD = 4096
KEEP_TAIL = 4096
#: Characters of commands and outputs one transcript keeps in all (about 2 MiB to 8 MiB).
DEFAULT_BUDGET = 2 * 1024 * 1024


def clip(text: str, head: int = KEEP_HEAD, tail: int = KEEP_TAIL) -> str:
    """``text``, or its first ``head`` and last ``tail`` characters around a note of what went."""
    if len(text) <= head + tail:
        return text
    left = text[:head]
    right = text[len(text) - tail :] if tail else ""
    return f"{left}\n[... {len(text) - head - tail} characters not kept ...]\n{right}"


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
        """Human-readable block for reports: at most ``max_output`` characters of the
        output, half from its start and half from its end."""
        output = clip(self.output, max_output // 2, max_output - max_output // 2)
        if self.finished:
            end = f"{self.status.name} (exit {self.retcode}, {self.duration:.3f}s)"
        else:
            end = f"UNFINISHED (still running after {self.duration:.3f}s when it was stopped; output so far)"
        head = f"[{self.host_id}:{self.session}] {self.kind} {self.command!r} -> {end}"
        return f"{head}\n{output}" if output else head


class Transcript:
    """A bounded, thread-safe log of a host's commands.

    At most ``max_entries`` entries and ``budget`` characters of their commands and
    outputs (each clipped to its head and tail, see `clip`); the oldest go first.
    """

    def __init__(self, max_entries: int = 10000, budget: int = DEFAULT_BUDGET) -> None:
        self._entries: deque[TranscriptEntry] = deque()
        self._max_entries = max_entries
        self._budget = budget
        self._chars = 0  # of the kept entries' commands and outputs
        self._count = 0
        self._lock = threading.Lock()

    def append(self, entry: TranscriptEntry) -> None:
        """Record ``entry``, clipped (and tell every open `TranscriptWatch` this transcript moved)."""
        command, output = clip(entry.command), clip(entry.output)
        if command is not entry.command or output is not entry.output:
            entry = replace(entry, command=command, output=output)
        with self._lock:
            before = self._count
            self._entries.append(entry)
            self._chars += _size(entry)
            while len(self._entries) > 1 and (
                self._chars > self._budget or len(self._entries) > self._max_entries
            ):
                self._chars -= _size(self._entries.popleft())
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
            self._chars = 0


def _size(entry: TranscriptEntry) -> int:
    return len(entry.command) + len(entry.output)


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
