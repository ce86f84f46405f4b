"""Leases as ``flock`` locks on one file per device in a directory of this machine.

The kernel drops a ``flock`` when its process dies, however it dies, so a crashed
run gives its devices back at once. The lock file also holds the holder (JSON),
for the messages of those who wait. Breaking a lease removes the file: the old
holder's lock then sits on a file nobody can open by its name, the next run makes
a new one, and the old holder's renewal finds its file gone (a lost lease).
"""

from __future__ import annotations

import errno
import fcntl
import os
import weakref
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from ..config import Secret
from .errors import LeaseStoreError
from .holder import Holder
from .store import LeaseInfo, Renewal

__all__ = ["FileStore", "default_directory"]

SUFFIX = ".lock"


def default_directory() -> Path:
    """``leases = "file"``: ``/tmp/otto-leases-<uid>`` (the runs of one user on this machine)."""
    return Path(os.environ.get("TMPDIR") or "/tmp") / f"otto-leases-{os.getuid()}"


def _directory(url: str) -> tuple[Path, bool]:
    """The directory a ``file`` URL names, and whether it is the private default."""
    if url == "file":
        return default_directory(), True
    parts = urlsplit(url)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost") or not parts.path:
        raise LeaseStoreError(None, None, None, f"lease store {url!r}: write file:///ABSOLUTE/DIR or file")
    return Path(unquote(parts.path)), False


#: Every store with locks held, so a child made by ``os.fork`` can drop its copies.
_stores: weakref.WeakSet[FileStore] = weakref.WeakSet()


def _close_in_child() -> None:
    """In a forked child: close the inherited lock files (the parent keeps its locks).

    A ``flock`` lives as long as any copy of its file is open: a child that outlives
    the run (``multiprocessing`` with fork, a daemon) would otherwise keep the device
    leased after the run died.
    """
    for store in list(_stores):
        for fd in store._fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        store._fds.clear()


os.register_at_fork(after_in_child=_close_in_child)


class FileStore:
    """One lock file per device, ``flock``-ed while held (see the module's docstring)."""

    expires = False

    def __init__(self, url: str, password: Secret | None = None) -> None:
        self.directory, self._private = _directory(url)
        self.url = url if url != "file" else f"file://{self.directory}"
        self._fds: dict[str, int] = {}
        _stores.add(self)

    def _prepare(self) -> None:
        try:
            self.directory.mkdir(mode=0o700 if self._private else 0o777, parents=True, exist_ok=True)
        except OSError as exc:
            raise LeaseStoreError(
                None, None, None, f"lease directory {self.url}: {exc.strerror or exc}"
            ) from None
        if self._private and self.directory.stat().st_uid != os.getuid():
            raise LeaseStoreError(
                None,
                None,
                None,
                f"lease directory {self.directory} belongs to another user; use leases = file:///DIR",
            )

    def path(self, device: str) -> Path:
        """The lock file of ``device``."""
        return self.directory / (quote(device, safe="") + SUFFIX)

    async def take(self, device: str, holder: Holder, ttl: float) -> Holder | None:
        self._prepare()
        path = self.path(device)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
                return _read_holder(path) or Holder.unknown()
            if _same_file(fd, path):  # else it was broken or released between open and flock
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.to_json().encode(), 0)
        self._fds[device] = fd
        return None

    async def take_many(self, devices: list[str], holder: Holder, ttl: float) -> dict[str, Holder | None]:
        return {device: await self.take(device, holder, ttl) for device in devices}

    async def release_many(self, devices: list[str], holder: Holder) -> None:
        for device in devices:
            await self.release(device, holder)

    async def renew(self, device: str, holder: Holder, ttl: float) -> Renewal:
        fd = self._fds.get(device)
        if fd is not None and _same_file(fd, self.path(device)):
            return Renewal(held=True)
        # Files are only removed by break_lease: a new file is a later holder's, or empty.
        other = _read_holder(self.path(device))
        if fd is None and other is not None and other.token == holder.token:
            return Renewal(held=True)  # another process of the run holds the lock (xdist)
        if other is not None and other.token != holder.token:
            return Renewal(held=False, other=other)
        return Renewal(held=False, broken=True)

    async def release(self, device: str, holder: Holder) -> None:
        fd = self._fds.pop(device, None)
        if fd is None:
            return
        try:
            if _same_file(fd, self.path(device)):
                os.ftruncate(fd, 0)  # still ours: the next reader sees no stale holder
        finally:
            _unlock_and_close(fd)

    async def holders(self) -> list[LeaseInfo]:
        found: list[LeaseInfo] = []
        try:
            names = sorted(os.listdir(self.directory))
        except FileNotFoundError:
            return found
        for name in names:
            if not name.endswith(SUFFIX):
                continue
            device = unquote(name[: -len(SUFFIX)])
            holder = _read_holder(self.directory / name) if self._busy(device) else None
            if holder is not None:
                found.append(LeaseInfo(device, holder))
        return found

    def _busy(self, device: str) -> bool:
        if device in self._fds:
            return True
        try:
            fd = os.open(self.path(device), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    async def break_lease(self, device: str) -> Holder | None:
        path = self.path(device)
        holder = _read_holder(path) if self._busy(device) else None
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        return holder

    async def close(self) -> None:
        for device in list(self._fds):
            _unlock_and_close(self._fds.pop(device))


def _unlock_and_close(fd: int) -> None:
    """Drop the lock itself, then the file: a forked child not yet past its at-fork
    hook still holds a copy of the file, and closing ours alone would leave it locked."""
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    """The open ``fd`` is still the file at ``path`` (not removed or replaced)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


def _read_holder(path: Path) -> Holder | None:
    """The holder written in a lock file; None when empty or gone (being taken or released)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return Holder.from_json(data) if data.strip() else None
