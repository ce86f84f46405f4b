"""A transcript's memory is bounded whatever the output volume (issue 20.3).

The same bound against a real server, with the process's memory measured:
`test_faults.test_binary_floods_leave_memory_flat`.
"""

from __future__ import annotations

from pytest_otto import Status
from pytest_otto.transcript import KEEP_HEAD, KEEP_TAIL, Transcript, TranscriptEntry, clip


def entry(command: str, output: str) -> TranscriptEntry:
    return TranscriptEntry("h", "s", "run", command, output, Status.Success, 0, 0.0, 0.0)


def test_each_entry_keeps_the_head_and_tail_of_its_output_and_command() -> None:
    transcript = Transcript()
    output = "H" * KEEP_HEAD + "m" * 1_000_000 + "T" * KEEP_TAIL
    transcript.append(entry("x" * 100_000, output))
    (kept,) = transcript
    assert kept.output.startswith("H" * KEEP_HEAD + "\n[... 1000000 characters not kept ...]\n")
    assert kept.output.endswith("\n" + "T" * KEEP_TAIL) and "m" not in kept.output
    assert len(kept.command) < KEEP_HEAD + KEEP_TAIL + 100
    assert clip("short") == "short"


def test_a_transcript_keeps_a_budget_of_characters_forgetting_the_oldest() -> None:
    transcript = Transcript(budget=100_000)
    mark = transcript.mark()
    for i in range(100):
        transcript.append(entry(f"c{i}", "o" * 20_000))  # clipped to 8 KiB each
    kept = list(transcript)
    assert sum(len(e.command) + len(e.output) for e in kept) <= 100_000
    assert kept[-1].command == "c99" and len(kept) == 100_000 // len(kept[-1].output)
    assert [e.command for e in transcript.since(mark)] == [e.command for e in kept]


def test_the_latest_entry_is_kept_even_alone_over_the_budget() -> None:
    transcript = Transcript(budget=10)
    transcript.append(entry("first", "a" * 50))
    transcript.append(entry("second", "b" * 50))
    assert [e.command for e in transcript] == ["second"]


def test_format_shows_the_start_and_the_end() -> None:
    text = entry("big", "S" * 3000 + "E" * 3000).format(max_output=4000)
    assert "S" * 2000 in text and "E" * 2000 in text and "[... 2000 characters not kept ...]" in text
