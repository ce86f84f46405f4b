"""pytest fixtures for the virtual boards of `testlab.boards` (QEMU on TCG).

``boards`` is a factory: ``boards("linux", console="telnet")`` starts a board (frozen
until ``power_on``; ``on=True`` switches it on at once) that is killed when the test
ends, whatever happened. Boards start lazily, per test, at most `MAX_BOARDS` at a time
on the machine; a test that cannot get a slot waits for one. A test runs one board at a
time (it may `remove()` one and start another): holding a slot while waiting for a
second, two tests could wait for each other until the slot timeout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from testlab._util import LabError
from testlab.boards import Board


@pytest.fixture
def boards() -> Iterator[Callable[..., Board]]:
    """Start boards for this test: ``boards(kind="linux", console="telnet", on=True)``."""
    started: list[Board] = []

    def start(kind: str = "linux", console: str = "telnet", on: bool = True, **options: object) -> Board:
        if any(board.running for board in started):
            # Holding a slot while waiting for another: two such tests (in two runs on
            # the machine) would each hold one of the slots and wait for the other's.
            raise LabError("a test runs one board at a time: remove() the one it has first")
        board = Board(kind, console=console, **options)  # type: ignore[arg-type]
        started.append(board)
        board.start()
        if on:
            board.power_on()
        return board

    try:
        yield start
    finally:
        for board in started:
            board.remove()
