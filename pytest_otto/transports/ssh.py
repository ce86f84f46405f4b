"""SSH over asyncssh: one shared connection per host, and the shell-channel transport.

`SshConnection` owns the host's single asyncssh connection. The default shell,
every named session, every ``oneshot`` and every SFTP transfer open their own
*channel* on it. It is opened lazily under a lock (concurrent first calls make
exactly one connection, published only once it is fully up, pitfall 6), checked
for liveness before reuse and replaced when closed (pitfall 8), bounded by the
host's ``connect_timeout`` as a whole, kept alive with SSH keepalives so a dead
peer is noticed, and retried with backoff when sshd drops it during the handshake
(``MaxStartups``, pitfall 11).

OpenSSH refuses the 11th session channel of one connection (``MaxSessions 10``)
instead of queueing it, so channels are budgeted (`ChannelBudget`): a channel
waits for a free slot, and a refusal below the budget lowers it to what the
server really allows.

`SshShellTransport` is the persistent shell's channel; it only moves bytes
(framing is `pytest_otto.session`'s). By default it is the user's shell started
the way ``ssh host command`` starts one (an exec channel on pipes, the environment
of a non-interactive shell, as testinfra or Ansible see it): no pty to allocate, no
login scripts, output in full-size SSH packets instead of a pty's 4 KiB pieces.
A timeout then interrupts with a channel ``signal`` request, which OpenSSH (7.9+)
delivers to the shell's whole process group: the command gets SIGINT, the shell
runs a no-op trap and lives on, background jobs (which a non-interactive shell
starts with SIGINT ignored) are left alone: what Ctrl-C on a terminal does. A
command that ignores SIGINT gets SIGQUIT the same way (the shell traps it too).
``pty=True`` gives the user's login shell on a pty instead, for devices or
programs that need a terminal.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from ..errors import HostConnectionError
from ..timeouts import format_seconds
from ._asyncssh import asyncssh
from .base import ByteSink, Transport

__all__ = [
    "DEFAULT_MAX_SESSIONS",
    "ChannelBudget",
    "SshConnection",
    "SshOptions",
    "PREFERRED_CIPHERS",
    "PREFERRED_KEX",
    "SHELL_ON_PIPES",
    "SshShellTransport",
    "describe_ssh_error",
    "is_connection_error",
]

log = logging.getLogger("pytest_otto")

#: Channels used at once on one connection: OpenSSH's default ``MaxSessions``.
DEFAULT_MAX_SESSIONS = 10
#: Keepalives missed before a connection counts as dead.
KEEPALIVE_COUNT_MAX = 3
#: Bounded exponential backoff between handshake retries (seconds).
RETRY_BASE_DELAY = 0.05
RETRY_MAX_DELAY = 1.0
#: Bound on closing one channel or the connection.
CLOSE_TIMEOUT = 2.0

#: What a connection lost during the handshake looks like (sshd's MaxStartups drop).
_HANDSHAKE_LOST: tuple[type[BaseException], ...] = (
    asyncssh.ConnectionLost,
    ConnectionResetError,
    BrokenPipeError,
    asyncio.IncompleteReadError,
)

#: Channel-open failure codes OpenSSH uses when MaxSessions is reached.
_REFUSED = (asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, asyncssh.OPEN_CONNECT_FAILED)

HOST_KEY_POLICIES = ("strict", "accept-new", "off")

#: asyncssh's default ciphers with AES-GCM first. Both AEAD families are sound;
#: asyncssh builds several ChaCha20 contexts per packet in Python, while AES-GCM is
#: one call into OpenSSL (AES-NI): per-command latency and bulk throughput are both
#: better. Servers that lack AES-GCM still negotiate the rest.
PREFERRED_CIPHERS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
)


def preferred_kex_algs(defaults: list[str] | None = None) -> tuple[str, ...]:
    """asyncssh's default key exchanges with ``ecdh-sha2-nistp256`` moved ahead of curve25519.

    Both are sound classical exchanges, but OpenSSH's sshd (9.x) computes
    curve25519 with its own portable reference code and P-256 with OpenSSL: at
    100 hosts connecting at once on a small machine, the servers' handshake CPU is
    what the fan-out waits for, and P-256 cuts it by 13-25%. Everything
    asyncssh lists before curve25519 (GSS, the post-quantum hybrids) keeps its place.
    """
    if defaults is None:
        from asyncssh.kex import get_default_kex_algs

        defaults = [alg.decode("ascii") for alg in get_default_kex_algs()]
    algs = list(defaults)
    if "ecdh-sha2-nistp256" in algs and "curve25519-sha256" in algs:
        algs.remove("ecdh-sha2-nistp256")
        algs.insert(algs.index("curve25519-sha256"), "ecdh-sha2-nistp256")
    return tuple(algs)


#: The key exchanges offered, in order (see `preferred_kex_algs`).
PREFERRED_KEX = preferred_kex_algs()


def is_connection_error(exc: BaseException) -> bool:
    """True for errors that mean the SSH connection (not one command) failed."""
    return isinstance(exc, (asyncssh.DisconnectError, OSError, EOFError)) or (
        isinstance(exc, asyncssh.ChannelOpenError) and exc.code == asyncssh.OPEN_CONNECT_FAILED
    )


def describe_ssh_error(exc: BaseException) -> str:
    """A one-line cause for an asyncssh or socket error (never contains secrets)."""
    if isinstance(exc, asyncssh.DisconnectError):
        return f"{type(exc).__name__}: {exc.reason}" if exc.reason else type(exc).__name__
    if isinstance(exc, asyncssh.ChannelOpenError):
        return f"channel open failed: {exc.reason}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    text = str(exc) or type(exc).__name__
    return text if type(exc).__name__ in text else f"{type(exc).__name__}: {text}"


#: What a channel refusal means, by its code: sshd answers only "open failed".
_REFUSAL_CAUSES = {
    # OpenSSH refuses a session beyond MaxSessions this way; raised only with none of ours open
    asyncssh.OPEN_CONNECT_FAILED: "sshd refused it while no other channel of ours was open (MaxSessions 0?)",
    asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED: "sshd refused it (administratively prohibited: MaxSessions 0, "
    "or a Match block that forbids it?)",
    asyncssh.OPEN_REQUEST_PTY_FAILED: "sshd refused a terminal (PermitTTY no?); use pty = false here",
    asyncssh.OPEN_REQUEST_SESSION_FAILED: "sshd refused to start the shell or command (ForceCommand, "
    "a restricted shell?)",
    asyncssh.OPEN_RESOURCE_SHORTAGE: "the server is short of resources",
}

#: ... and when a hop refuses to forward our connection.
_HOP_REFUSAL_CAUSES = {
    asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED: "the hop refused to forward it (administratively prohibited: "
    "DisableForwarding or AllowTcpForwarding no in its sshd_config?)",
    asyncssh.OPEN_CONNECT_FAILED: "the hop could not connect to it",
}


def describe_channel_refusal(exc: asyncssh.ChannelOpenError, *, via_hop: bool = False) -> str:
    """Why the server (or a hop) refused a channel, with the setting that usually causes it."""
    causes = _HOP_REFUSAL_CAUSES if via_hop else _REFUSAL_CAUSES
    cause = causes.get(exc.code)
    return f"{cause} [{exc.reason}]" if cause else exc.reason


def _known_hosts_pattern(address: str, port: int) -> str:
    return address if port == 22 else f"[{address}]:{port}"


@dataclass(frozen=True)
class SshOptions:
    """Where and how to log in; ``password`` is a callable so it is revealed at connect time only."""

    address: str
    port: int = 22
    user: str | None = None
    password: Callable[[], str | None] = lambda: None
    key: Path | None = None
    host_key_check: str = "accept-new"
    known_hosts: Path | None = None
    agent: bool = True
    keepalive_interval: float = 15.0
    #: From the user's ssh config, used when the lab names no ``key`` / no ``hop``.
    identity_files: tuple[Path, ...] = ()
    proxy_jump: str | None = None
    ssh_config: Path | None = None  # the file the jump host of ``proxy_jump`` is read from

    def __repr__(self) -> str:  # no password callable, no secrets
        return (
            f"SshOptions({self.user or ''}@{self.address}:{self.port}, host_key_check={self.host_key_check})"
        )

    @property
    def known_hosts_path(self) -> Path:
        """The known_hosts file the policy reads and (accept-new) appends to."""
        return (self.known_hosts or Path("~/.ssh/known_hosts")).expanduser()


class ChannelsHeld(Exception):
    """Every channel of the connection is held by a shell that stays open: none will free up."""


class ChannelBudget:
    """How many channels may be open at once on one connection; waiters queue in order.

    Oneshots and transfers give their slot back within their timeout; session
    shells keep theirs until closed. Once shells hold every slot, waiting is
    pointless: `acquire` raises `ChannelsHeld` at once, and so do those waiting.
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.used = 0
        self.lasting = 0  # slots held by session shells
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def acquire(self, lasting: bool = False) -> None:
        """Take a slot, waiting in line while all are in use (`ChannelsHeld` if shells hold all)."""
        if self.lasting >= self.limit:
            raise ChannelsHeld(self._held_message())
        if self.used < self.limit and not self._waiters:
            self.used += 1
            self._hold(lasting)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.release()  # granted, but our caller gave up: hand it on
            else:
                try:
                    self._waiters.remove(waiter)
                except ValueError:
                    pass
            raise
        self._hold(lasting)

    def _hold(self, lasting: bool) -> None:
        if not lasting:
            return
        self.lasting += 1
        if self.lasting >= self.limit:  # those in line would wait for ever
            while self._waiters:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.set_exception(ChannelsHeld(self._held_message()))

    def _held_message(self) -> str:
        return (
            f"all {self.limit} channels of the connection are held by open sessions"
            " (sshd's MaxSessions); close one, or use fewer named sessions"
        )

    def release(self, lasting: bool = False) -> None:
        """Give a slot back (exactly once per `acquire`, with the same ``lasting``)."""
        self.used -= 1
        if lasting:
            self.lasting -= 1
        self._wake()

    def lower(self, limit: int) -> None:
        """The server refused a channel below our limit: believe it."""
        if limit < self.limit:
            log.info("ssh: server refused a channel; lowering the channel budget to %d", max(1, limit))
            self.limit = max(1, limit)

    def _wake(self) -> None:
        while self._waiters and self.used < self.limit:
            waiter = self._waiters.popleft()
            if waiter.done():
                continue
            self.used += 1
            waiter.set_result(None)


