"""What the virtual boards boot: Debian's kernel and a busybox initramfs, built once.

`scripts/install-system-deps` unpacks Debian's amd64 kernel package (without
installing it) into the boards' cache folder. This module builds the rest there,
once, and reuses it on later runs (keyed by the inputs' sizes and times):

- ``vmlinux``: the uncompressed ELF kernel taken out of the bzImage. QEMU starts it
  through its PVH entry, which saves the 4 s TCG spends decompressing a bzImage.
- ``initramfs.cpio.gz``: busybox with init, getty and login on the serial console
  (``ttyS0``), users ``root``/``board123`` and ``tester``/``test123``. Written by
  Python's own newc cpio writer, so the build needs neither cpio nor fakeroot.

Several processes (pytest-xdist workers, other test runs) may build at once; a file
lock makes one build and the others wait for it.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import io
import lzma
import os
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from testlab._util import LabError

__all__ = ["BOARD_USERS", "BoardImages", "boards_dir", "ensure_images"]

#: Logins of the boards' Linux: user -> password.
BOARD_USERS = {"root": "board123", "tester": "test123"}
BUSYBOX = Path("/bin/busybox")
#: Bump when what the initramfs holds changes, so caches are rebuilt.
_INITRAMFS_VERSION = "3"

_INIT = """#!/bin/busybox sh
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null || true
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
hostname board
echo "init: userspace up at $(cut -d' ' -f1 /proc/uptime)s uptime"
exec /sbin/init
"""

_INITTAB = """::sysinit:/bin/echo "inittab: sysinit done"
ttyS0::respawn:/bin/getty -L 115200 ttyS0 vt100
::ctrlaltdel:/bin/reboot
::shutdown:/bin/echo "inittab: shutting down"
::restart:/sbin/init
"""


def boards_dir() -> Path:
    """The boards' cache folder (``$OTTO_BOARDS_DIR``, default ``/var/cache/otto-boards``)."""
    return Path(os.environ.get("OTTO_BOARDS_DIR", "/var/cache/otto-boards"))


@dataclass(frozen=True)
class BoardImages:
    """Paths of what a board boots."""

    #: Debian's compressed kernel (a bzImage, for U-Boot's ``zboot``).
    bzimage: Path
    #: The uncompressed ELF kernel with its PVH entry (for QEMU's ``-kernel`` on ``-M pc``).
    vmlinux: Path
    initramfs: Path


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _stamp(*paths: Path) -> str:
    parts = [_INITRAMFS_VERSION]
    for path in paths:
        st = path.stat()
        parts.append(f"{path}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _fresh(target: Path, stamp: str) -> bool:
    marker = target.with_name(target.name + ".stamp")
    return target.exists() and marker.exists() and marker.read_text() == stamp


def _write_atomically(target: Path, data: bytes, stamp: str) -> None:
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(target)
    target.with_name(target.name + ".stamp").write_text(stamp)


def extract_vmlinux(bzimage: Path) -> bytes:
    """The ELF kernel inside Debian's XZ-compressed x86 bzImage."""
    data = bzimage.read_bytes()
    start = data.find(b"\xfd7zXZ\x00")
    if start < 0:
        raise LabError(f"{bzimage}: no XZ stream in the kernel image (not a Debian amd64 bzImage?)")
    out = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[start:])
    if out[:4] != b"\x7fELF":
        raise LabError(f"{bzimage}: the XZ stream is not an ELF kernel")
    return out


class _Cpio:
    """A newc-format cpio archive written in memory (what the kernel unpacks as initramfs)."""

    def __init__(self) -> None:
        self.out = io.BytesIO()
        self.ino = 1

    def _entry(self, name: str, mode: int, data: bytes = b"", uid: int = 0, gid: int = 0) -> None:
        fields = [self.ino, mode, uid, gid, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0]
        self.ino += 1
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        self.out.write(header + name.encode() + b"\0")
        self.out.write(b"\0" * (-(len(header) + len(name) + 1) % 4))
        self.out.write(data)
        self.out.write(b"\0" * (-len(data) % 4))

    def dir(self, name: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> None:
        self._entry(name, stat.S_IFDIR | mode, uid=uid, gid=gid)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return self.out.getvalue()


def _hash_password(password: str, salt: str) -> str:
    """A SHA-512 crypt hash, made by busybox (Python's ``crypt`` is gone in 3.13)."""
    result = subprocess.run(
        [str(BUSYBOX), "mkpasswd", "-m", "sha512", password, salt],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0 or not result.stdout.startswith("$6$"):
        raise LabError(f"busybox mkpasswd failed: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout.strip()


def build_initramfs(busybox: Path = BUSYBOX) -> bytes:
    """The gzipped initramfs: busybox, init, getty on ttyS0, two users."""
    applets = subprocess.run(
        [str(busybox), "--list"], capture_output=True, text=True, timeout=30, check=True
    ).stdout.split()
    cpio = _Cpio()
    folders = ("bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "root", "run", "var", "var/log", "home")
    for folder in folders:
        cpio.dir(folder, 0o1777 if folder == "tmp" else 0o755)
    cpio.dir("home/tester", 0o755, uid=1000, gid=1000)
    cpio.file("bin/busybox", busybox.read_bytes(), 0o755)
    for applet in applets:
        if applet != "busybox":
            cpio.symlink(f"bin/{applet}", "busybox")
    cpio.symlink("sbin/init", "../bin/busybox")
    cpio.file("init", _INIT.encode(), 0o755)
    cpio.file("etc/inittab", _INITTAB.encode())
    passwd = "root:x:0:0:root:/root:/bin/sh\ntester:x:1000:1000:tester:/home/tester:/bin/sh\n"
    cpio.file("etc/passwd", passwd.encode())
    cpio.file("etc/group", b"root:x:0:\ntester:x:1000:\n")
    shadow = "".join(
        f"{user}:{_hash_password(password, user + 'salt')}:19000:0:99999:7:::\n"
        for user, password in BOARD_USERS.items()
    )
    cpio.file("etc/shadow", shadow.encode(), 0o600)
    cpio.file("etc/issue", b"Virtual board (busybox initramfs) \\l\n\n")
    cpio.file("etc/profile", b"export PS1='\\u@\\h:\\w\\$ '\n")
    return gzip.compress(cpio.finish(), compresslevel=6, mtime=0)


def _kernel(folder: Path) -> Path:
    found = sorted((folder / "kimg" / "boot").glob("vmlinuz-*"))
    if not found:
        raise LabError(
            f"no kernel in {folder}/kimg/boot: run scripts/install-system-deps as root"
            " (it unpacks Debian's kernel package there)"
        )
    return found[-1]


def ensure_images(folder: Path | None = None) -> BoardImages:
    """Build (or reuse) the vmlinux and the initramfs; return where everything is."""
    folder = folder or boards_dir()
    bzimage = _kernel(folder)
    vmlinux = folder / "vmlinux"
    initramfs = folder / "initramfs.cpio.gz"
    with _locked(folder / ".build.lock"):
        stamp = _stamp(bzimage)
        if not _fresh(vmlinux, stamp):
            _write_atomically(vmlinux, extract_vmlinux(bzimage), stamp)
        stamp = _stamp(BUSYBOX)
        if not _fresh(initramfs, stamp):
            _write_atomically(initramfs, build_initramfs(), stamp)
    return BoardImages(bzimage=bzimage, vmlinux=vmlinux, initramfs=initramfs)
