"""Local shells die with the process that started them, however it ends.

A local shell leads a session of its own (see `pytest_otto.transports.local`), so
nothing of pytest's reaches it, and its ``close`` kills every process of that
session. A process that ends without closing (``os._exit``, as pytest-timeout's
``thread`` method does, or SIGKILL) would leave the shell and its running command
behind: a shell on pipes sees the end of its input only once the command is done.

So the first local session starts one small watcher process (its own session,
no imports beyond the standard library's ``os`` and ``sys``), told over a pipe which
sessions are open. Only this process holds the pipe's write end (close-on-exec):
when it ends, in whatever way, the watcher reads the end of its input and kills
every process of each session still open. A session closed normally is taken off
the watcher's list first.
"""

from __future__ import annotations

import os
import sys
import threading

__all__ = ["forget_session", "watch_session"]

#: The watcher: reads ``+SID`` / ``-SID`` lines; at the end of its input, SIGKILLs every
#: process of each session still listed (a session is found in /proc, field 6 of stat).
_WATCHER = r"""
import os, sys
sids = set()
for line in sys.stdin.buffer:
    sid = int(line[1:])
    (sids.add if line[:1] == b"+" else sids.discard)(sid)
for entry in os.listdir("/proc") if sids else ():
    try:
        with open("/proc/" + entry + "/stat", "rb") as f:
            stat = f.read()
        if int(stat[stat.rfind(b")") + 2 :].split()[3]) in sids:
            os.kill(int(entry), 9)
    except (OSError, ValueError, IndexError):
        pass
"""

_lock = threading.Lock()
_pipe: int | None = None  # the write end of the watcher's input
_owner = 0  # the process that started the watcher (a forked child starts its own)


def _start() -> int | None:
    # posix_spawn, not Popen: a Popen object would warn (ResourceWarning) when collected
    # while its process runs, which this one does for as long as we do.
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        os.posix_spawn(
            sys.executable,
            [sys.executable, "-I", "-S", "-c", _WATCHER],
            {},
            file_actions=[
                (os.POSIX_SPAWN_DUP2, read_end, 0),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
            ],
            setsid=True,  # no signal meant for pytest's group reaches it
        )
    except OSError:
        os.close(write_end)
        return None  # no watcher: shells are still closed as usual
    finally:
        os.close(read_end)
    return write_end


def _tell(line: str) -> None:
    global _pipe, _owner
    with _lock:
        if _owner != os.getpid():  # first use, or a forked child: the parent's watcher is not ours
            _pipe, _owner = _start(), os.getpid()
        if _pipe is None:
            return
        try:
            os.write(_pipe, line.encode())  # a few bytes: a pipe takes them at once
        except OSError:
            pass


def watch_session(sid: int) -> None:
    """Kill session ``sid`` when this process ends, unless `forget_session` came first."""
    _tell(f"+{sid}\n")


def forget_session(sid: int) -> None:
    """Session ``sid`` was ended by its owner: leave it out at the end."""
    _tell(f"-{sid}\n")
