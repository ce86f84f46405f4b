"""The test lab's virtual boards themselves: started frozen, switched by QMP, gone when stopped."""

from __future__ import annotations

import os
import socket

import pytest

from testlab._util import LabError
from testlab.board_images import ensure_images
from testlab.boards import Board


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            state = handle.read().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in (b"Z", b"X")


def test_images_are_built_once_and_reused():
    first = ensure_images()

    def stamps(images):
        return [p.with_name(p.name + ".stamp").stat().st_mtime_ns for p in (images.vmlinux, images.initramfs)]

    before = stamps(first)
    second = ensure_images()
    assert second == first
    assert stamps(second) == before  # nothing rebuilt
    assert first.vmlinux.read_bytes()[:4] == b"\x7fELF"


def test_a_board_starts_frozen_and_leaves_nothing_behind():
    board = Board("uboot", console="tcp")
    try:
        board.start()
        assert board.status() == "prelaunch"  # switched off: nothing ran yet
        pid = board._proc.pid
        with socket.create_connection((board.address, board.port), timeout=10) as console:
            console.settimeout(30)
            board.power_on()
            seen = b""
            while b"Hit any key to stop autoboot" not in seen:
                chunk = console.recv(4096)
                assert chunk, seen
                seen += chunk
        board.freeze()
        assert board.status() == "paused"
    finally:
        board.remove()
    assert not _alive(pid)
    assert not board.running and not board.qmp_path.exists()
    with pytest.raises(OSError):  # the console port is closed
        socket.create_connection((board.address, board.port), timeout=2).close()
    assert not os.path.exists(board.log_path)


def test_a_test_runs_one_board_at_a_time(boards):
    """A second board while the first runs would hold one slot and wait for another: two
    such tests (in two runs on the machine) waited for each other until the slot timeout."""
    first = boards("linux", console="tcp", on=False)
    with pytest.raises(LabError, match="one board at a time"):
        boards("linux", console="tcp", on=False)
    first.remove()
    second = boards("linux", console="tcp", on=False)
    assert second.running and not first.running
