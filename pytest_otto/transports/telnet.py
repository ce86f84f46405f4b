"""A minimal, correct telnet client on asyncio streams (RFC 854/855).

``telnetlib`` left the standard library in Python 3.13, and a console only needs a
little of the protocol: pass data through, answer option negotiation, and never
let an ``IAC`` sequence reach the shell's output. This client

- agrees to the server's ``WILL ECHO`` and ``WILL SGA`` (character-at-a-time, the
  server echoes: what every console server offers) and to ``DO SGA``; it refuses
  every other option (``WONT``/``DONT``), answering each request at most once per
  state change so two peers can never loop;
- strips ``IAC`` commands and subnegotiations (``SB ... SE``) from the data, keeps
  ``IAC IAC`` as one ``0xFF`` byte, turns ``CR NUL`` back into ``CR``;
- escapes ``0xFF`` as ``IAC IAC`` and a bare ``CR`` as ``CR NUL`` when writing;
- connects to one server one connection at a time, each after the server greeted the
  previous one: BusyBox telnetd's accept queue holds two, and a burst beyond that
  waits for the kernel's retransmissions (1 s, 3 s);
- acknowledges what it reads at once (`_ack_now`): telnet servers leave Nagle's
  algorithm on, so an answer written in two pieces would otherwise wait up to 40 ms
  for our delayed ACK before its second piece (the command's end marker) is sent.

Login, hand-over and shell-end detection are `ConsoleTransport`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import weakref

from .console import ConsoleTransport

__all__ = ["TelnetTransport"]

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
OPT_ECHO, OPT_SGA, OPT_NAWS = 1, 3, 31

#: Options we let the server enable (it echoes, no go-ahead).
_ACCEPT_REMOTE = frozenset({OPT_ECHO, OPT_SGA})
#: Options we enable ourselves when asked.
_ACCEPT_LOCAL = frozenset({OPT_SGA})

_BARE_CR = re.compile(rb"\r(?!\n)")

_DATA, _IAC, _OPT, _SB, _SB_IAC = range(5)

#: Linux's switch for sending the pending ACK now (None elsewhere: ACKs stay delayed).
_TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)

#: How long a connection that the server has not greeted yet holds back the next one to
#: the same server (a raw TCP port never greets).
SETUP_HOLD = 0.5

_setup_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, int], asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _setup_gate(address: str, port: int) -> asyncio.Lock:
    """One connection at a time being set up per server (on this event loop).

    BusyBox telnetd listens with a backlog of 1: a burst of connections (gathered
    oneshots) overflows its accept queue, the kernel drops a SYN or the handshake's
    last ACK, and the connection waits for a retransmission (1 s, then 3 s). Connecting
    only once the previous connection was greeted (accepted, its session set up) keeps
    our own burst from overflowing it.
    """
    gates = _setup_gates.setdefault(asyncio.get_running_loop(), {})
    return gates.setdefault((address, port), asyncio.Lock())


class TelnetTransport(ConsoleTransport):
    """A telnet connection to ``address:port`` with the console login on top."""

    #: Telnet servers open a session with their option negotiation.
    greets_on_connect = True

    def __init__(self, host_id: str, address: str, port: int = 23, **login: object) -> None:
        super().__init__(host_id, **login)  # type: ignore[arg-type]
        self.address = address
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._socket: socket.socket | None = None
        self._pump: asyncio.Task[None] | None = None
        self._state = _DATA
        self._verb = 0
        self._after_cr = False
        self._local: dict[int, bool] = {}
        self._remote: dict[int, bool] = {}
        #: ``(columns, rows)`` to tell the server (RFC 1073 NAWS); None: refuse NAWS, as a
        #: framed session wants (no size at all is what a pipe has).
        self.window_size: tuple[int, int] | None = None

    def set_window_size(self, size: tuple[int, int]) -> None:
        """Tell the server the terminal's size now and whenever it changes (``otto console``).

        Set it before connecting: servers ask ``DO NAWS`` in their greeting.
        """
        self.window_size = size
        if self._local.get(OPT_NAWS):
            self._send_window_size()

    def _send_window_size(self) -> None:
        writer = self._writer
        if self.window_size is None or writer is None or writer.is_closing():
            return
        columns, rows = (max(0, min(n, 0xFFFF)) for n in self.window_size)
        payload = bytes((columns >> 8, columns & 0xFF, rows >> 8, rows & 0xFF)).replace(b"\xff", b"\xff\xff")
        writer.write(bytes((IAC, SB, OPT_NAWS)) + payload + bytes((IAC, SE)))

    def describe(self) -> str:
        """``telnet address:port``."""
        return f"telnet {self.address}:{self.port}"

    @property
    def holds_line(self) -> bool:
        """True while the connection is open."""
        return self._writer is not None

    async def _connect(self) -> None:
        async with _setup_gate(self.address, self.port):
            self._reader, self._writer = await asyncio.open_connection(self.address, self.port)
            self._reached = True
            self._socket = self._writer.get_extra_info("socket") if _TCP_QUICKACK is not None else None
            self._pump = asyncio.get_running_loop().create_task(self._read_loop())
            await self._await_greeting(SETUP_HOLD)

    async def _read_loop(self) -> None:
        reader = self._reader
        assert reader is not None
        try:
            while True:
                chunk = await reader.read(1 << 16)
                if not chunk:
                    self._lost(f"{self.describe()} closed the connection")
                    return
                self._ack_now()
                self._heard()
                data = self._parse(chunk)
                if data:
                    self._received(data)
        except asyncio.CancelledError:
            raise
        except (OSError, EOFError) as exc:
            self._lost(f"{self.describe()}: {type(exc).__name__}: {exc}")

    def _ack_now(self) -> None:
        """Send the ACK of what was just read now, not after the delayed-ACK timer.

        A telnet server (BusyBox telnetd, a console server) writes the echo of a
        command and then its output as the pty hands them over; with Nagle's
        algorithm on its side, the later piece waits until the earlier one is
        acknowledged, and Linux delays that ACK up to 40 ms on an interactive
        connection. Measured on a loop of 944 commands of 212 bytes: 6-106 stalls of
        40 ms without this, none with it. One system call per read.
        """
        sock = self._socket
        if sock is not None and _TCP_QUICKACK is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)

    def _parse(self, chunk: bytes) -> bytes:
        """Split ``chunk`` into data (returned) and telnet commands (answered)."""
        out = bytearray()
        state = self._state
        for byte in chunk:
            if state == _DATA:
                if byte == IAC:
                    state = _IAC
                elif byte == 0 and self._after_cr:  # CR NUL is a bare CR
                    self._after_cr = False
                else:
                    out.append(byte)
                    self._after_cr = byte == 13
            elif state == _IAC:
                if byte == IAC:
                    out.append(IAC)
                    self._after_cr = False
                    state = _DATA
                elif byte in (DO, DONT, WILL, WONT):
                    self._verb = byte
                    state = _OPT
                elif byte == SB:
                    state = _SB
                else:  # NOP, GA, DM, AYT, ...: nothing to pass on
                    state = _DATA
            elif state == _OPT:
                self._negotiate(self._verb, byte)
                state = _DATA
            elif state == _SB:
                if byte == IAC:
                    state = _SB_IAC
            elif state == _SB_IAC:
                state = _DATA if byte == SE else _SB
        self._state = state
        return bytes(out)

    def _negotiate(self, verb: int, option: int) -> None:
        if verb in (WILL, WONT):
            wanted = verb == WILL and option in _ACCEPT_REMOTE
            if self._remote.get(option) is not wanted:
                self._remote[option] = wanted
                self._reply(DO if wanted else DONT, option)
        else:
            accepted = option in _ACCEPT_LOCAL or (option == OPT_NAWS and self.window_size is not None)
            wanted = verb == DO and accepted
            if self._local.get(option) is not wanted:
                self._local[option] = wanted
                self._reply(WILL if wanted else WONT, option)
                if wanted and option == OPT_NAWS:
                    self._send_window_size()

    def _reply(self, verb: int, option: int) -> None:
        writer = self._writer
        if writer is not None and not writer.is_closing():
            writer.write(bytes((IAC, verb, option)))

    @staticmethod
    def _escape(data: bytes) -> bytes:
        data = data.replace(b"\xff", b"\xff\xff")
        if b"\r" in data:  # a CR not followed by LF travels as CR NUL (RFC 854)
            data = _BARE_CR.sub(b"\r\x00", data)
        return data

    async def _send(self, data: bytes) -> None:
        writer = self._writer
        if writer is None or writer.is_closing():
            raise ConnectionResetError(f"{self.describe()} is closed")
        writer.write(self._escape(data))
        await writer.drain()

    async def interrupt(self) -> None:
        """Ctrl-C through the server's pty (the byte, not ``IAC IP``: every server passes it)."""
        await self.write(b"\x03")

    async def _hangup(self) -> None:
        writer, self._writer = self._writer, None
        self._socket = None
        pump, self._pump = self._pump, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
        if pump is not None:
            pump.cancel()
