"""Whole-file SFTP transfers: a file appears under its name complete, or not at all.

``put`` writes to a hidden temporary name beside the destination and renames it
over the destination once every byte is there (``posix-rename@openssh.com``, atomic
on the server); ``get`` does the same on the local side. A transfer that fails or
is cancelled removes its temporary file, so a full disk never leaves a truncated
file under the real name.

SFTP version 3, which OpenSSH speaks, has no status code for a full disk: the
server says only ``Failure``. When a write fails that way, the free space of the
destination (``statvfs@openssh.com``) tells whether the disk filled up, and the
error says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import secrets
from pathlib import Path

from ._asyncssh import asyncssh

__all__ = ["get_file", "put_file"]

#: Bound on removing a temporary file after a failure (also when the transfer was cancelled).
CLEANUP_TIMEOUT = 2.0


def partial_name(name: str) -> str:
    """The hidden temporary name a transfer of ``name`` writes to."""
    return f".{name}.{secrets.token_hex(4)}.otto-partial"


async def put_file(sftp: asyncssh.SFTPClient, src: Path, remote_dir: str) -> None:
    """Copy local ``src`` into ``remote_dir`` (content, mode, times), all or nothing.

    An `OSError` names the cause when the server's answer does not (a full disk).
    """
    if remote_dir not in ("", "."):
        await sftp.makedirs(remote_dir, exist_ok=True)
    dest = posixpath.join(remote_dir, src.name)
    partial = posixpath.join(remote_dir, partial_name(src.name))
    try:
        # follow_symlinks: a link's content, as cp does
        await sftp.put(str(src), partial, preserve=True, follow_symlinks=True)
        await _replace(sftp, partial, dest)
    except asyncssh.SFTPFailure as exc:
        cause = await _full_disk(sftp, remote_dir, src.stat().st_size)
        await _remove_remote(sftp, partial)
        raise OSError(cause or exc.reason) from None
    except BaseException:
        await _remove_remote(sftp, partial)
        raise


async def get_file(sftp: asyncssh.SFTPClient, remote: str, dest_dir: Path) -> None:
    """Copy ``remote`` into local ``dest_dir`` (content, mode, times), all or nothing."""
    name = posixpath.basename(remote)
    partial = dest_dir / partial_name(name)
    try:
        await sftp.get(remote, str(partial), preserve=True, follow_symlinks=True)
        os.replace(partial, dest_dir / name)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


async def _replace(sftp: asyncssh.SFTPClient, partial: str, dest: str) -> None:
    """Rename ``partial`` over ``dest``: atomically where the server can, else remove then rename."""
    try:
        await sftp.posix_rename(partial, dest)
    except asyncssh.SFTPOpUnsupported:
        with contextlib.suppress(asyncssh.SFTPNoSuchFile):
            await sftp.remove(dest)
        await sftp.rename(partial, dest)


async def _full_disk(sftp: asyncssh.SFTPClient, remote_dir: str, size: int) -> str | None:
    """``"no space left on device ..."`` when ``remote_dir`` has less room than ``size`` bytes."""
    try:
        fs = await asyncio.wait_for(sftp.statvfs(remote_dir or "."), CLEANUP_TIMEOUT)
    except (asyncssh.Error, OSError, TimeoutError):
        return None
    free = fs.bavail * fs.frsize
    if free >= size:
        return None
    where = remote_dir or "the home directory"
    return f"no space left on device ({free} bytes free in {where}, {size} needed)"


async def _remove_remote(sftp: asyncssh.SFTPClient, path: str) -> None:
    """Remove a temporary file, bounded; never raises (it runs while another error is handled)."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(sftp.remove(path), CLEANUP_TIMEOUT)