class _Live:
    """One established connection and the budget of its channels."""

    __slots__ = ("budget", "conn")

    def __init__(self, conn: asyncssh.SSHClientConnection, budget: ChannelBudget) -> None:
        self.conn = conn
        self.budget = budget


class Channel:
    """A session channel holding one budget slot; `release` it once closed."""

    def __init__(
        self, live: _Live, chan: asyncssh.SSHClientChannel[bytes] | None, session: Any, lasting: bool = False
    ) -> None:
        self.conn = live.conn
        self.chan = chan
        self.session = session
        self.lasting = lasting
        self._budget: ChannelBudget | None = live.budget

    def send_signal(self, name: str) -> None:
        """Ask sshd to signal the channel's process group (OpenSSH 7.9+ uses ``killpg``).

        Raises ``ConnectionResetError`` if the channel or its connection is gone.
        """
        if self.chan is None:
            raise ConnectionResetError("SSH channel is not open")
        try:
            self.chan.send_signal(name)
        except (asyncssh.Error, BrokenPipeError, OSError) as exc:
            raise ConnectionResetError(f"SSH channel is closed: {describe_ssh_error(exc)}") from None

    def release(self) -> None:
        """Return the slot (idempotent)."""
        budget, self._budget = self._budget, None
        if budget is not None:
            budget.release(self.lasting)

    async def close(self) -> None:
        """Close the channel (bounded, never raises) and return its slot."""
        try:
            if self.chan is not None:
                self.chan.close()
                await asyncio.wait_for(self.chan.wait_closed(), CLOSE_TIMEOUT)
        except Exception:
            log.debug("ssh: closing a channel failed", exc_info=True)
        finally:
            self.release()


