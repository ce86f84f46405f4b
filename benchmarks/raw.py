"""The baselines: what a minimal program does directly on asyncssh or bash.

Each is the shortest honest way to get the job done, written the way a
developer would without pytest-otto: no framing beyond a sentinel, no timeouts,
no recovery. pytest-otto's figures are divided by these.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncssh

from .servers import USER, Endpoint

__all__ = [
    "GCM",
    "MARKER",
    "BashLoop",
    "ShellLoop",
    "connect",
    "exec_loop",
    "exec_throughput",
    "gather_fanout",
]

#: Terminal settings of the pty variant: the same line discipline pytest-otto sets up.
PTY_SETUP = (
    b"stty -echo -icanon min 1 time 0 -opost -icrnl -inlcr -ixon -iexten 2>/dev/null; PS1=''; PS2=''; "
)

#: The sentinel the minimal persistent-shell loops print after each command.
MARKER = b"__BENCH_DONE__ "


#: The cipher pytest-otto prefers, for like-for-like baselines (info rows): the
#: main baselines keep asyncssh's defaults, which a program written directly on
#: asyncssh gets.
GCM = ("aes128-gcm@openssh.com",)


async def connect(
    ep: Endpoint, key: Path, ciphers: Sequence[str] | None = None
) -> asyncssh.SSHClientConnection:
    """One asyncssh connection + public-key login as the bench user (no host key check).

    ``ciphers``: asyncssh's defaults (chacha20-poly1305 first) unless given.
    """
    options = {"encryption_algs": list(ciphers)} if ciphers else {}
    return await asyncssh.connect(
        ep.address,
        ep.port,
        username=USER,
        client_keys=[str(key)],
        known_hosts=None,
        agent_path=None,
        config=[],
        **options,
    )


async def gather_fanout(
    endpoints: Sequence[Endpoint],
    key: Path,
    command: str = "echo hi",
    ciphers: Sequence[str] | None = None,
) -> float:
    """Cold fan-out baseline: ``asyncio.gather`` of connect + auth + ``conn.run`` on every host.

    Returns the seconds until every host answered; connections are closed after
    the clock stops.
    """

    async def one(ep: Endpoint) -> asyncssh.SSHClientConnection:
        conn = await connect(ep, key, ciphers)
        result = await conn.run(command, check=True)
        assert result.stdout.strip() == "hi", result
        return conn

    t0 = time.perf_counter()
    conns = await asyncio.gather(*(one(ep) for ep in endpoints))
    elapsed = time.perf_counter() - t0
    for conn in conns:
        conn.close()
    await asyncio.gather(*(conn.wait_closed() for conn in conns))
    return elapsed


class _SentinelLoop:
    """``cmd; echo MARKER $?`` on a shell whose ``stdin``/``stdout`` streams ``proc`` holds."""

    proc: Any = None

    async def command(self, command: str) -> int:
        """Run one command, return its exit code."""
        assert self.proc is not None
        self.proc.stdin.write(command.encode() + b"; echo " + MARKER + b"$?\n")
        await self.proc.stdout.readuntil(MARKER)
        return int(await self.proc.stdout.readline())

    async def loop(self, count: int, command: str = "true") -> float:
        """Seconds per command over ``count`` sequential commands."""
        t0 = time.perf_counter()
        for _ in range(count):
            await self.command(command)
        return (time.perf_counter() - t0) / count


class ShellLoop(_SentinelLoop):
    """Minimal persistent shell on ONE asyncssh shell channel: ``cmd; echo MARKER $?``.

    ``pty=False`` (the baseline) runs the user's shell on pipes; ``pty=True``
    requests a terminal like pytest-otto does, to show what the pty costs.
    """

    def __init__(self, conn: asyncssh.SSHClientConnection, pty: bool = False) -> None:
        self.conn = conn
        self.pty = pty
        self.proc: asyncssh.SSHClientProcess | None = None

    async def open(self) -> ShellLoop:
        """Open the shell channel and wait until it answers once."""
        if self.pty:
            self.proc = await self.conn.create_process(encoding=None, term_type="dumb")
            # Echo is on until stty runs: sync on a line only the shell's expansion prints.
            self.proc.stdin.write(PTY_SETUP + b"echo SYNC_$((6*7))\n")
            await self.proc.stdout.readuntil(b"SYNC_42\n")
        else:
            self.proc = await self.conn.create_process(encoding=None)
        await self.command("true")
        return self

    async def throughput(self, nbytes: int) -> float:
        """MB/s of one command printing ``nbytes`` through this shell channel."""
        assert self.proc is not None
        self.proc.stdin.write(
            b"{ " + throughput_command(nbytes).encode() + b"; } </dev/null; echo " + MARKER + b"$?\n"
        )
        t0 = time.perf_counter()
        total, tail = 0, b""
        while MARKER not in tail or not tail.endswith(b"\n"):
            chunk = await self.proc.stdout.read(1 << 20)
            if not chunk:
                raise EOFError("shell channel closed")
            total += len(chunk)
            tail = (tail + chunk)[-64:]
        elapsed = time.perf_counter() - t0
        assert total >= nbytes, total
        return nbytes / elapsed / 1e6

    def close(self) -> None:
        """Close the channel."""
        if self.proc is not None:
            self.proc.close()


class BashLoop(_SentinelLoop):
    """The same sentinel loop on a local ``bash`` over pipes (asyncio subprocess)."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None

    async def open(self) -> BashLoop:
        """Start bash and wait until it answers once."""
        self.proc = await asyncio.create_subprocess_exec(
            "bash",
            "--norc",
            "--noprofile",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        await self.command("true")
        return self

    async def close(self) -> None:
        """Stop bash."""
        if self.proc is not None:
            if self.proc.returncode is None:
                self.proc.kill()
            await self.proc.wait()


async def exec_loop(conn: asyncssh.SSHClientConnection, count: int, command: str = "true") -> float:
    """Seconds per ``conn.run(command)`` (one exec channel each) over ``count`` sequential calls."""
    t0 = time.perf_counter()
    for _ in range(count):
        await conn.run(command, check=True)
    return (time.perf_counter() - t0) / count


def throughput_command(nbytes: int) -> str:
    """A command printing exactly ``nbytes`` bytes of text (64-byte lines)."""
    return f"yes 0123456789abcdef0123456789abcdef0123456789abcdef0123456789a | head -c {nbytes}"


async def exec_throughput(conn: asyncssh.SSHClientConnection, nbytes: int) -> float:
    """MB/s of one ``conn.run`` collecting ``nbytes`` of output as bytes."""
    t0 = time.perf_counter()
    result = await conn.run(throughput_command(nbytes), encoding=None, check=True)
    elapsed = time.perf_counter() - t0
    assert len(result.stdout) == nbytes, len(result.stdout)
    return nbytes / elapsed / 1e6
