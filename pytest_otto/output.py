"""Collecting command output: bytes in, capped, decoded with replacement.

Every transport reads bytes and hands them here, so one binary byte can never
break a connection (pitfall 13) and one runaway command cannot eat the memory
of the test run: past ``max_output`` bytes the rest is counted, not kept, and the
text says so.
"""

from __future__ import annotations

__all__ = ["DEFAULT_MAX_OUTPUT", "OutputBuffer", "decode_output"]

#: Default cap on the bytes kept of one command's output (256 MiB).
DEFAULT_MAX_OUTPUT = 256 * 1024 * 1024


def decode_output(data: bytes | bytearray) -> str:
    """Decode shell output the way results show it.

    UTF-8 with replacement, ``\\r\\n`` folded to ``\\n``, trailing line endings dropped.
    """
    text = data.decode("utf-8", "replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    return text.rstrip("\r\n")


class OutputBuffer:
    """Keeps at most ``limit`` bytes and counts what it had to drop."""

    __slots__ = ("_data", "dropped", "limit")

    def __init__(self, limit: int = DEFAULT_MAX_OUTPUT) -> None:
        self._data = bytearray()
        self.limit = limit
        self.dropped = 0

    def append(self, chunk: bytes | bytearray | memoryview) -> None:
        """Add ``chunk``, keeping what fits under the cap."""
        room = self.limit - len(self._data)
        if room >= len(chunk):
            self._data += chunk
        else:
            if room > 0:
                self._data += chunk[:room]
            self.dropped += len(chunk) - max(room, 0)

    def __len__(self) -> int:
        return len(self._data)

    @property
    def raw(self) -> bytes:
        """The kept bytes."""
        return bytes(self._data)

    def text(self) -> str:
        """Decoded text, with a visible note when output was truncated."""
        text = decode_output(self._data)
        if self.dropped:
            text += (
                f"\n[pytest-otto: output truncated: {self.dropped} more bytes were not kept;"
                f" max_output is {self.limit} bytes]"
            )
        return text