#: The private keys ``ssh`` tries when none is named, in ``~/.ssh``.
DEFAULT_KEY_NAMES = ("id_ed25519", "id_ecdsa", "id_rsa")


def _default_key_files() -> list[Path]:
    return [p for p in (Path("~/.ssh", name).expanduser() for name in DEFAULT_KEY_NAMES) if p.is_file()]


def _encrypted_key_hint(key: Path | None) -> str:
    """Why the ``key`` file could not help: it needs a passphrase (and was skipped)."""
    if key is None:
        return ""
    try:
        asyncssh.read_private_key(key.expanduser())
    except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as exc:
        if "passphrase" in str(exc).lower():
            return f"; key file {key} needs a passphrase: load it into ssh-agent (ssh-add) to use it"
    except (OSError, ValueError):
        pass
    return ""


def auth_methods_tried(options: SshOptions, password_given: bool) -> list[str]:
    """The ways a login could have authenticated, for the message when none worked."""
    agent = options.agent and os.environ.get("SSH_AUTH_SOCK")
    return [m for m, on in (("key", options.key), ("password", password_given), ("agent", agent)) if on]


def connect_error_cause(
    exc: BaseException, *, where: str, hop: str, tried: list[str], key: Path | None
) -> str | None:
    """What a failed ``asyncssh.connect`` means, in words for a `HostConnectionError`.

    None for a handshake the server dropped (its caller retries those, sshd's
    MaxStartups) and for what is no connect failure at all (it propagates).
    """
    if isinstance(exc, asyncssh.PermissionDenied):
        methods = ", ".join(tried) or "default keys"
        return f"authentication failed for {where} (tried {methods}): {exc.reason}{_encrypted_key_hint(key)}"
    if isinstance(exc, _HANDSHAKE_LOST):
        return None
    if isinstance(exc, asyncssh.ChannelOpenError):  # the hop could not reach us
        return f"cannot reach {where} through {hop}: {describe_channel_refusal(exc, via_hop=True)}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection to {where} refused"
    if isinstance(exc, OSError):
        return f"cannot reach {where}: {describe_ssh_error(exc)}"
    if isinstance(exc, asyncssh.Error):
        return f"{where}: {describe_ssh_error(exc)}"
    if isinstance(exc, ValueError):  # bad key file, bad option values
        return f"{where}: {exc}"
    return None


@dataclass(frozen=True)
class _KnownKeys:
    """What known_hosts holds for one host: its keys, CA keys and revoked keys."""

    host_keys: list[Any]
    ca_keys: list[Any]
    revoked: list[Any]


class SshConnection:
    """The one lazily opened asyncssh connection of a host, shared by all its channels.

    All methods run on the otto loop. ``tunnel`` returns the hop's connection
    (for ``hop`` chains) or is ``None`` for a direct TCP connection.
    """

    def __init__(
        self,
        host_id: str,
        options: SshOptions,
        *,
        connect_timeout: Callable[[], float],
        tunnel: Callable[[], Awaitable[asyncssh.SSHClientConnection]] | None = None,
        hop_id: str | None = None,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
    ) -> None:
        if options.host_key_check not in HOST_KEY_POLICIES:
            raise ValueError(
                f"{host_id}: host_key_check must be one of {', '.join(HOST_KEY_POLICIES)},"
                f" not {options.host_key_check!r}"
            )
        self.host_id = host_id
        self.options = options
        self.max_sessions = max_sessions
        self._connect_timeout = connect_timeout
        self._tunnel = tunnel
        self.hop_id = hop_id
        self._waiting_on = ""  # who a connect in progress waits for, for a timeout's message
        self._live: _Live | None = None
        self._lock = asyncio.Lock()
        self._attempts_ended = 0  # counted when an attempt ends: see _get_live
        self._closes = 0  # close() calls: a channel opening across one does not reconnect
        self._last_error: HostConnectionError | None = None

    @property
    def where(self) -> str:
        """``user@address:port`` for messages (``[::1]:22`` for an IPv6 address)."""
        user = f"{self.options.user}@" if self.options.user else ""
        address = self.options.address
        if ":" in address:
            address = f"[{address}]"
        return f"{user}{address}:{self.options.port}"

    def stall_hint(self) -> str:
        """Who a channel being opened waits for: the hop, the server, or a free channel."""
        if self._waiting_on:
            return f"; no answer from {self._waiting_on}"
        live = self._live
        if live is None or live.conn.is_closed():
            return ""
        if live.budget.used >= live.budget.limit:
            return f"; connected, but all {live.budget.limit} channels of the connection stayed in use"
        return "; connected, but the server did not open a session channel"

    @property
    def is_connected(self) -> bool:
        """True while an established connection is cached and not closed."""
        return self._live is not None and not self._live.conn.is_closed()

    # -- getting the connection -------------------------------------------------------

    async def _get_live(self) -> _Live:
        live = self._live
        if live is not None and not live.conn.is_closed():
            return live
        # Counted at the end of an attempt, not its start: a caller arriving while an
        # attempt runs must wait for that attempt's verdict, not for the next one's.
        ended_before = self._attempts_ended
        async with self._lock:
            live = self._live
            if live is not None and not live.conn.is_closed():
                return live
            if live is not None:  # closed by the peer, a keepalive timeout, a dead hop...
                log.info("%s: SSH connection to %s was closed; reconnecting", self.host_id, self.where)
                self._live = None
                live.conn.abort()
            if self._attempts_ended != ended_before and self._last_error is not None:
                # An attempt that was running or queued when we arrived just failed:
                # share its verdict instead of making every concurrent caller wait out
                # a connect timeout of its own.
                raise HostConnectionError(self.host_id, self._last_error.cause)
            self._last_error = None  # a cancelled attempt leaves no verdict to share
            try:
                conn = await self._connect()
            except HostConnectionError as exc:
                self._last_error = exc
                raise
            finally:
                self._attempts_ended += 1
            self._last_error = None
            live = self._live = _Live(conn, ChannelBudget(self.max_sessions))
            return live

    async def get(self) -> asyncssh.SSHClientConnection:
        """The live connection, connecting (once, for all callers) if needed."""
        return (await self._get_live()).conn

    async def open_channel(
        self,
        session_factory: Callable[[], Any],
        *,
        deadline: float = math.inf,
        lasting: bool = False,
        **kwargs: Any,
    ) -> Channel:
        """Open a session channel within the budget (queueing for a slot).

        ``lasting``: a session shell, which keeps its slot until closed.
        Raises `HostConnectionError` if the connection cannot be made or is lost, or
        if open sessions hold every channel; ``TimeoutError`` (saying which) if
        ``deadline`` passes while waiting for a slot or for the server to open the
        channel (a hung server keeps the TCP connection until keepalives give up, a
        minute by default).
        """
        retried_dead = False
        refusals = 0
        closes = self._closes
        while True:
            if closes != self._closes:
                # close() ran while this call waited (for the connect, say): reconnecting
                # would leave a connection open after close() returned
                raise HostConnectionError(
                    self.host_id, f"connection to {self.where} was closed (close() was called)"
                )
            live = await self._get_live()
            await self._acquire(live.budget, deadline, lasting)
            try:
                opening = live.conn.create_session(session_factory, **kwargs)
                if math.isinf(deadline):
                    chan, session = await opening
                else:
                    try:
                        chan, session = await asyncio.wait_for(opening, max(deadline - time.monotonic(), 0))
                    except TimeoutError:
                        raise TimeoutError("the server did not open a channel") from None
            except TimeoutError:
                live.budget.release(lasting)
                raise
            except asyncssh.ChannelOpenError as exc:
                others = live.budget.used - 1
                live.budget.release(lasting)
                if exc.code in _REFUSED and others > 0 and not live.conn.is_closed():
                    # MaxSessions: sshd frees a closed session a moment after the close
                    # handshake; retry shortly, and believe a lower limit if it persists.
                    refusals += 1
                    if refusals > 4:
                        live.budget.lower(others)
                        refusals = 0
                    else:
                        await asyncio.sleep(min(0.2, 0.01 * 2**refusals))
                    continue
                if live.conn.is_closed() and not retried_dead:
                    retried_dead = True
                    continue
                raise HostConnectionError(
                    self.host_id, f"{self.where}: cannot open a channel: {describe_channel_refusal(exc)}"
                ) from None
            except BaseException as exc:
                live.budget.release(lasting)
                if isinstance(exc, Exception) and is_connection_error(exc):
                    if live.conn.is_closed() and not retried_dead:
                        retried_dead = True  # a connection that died just now is replaced once
                        continue
                    raise HostConnectionError(
                        self.host_id, f"connection to {self.where} lost: {describe_ssh_error(exc)}"
                    ) from None
                raise
            return Channel(live, chan, session, lasting)

    async def _acquire(self, budget: ChannelBudget, deadline: float, lasting: bool = False) -> None:
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise TimeoutError("waiting for a free SSH channel")
            if math.isinf(remaining):
                await budget.acquire(lasting)
                return
            try:
                await asyncio.wait_for(budget.acquire(lasting), remaining)
            except TimeoutError:
                raise TimeoutError("waiting for a free SSH channel") from None
        except ChannelsHeld as exc:
            raise HostConnectionError(self.host_id, f"{self.where}: {exc}") from None

    async def channel_slot(self, deadline: float = math.inf) -> tuple[asyncssh.SSHClientConnection, Channel]:
        """A budget slot without a channel, for SFTP (which opens its own channel)."""
        live = await self._get_live()
        await self._acquire(live.budget, deadline)
        return live.conn, Channel(live, None, None)

    # -- connecting ----------------------------------------------------------------------

    async def _connect(self) -> asyncssh.SSHClientConnection:
        timeout = self._connect_timeout()
        deadline = time.monotonic() + timeout
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                if math.isinf(remaining):
                    return await self._connect_once(math.inf)
                return await asyncio.wait_for(self._connect_once(remaining), remaining)
            except TimeoutError:
                # worded as the session's own connect timeout, which usually fires first
                hint = self.stall_hint() or f"; no answer from {self.where}"
                raise HostConnectionError(
                    self.host_id, f"connect timed out after {format_seconds(timeout)}s{hint}"
                ) from None
            except _HANDSHAKE_LOST as exc:
                # sshd drops connections beyond MaxStartups right after accept: retry.
                attempt += 1
                delay = min(RETRY_MAX_DELAY, RETRY_BASE_DELAY * 2**attempt) * random.uniform(0.5, 1.0)
                if time.monotonic() + delay >= deadline:
                    raise HostConnectionError(
                        self.host_id,
                        f"connection to {self.where} lost during the handshake"
                        f" ({attempt} attempts): {describe_ssh_error(exc)}",
                    ) from None
                log.debug("%s: handshake with %s lost (%s); retrying", self.host_id, self.where, exc)
                await asyncio.sleep(delay)

    def _known_hosts_arg(self) -> tuple[Any, bool, _KnownKeys | None]:
        """What to pass as ``known_hosts``, whether to record a new key afterwards, and what
        the file says of this host (the file is read and parsed once per connect)."""
        opts = self.options
        if opts.host_key_check == "off":
            return None, False, None
        known = self._load_known_hosts()
        match = self._known_match(known)
        if match is None and opts.host_key_check == "accept-new":
            return None, True, None  # unknown host: accept and remember its key
        return known if known is not None else asyncssh.import_known_hosts(""), False, match

    def _known_hosts_text(self) -> str:
        path = self.options.known_hosts_path
        try:
            return path.read_text()
        except FileNotFoundError:
            return ""
        except OSError as exc:  # a folder, no permission: say it is the known_hosts setting
            raise HostConnectionError(
                self.host_id, f"cannot read known_hosts {path}: {exc.strerror or exc}"
            ) from None

    def _load_known_hosts(self) -> asyncssh.SSHKnownHosts | None:
        """The known_hosts file, parsed; None when it is missing or empty."""
        text = self._known_hosts_text()
        if not text.strip():
            return None
        try:
            return asyncssh.import_known_hosts(text)
        except (ValueError, asyncssh.KeyImportError) as exc:
            raise HostConnectionError(
                self.host_id, f"cannot read known_hosts {self.options.known_hosts_path}: {exc}"
            ) from None

    def _known_match(self, known: asyncssh.SSHKnownHosts | None) -> _KnownKeys | None:
        """What known_hosts says of this address and port, or None if it names it nowhere.

        A host listed only as ``@revoked`` is known too: accept-new must not take
        (and record) a key the file refuses.
        """
        if known is None:
            return None
        opts = self.options
        host_keys, ca_keys, revoked = known.match(opts.address, opts.address, opts.port)[:3]
        if not (host_keys or ca_keys or revoked):
            return None
        return _KnownKeys(list(host_keys), list(ca_keys), list(revoked))

    def _host_key_algs(self, known: _KnownKeys | None) -> list[str] | None:
        """Host key algorithms to offer: those of the known keys first, then all others.

        asyncssh offers only the known keys' algorithms, so a device that now has a key
        of another type drops the handshake ("no matching host key type"), which looks
        like sshd's MaxStartups and was retried for the whole connect timeout. Offering
        the rest after them keeps the known key whenever the server still has it, and
        otherwise gets the new key, which is then reported as changed.
        """
        if known is None or not known.host_keys or known.ca_keys:
            return None  # nothing to prefer, or certificates: asyncssh's choice
        first = list(dict.fromkeys(alg for key in known.host_keys for alg in key.sig_algorithms))
        rest = [alg for alg in asyncssh.public_key.get_default_public_key_algs() if alg not in first]
        return [alg.decode() for alg in first + rest]

    def _record_host_key(self, conn: asyncssh.SSHClientConnection) -> None:
        key = conn.get_server_host_key()
        if key is None:
            return
        key_type, key_data = key.export_public_key("openssh").decode().split()[:2]
        line = f"{_known_hosts_pattern(self.options.address, self.options.port)} {key_type} {key_data}\n"
        path = self.options.known_hosts_path
        text = self._known_hosts_text()
        if line in text.splitlines(keepends=True):
            return  # another host to the same address recorded it meanwhile
        if text and not text.endswith("\n"):
            line = "\n" + line  # a file written by hand may lack its last newline
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with path.open("a") as handle:
                handle.write(line)
        except OSError as exc:
            log.warning("%s: could not record the host key in %s: %s", self.host_id, path, exc)
            return
        log.info("%s: added the host key of %s to %s", self.host_id, self.where, path)

    def _host_key_error(self, exc: BaseException) -> HostConnectionError:
        opts = self.options
        path = opts.known_hosts_path
        target = _known_hosts_pattern(opts.address, opts.port)
        known = self._known_match(self._load_known_hosts())
        if known is not None and known.revoked and "revoked" in str(exc).lower():
            return HostConnectionError(
                self.host_id,
                f"host key for {opts.address}:{opts.port} is marked @revoked in {path}; it is refused",
            )
        if known is not None:
            return HostConnectionError(
                self.host_id,
                f"host key for {opts.address}:{opts.port} changed (it does not match {path});"
                f" this may be a reinstalled device or an attack. If expected, remove the old"
                f" entry with `ssh-keygen -f {path} -R '{target}'` and connect again",
            )
        return HostConnectionError(
            self.host_id,
            f"host key for {opts.address}:{opts.port} is not in {path} (host_key_check=strict);"
            f" add it (e.g. `ssh-keyscan -p {opts.port} {opts.address} >> {path}`) or use"
            f" host_key_check='accept-new' ({describe_ssh_error(exc)})",
        )

    def _connect_options(
        self, remaining: float, known_hosts: Any, host_key_algs: list[str] | None
    ) -> dict[str, Any]:
        """``asyncssh.connect``'s keyword arguments for this host (a missing key file is an error)."""
        opts = self.options
        kwargs: dict[str, Any] = {
            "port": opts.port,
            "known_hosts": known_hosts,
            "keepalive_interval": opts.keepalive_interval or 0,
            "keepalive_count_max": KEEPALIVE_COUNT_MAX,
            "password": opts.password(),
            "config": None,  # the lab file is the contract, not ~/.ssh/config
            "encryption_algs": PREFERRED_CIPHERS,
            "kex_algs": PREFERRED_KEX,
        }
        if host_key_algs is not None:
            kwargs["server_host_key_algs"] = host_key_algs
        if not math.isinf(remaining):
            kwargs["connect_timeout"] = remaining
            kwargs["login_timeout"] = remaining
        if opts.user:
            kwargs["username"] = opts.user
        if opts.key is not None:
            key = opts.key.expanduser()
            if not key.is_file():
                what = "is not a file" if key.exists() else "does not exist"
                raise HostConnectionError(self.host_id, f"{self.where}: key file {key} {what}")
            # As ``ssh -i``: this key, then the default ones. A passphrase-protected
            # file is skipped (its key may be in the agent) and named if login fails.
            kwargs["client_keys"] = [str(key), *(str(k) for k in _default_key_files() if k != key)]
            kwargs["ignore_encrypted"] = True
        elif opts.identity_files:  # the ssh config's IdentityFile, as ssh uses it
            kwargs["client_keys"] = [str(k) for k in opts.identity_files if k.is_file()]
            kwargs["ignore_encrypted"] = True
        if not opts.agent:
            kwargs["agent_path"] = None
        return kwargs

    async def _connect_once(self, remaining: float) -> asyncssh.SSHClientConnection:
        opts = self.options
        known_hosts, record, known = self._known_hosts_arg()
        kwargs = self._connect_options(remaining, known_hosts, self._host_key_algs(known))
        hop = f"hop {self.hop_id!r}" if self.hop_id else "the hop"
        if self._tunnel is not None:
            self._waiting_on = f"{hop} (its own connect)"
            try:
                kwargs["tunnel"] = await self._tunnel()
            except HostConnectionError as exc:
                raise HostConnectionError(self.host_id, f"via hop {exc}") from None
        elif opts.proxy_jump:  # the ssh config's ProxyJump: asyncssh connects it, reading
            kwargs["tunnel"] = opts.proxy_jump  # the jump host's settings from the same file
            kwargs["config"] = [str(opts.ssh_config)] if opts.ssh_config else None
        try:
            self._waiting_on = f"{self.where} (TCP connect, key exchange or login)"
            if self._tunnel is not None:  # the hop's connection may be the one that hangs
                self._waiting_on += f" through {hop}, itself connected"
            conn = await asyncssh.connect(opts.address, **kwargs)
        except (asyncssh.HostKeyNotVerifiable, asyncssh.KeyExchangeFailed) as exc:
            if opts.host_key_check == "off":
                raise HostConnectionError(self.host_id, f"{self.where}: {describe_ssh_error(exc)}") from None
            raise self._host_key_error(exc) from None
        except Exception as exc:
            tried = auth_methods_tried(opts, bool(kwargs.get("password")))
            cause = connect_error_cause(exc, where=self.where, hop=hop, tried=tried, key=opts.key)
            if cause is None:  # a handshake lost is retried by the caller; anything else is a bug
                raise
            raise HostConnectionError(self.host_id, cause) from None
        self._waiting_on = ""  # kept when cancelled: the timeout's message names the step
        if record:
            self._record_host_key(conn)
        log.debug("%s: connected to %s", self.host_id, self.where)
        return conn

    async def close(self) -> None:
        """Close the connection (bounded, never raises); the next `get` reconnects."""
        self._closes += 1
        async with self._lock:
            live, self._live = self._live, None
            self._last_error = None
        if live is None:
            return
        try:
            live.conn.close()
            await asyncio.wait_for(live.conn.wait_closed(), CLOSE_TIMEOUT)
        except Exception:
            log.debug("%s: closing the SSH connection failed", self.host_id, exc_info=True)
            live.conn.abort()


class _ShellSession(asyncssh.SSHClientSession[bytes]):
    """Pushes what the shell channel reads into the transport's sink."""

    def __init__(self, transport: SshShellTransport) -> None:
        self._transport = transport

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self._transport._feed(data)

    def exit_status_received(self, status: int) -> None:
        self._transport._exit_status = status

    def exit_signal_received(self, signal: str, core_dumped: bool, msg: str, lang: str) -> None:
        self._transport._exit_reason = f"killed by signal {signal}"

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport._ended(exc)

    def pause_writing(self) -> None:
        self._transport._writable.clear()

    def resume_writing(self) -> None:
        self._transport._writable.set()


#: The exec request that starts the shell on pipes: the user's own shell, which
#: then reads commands from the channel.
SHELL_ON_PIPES = 'exec "${SHELL:-/bin/sh}"'

#: Most bytes handed to the shell's channel before waiting for it to drain.
WRITE_PIECE = 64 * 1024


class SshShellTransport(Transport):
    """The user's shell on a channel of the host's shared connection (pipes, or a pty)."""

    def __init__(
        self,
        connection: SshConnection,
        *,
        pty: bool = False,
        term_type: str = "dumb",
        line_limit: int | None = None,
    ) -> None:
        super().__init__()
        self._connection = connection
        self.tty = pty
        self.term_type = term_type
        self.line_limit = line_limit
        self._channel: Channel | None = None
        self._exit_status: int | None = None
        self._exit_reason = ""
        self._eof_sent = False
        self._closed = False
        self._writable = asyncio.Event()
        self._writable.set()

    def stall_hint(self) -> str:
        """The connect's step, or the channel that sshd did not open."""
        return self._connection.stall_hint() if self._channel is None else ""

    async def open(self, sink: ByteSink) -> None:
        """Open the shell's channel (waiting for a channel slot if all are busy)."""
        self.sink = sink
        shell: dict[str, Any] = (
            # wide: tools that fit output to the tty (ps) keep whole lines
            {"term_type": self.term_type, "term_size": (4096, 50)}
            if self.tty
            else {"command": SHELL_ON_PIPES}
        )
        self._channel = await self._connection.open_channel(
            lambda: _ShellSession(self), encoding=None, lasting=True, **shell
        )

    def _feed(self, data: bytes) -> None:
        if self.sink is not None and not self._eof_sent:
            self.sink.feed(data)

    def _ended(self, exc: Exception | None) -> None:
        self._closed = True
        self._writable.set()
        if self._channel is not None:
            self._channel.release()
        if self._eof_sent or self.sink is None:
            return
        self._eof_sent = True
        if exc is not None:
            self.sink.feed_eof(None, f"connection lost: {describe_ssh_error(exc)}")
        else:
            self.sink.feed_eof(self._exit_status, self._exit_reason or "channel closed")

    def _hand_over(self, data: bytes | memoryview) -> None:
        """Give ``data`` to the channel (asyncssh buffers it); a closed one is an error."""
        channel = self._channel
        if channel is None or channel.chan is None or self._closed:
            raise ConnectionResetError("SSH shell channel is closed")
        try:
            channel.chan.write(cast("bytes", data))  # any bytes-like object: a piece of a memoryview
        except (asyncssh.Error, BrokenPipeError) as exc:
            raise ConnectionResetError(f"SSH shell channel is closed: {describe_ssh_error(exc)}") from None

    def write_nowait(self, data: bytes) -> int:
        """Hand up to `WRITE_PIECE` bytes of ``data`` to the channel unless it is backed up."""
        if self._channel is not None and not self._closed and not self._writable.is_set():
            return 0
        piece = data[:WRITE_PIECE]
        self._hand_over(piece)
        return len(piece)

    async def write(self, data: bytes) -> None:
        """Write ``data`` a piece at a time, each once the channel has taken the last.

        asyncssh buffers whatever it is given; handing over everything at once would
        hold a shell's unread input in memory and let ``send()`` return while the
        shell reads nothing. Pieces keep the wait, and its bound, here.
        """
        view = memoryview(data)
        for start in range(0, len(view), WRITE_PIECE):
            await self._writable.wait()
            self._hand_over(view[start : start + WRITE_PIECE])
        await self._writable.wait()
        if self._closed:
            raise ConnectionResetError("SSH shell channel closed")

    async def interrupt(self) -> None:
        """Ctrl-C on a pty; on pipes, SIGINT to the shell's process group."""
        if self.tty:
            await super().interrupt()
        else:
            self._signal("INT")

    can_kill_foreground = True

    async def kill_foreground(self, since: float = -math.inf) -> bool:
        """SIGQUIT for a command that ignores Ctrl-C (a REPL, ``trap '' INT``).

        On a pty Ctrl-\\ sends it to the foreground job (the shell ignores it); on
        pipes a ``signal`` request sends it to the shell's process group, where the
        shell's trap keeps the shell, and its cwd and variables, alive.
        """
        if self.tty:
            await self.write(b"\x1c")
        else:
            self._signal("QUIT")
        return True

    def _signal(self, name: str) -> None:
        channel = self._channel
        if channel is None or self._closed:
            raise ConnectionResetError("SSH shell channel is closed")
        channel.send_signal(name)

    async def close(self) -> None:
        """Hang up: the shell and its jobs get SIGHUP, as on a terminal that goes away.

        On a pty sshd's hang-up does it; on pipes a ``signal`` request to the
        process group does, before the channel closes.
        """
        if not self.tty and not self._closed:
            try:
                self._signal("HUP")
            except ConnectionResetError:
                pass
        channel, self._channel = self._channel, None
        self._closed = True
        self._writable.set()
        if channel is not None:
            await channel.close()
