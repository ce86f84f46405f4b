"""`LeaseSet`: the leases of some hosts' devices, taken together and held together.

Taken in one global order (sorted device names), so two runs wanting overlapping
sets cannot deadlock; renewed by the lease thread while held, independent of
what the hosts are doing; released together on every exit path. A lease found
lost fences its hosts: every later call on them raises `LeaseLost` before
anything is sent, and their open shells are hung up without a word (no logout).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING

from .. import loop
from . import thread
from .errors import LeaseError, LeaseLost, LeaseStoreError
from .holder import Holder, this_holder
from .settings import LeaseSettings
from .store import LeaseStore, open_store

if TYPE_CHECKING:
    from ..hosts.base import Host

__all__ = ["LeaseSet"]

log = logging.getLogger("pytest_otto.leases")

#: Longest pause between two tries of a busy device (the first pauses are shorter).
POLL_MAX = 1.0
#: Bound of each step of a release (stop renewing, give back, close the store): a
#: store that does not answer must not hold the run; its leases expire by themselves.
RELEASE_STEP = 10.0

#: A report line for the user (the plugin prints it; scripts log it).
Report = Callable[[str], None]


@dataclass(eq=False)
class _Held:
    """One device's lease held by this process; shared by nested `LeaseSet`s."""

    device: str
    store: LeaseStore
    holder: Holder
    ttl: float
    confirmed: float = field(default_factory=time.monotonic)  #: last time the store said it is ours
    lost: LeaseLost | None = None
    users: int = 1
    owner: LeaseSet | None = None
    #: Held by another process of this run (the xdist controller): watched, never released here.
    adopted: bool = False

    def stale(self) -> bool:
        """Not confirmed for half the TTL: someone may have it by now (we were frozen or cut off)."""
        return self.store.expires and time.monotonic() - self.confirmed > self.ttl / 2


#: (store URL, device) -> the lease this process holds on it.
_held: dict[tuple[str, str], _Held] = {}


def _hosts_named(hosts: list[str]) -> str:
    return f"host {hosts[0]}" if len(hosts) == 1 else f"hosts {', '.join(hosts)}"


class LeaseSet:
    """The leases of ``hosts``' devices (hosts that are not leased are skipped).

    Use it as ``async with`` or ``with`` (`pytest_otto.Lab.lease` makes one). By
    default every device must be obtained within ``wait`` seconds, else
    `LeaseError` naming the holder; ``partial=True`` keeps what was obtained and
    records the others in `failed`. ``any=N`` takes any N free devices instead.
    """

    def __init__(
        self,
        devices: Mapping[str, str | None],
        settings: LeaseSettings,
        *,
        wait: float | None = None,
        any: int | None = None,
        partial: bool = False,
        report: Report | None = None,
        hosts: Iterable[Host] = (),
    ) -> None:
        self.settings = settings
        self.wait = settings.wait if wait is None else float(wait)
        self.any = any
        self.partial = partial
        self.report: Report = report or (lambda line: log.warning("%s", line))
        #: device -> host ids, for the devices that are leased
        self.devices: dict[str, list[str]] = {}
        for host_id, device in devices.items():
            if device is not None and not settings.off:
                self.devices.setdefault(device, []).append(host_id)
        if any is not None and not 1 <= any <= len(self.devices):
            raise ValueError(f"cannot lease any {any} of {len(self.devices)} leased devices")
        self.holder = this_holder()
        #: host id -> why its device was not obtained
        self.failed: dict[str, LeaseError] = {}
        self._hosts = {h.id: h for h in hosts}
        self._leases: dict[str, _Held] = {}
        self._store: LeaseStore | None = None
        self._renewal: asyncio.Task[None] | None = None
        self._released = False  # renewing stops at its next turn, even if a cancel got lost
        self._on_lost: list[Callable[[str, LeaseLost], None]] = []

    def __repr__(self) -> str:
        return f"<LeaseSet {', '.join(self._leases) or 'none held'} in {self.settings.store}>"

    # -- what is held ----------------------------------------------------------

    @property
    def obtained(self) -> list[str]:
        """Host ids whose devices this set holds, in lease order."""
        return [h for device in self._leases for h in self.devices[device]]

    def error(self, host_id: str) -> LeaseError | None:
        """Why ``host_id`` may not be used: its device was not obtained, or its lease was lost."""
        if host_id in self.failed:
            return self.failed[host_id]
        for device, held in self._leases.items():
            if held.lost is not None and host_id in self.devices[device]:
                return _lost_for(held.lost, host_id)
        return None

    def on_lost(self, callback: Callable[[str, LeaseLost], None]) -> None:
        """Call ``callback(host_id, error)`` (on the lease thread) for each host of a lost lease."""
        self._on_lost.append(callback)

    # -- context manager -----------------------------------------------------------

    async def __aenter__(self) -> LeaseSet:
        await self.acquire()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.release()

    def __enter__(self) -> LeaseSet:
        self.acquire_sync()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release_sync()

    async def acquire(self) -> LeaseSet:
        """Take the leases (waiting up to ``wait``); see the class docstring."""
        await thread.call(self._acquire())
        return self

    def acquire_sync(self) -> LeaseSet:
        """Blocking twin of `acquire`."""
        thread.run(self._acquire())
        return self

    async def release(self) -> None:
        """Give every lease back (only those still ours); the hosts may be used freely again."""
        await thread.call(self._release())

    def release_sync(self) -> None:
        """Blocking twin of `release`."""
        thread.run(self._release())

    # -- on the lease thread ---------------------------------------------------------

    async def _acquire(self) -> None:
        if not self.devices:
            return
        self._store = open_store(self.settings.store, self.settings.password)
        try:
            if self.any is not None:
                await self._take_any(self.any)
            else:
                await self._take_all()
            if not self.partial and self.failed:
                raise next(iter(self.failed.values()))
        except BaseException:
            await self._release()
            raise
        self._attach()
        if any(held.owner is self for held in self._leases.values()):
            self._start_renewing()

    async def adopt(self, holder: Holder, host_ids: list[str]) -> None:
        """Use leases another process of this run took for ``holder`` (pytest-xdist workers).

        Nothing is taken or released here; the leases are watched, so a loss still
        fences the hosts of this process.
        """
        await thread.call(self._adopt(holder, host_ids))

    def adopt_sync(self, holder: Holder, host_ids: list[str]) -> None:
        """Blocking twin of `adopt`."""
        thread.run(self._adopt(holder, host_ids))

    async def _adopt(self, holder: Holder, host_ids: list[str]) -> None:
        self.holder = holder
        self._store = open_store(self.settings.store, self.settings.password)
        for device, hosts in self.devices.items():
            if set(hosts) & set(host_ids):
                self._leases[device] = _Held(
                    device, self._store, holder, self.settings.ttl, owner=self, adopted=True
                )
        self._attach()
        if self._leases:
            self._start_renewing()

    async def _take_all(self) -> None:
        deadline = time.monotonic() + self.wait
        order = sorted(self.devices)
        for device in order[await self._take_free_prefix(order) :]:
            other = await self._wait_for(device, deadline)
            if other is not None:
                hosts = self.devices[device]
                cause = (
                    f"device {device!r} is leased by {other.describe()}; "
                    f"not free after waiting {self.wait:g}s (lease_wait)"
                )
                for host_id in hosts:
                    self.failed[host_id] = LeaseError(host_id, device, other, cause)

    async def _take_free_prefix(self, order: list[str]) -> int:
        """Try every device at once (one round trip); keep the ones before the first busy one.

        Holding only devices that sort before the one we wait for keeps the global
        order, so two runs wanting overlapping sets still cannot deadlock. Returns how
        many of ``order`` are now held.
        """
        assert self._store is not None
        todo = [d for d in order if (self._store.url, d) not in _held]
        found = await self._store.take_many(todo, self.holder, self.settings.ttl) if todo else {}
        count = 0
        for device in order:
            if device not in found:
                await self._take(device)  # held by another set of this process: shared
            elif found[device] is None:
                self._keep(device)
            else:
                break
            count += 1
        extra = [d for d in order[count:] if d in found and found[d] is None]
        await self._store.release_many(extra, self.holder)
        return count

    def _keep(self, device: str) -> None:
        assert self._store is not None
        held = _Held(device, self._store, self.holder, self.settings.ttl, owner=self)
        _held[(self._store.url, device)] = self._leases[device] = held

    async def _wait_for(self, device: str, deadline: float) -> Holder | None:
        """Take ``device``, waiting until ``deadline``; None when taken, else its holder."""
        hosts = self.devices[device]
        started = time.monotonic()
        delay, waiting = 0.05, False
        while True:
            other = await self._take(device)
            if other is None:
                if waiting:
                    self.report(f"otto leases: got {device} ({_hosts_named(hosts)}) after {_secs(started)}")
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                if waiting or self.wait > 0:
                    self.report(
                        f"otto leases: gave up on {device} ({_hosts_named(hosts)}) after {_secs(started)}: "
                        f"held by {other.describe()}"
                    )
                return other
            if not waiting:
                waiting = True
                self.report(
                    f"otto leases: waiting up to {left:.0f}s for {device} ({_hosts_named(hosts)}), "
                    f"held by {other.describe()}"
                )
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, POLL_MAX)

    async def _take(self, device: str) -> Holder | None:
        """One try: None when this set now holds ``device`` (or this process already did)."""
        assert self._store is not None
        shared = _held.get((self._store.url, device))
        if shared is not None:
            shared.users += 1
            self._leases[device] = shared
            return None
        other = await self._store.take(device, self.holder, self.settings.ttl)
        if other is None:
            self._keep(device)
        return other

    async def _take_any(self, count: int) -> None:
        """Any ``count`` free devices, all at once or none (holding some while waiting for
        more could starve two runs that each hold part of what the other needs)."""
        deadline = time.monotonic() + self.wait
        started = time.monotonic()
        delay, waiting = 0.05, False
        while True:
            busy: dict[str, Holder] = {}
            for device in sorted(self.devices):
                if len(self._leases) == count:
                    break
                other = await self._take(device)
                if other is not None:
                    busy[device] = other
            if len(self._leases) == count:
                if waiting:
                    self.report(f"otto leases: got {', '.join(self._leases)} after {_secs(started)}")
                return
            await self._give_back()
            held_by = "; ".join(f"{d} by {h.describe()}" for d, h in busy.items())
            left = deadline - time.monotonic()
            if left <= 0:
                raise LeaseError(
                    None,
                    None,
                    next(iter(busy.values()), None),
                    f"fewer than {count} of {len(self.devices)} devices free after {self.wait:g}s: {held_by}",
                )
            if not waiting:
                waiting = True
                self.report(f"otto leases: waiting up to {left:.0f}s for any {count} free; held: {held_by}")
            await asyncio.sleep(min(delay * random.uniform(0.5, 1.5), left))
            delay = min(delay * 2, POLL_MAX)

    def _attach(self) -> None:
        """Guard every obtained host: its calls check the lease before sending."""
        for device, held in self._leases.items():
            for host_id in self.devices[device]:
                host = self._hosts.get(host_id)
                if host is not None:
                    host.lease_guard = functools.partial(_check, held, host_id)

    def _start_renewing(self) -> None:
        self._released = False
        self._renewal = asyncio.ensure_future(self._renew_forever())

    async def _renew_forever(self) -> None:
        assert self._store is not None
        period = self.settings.ttl / 3 if self._store.expires else min(self.settings.ttl / 3, 2.0)
        while not self._released:
            await asyncio.sleep(period)
            for held in list(self._leases.values()):
                if held.owner is self and held.lost is None and not self._released:
                    await self._renew(held)

    async def _renew(self, held: _Held) -> None:
        """Confirm one lease: extend it, take it again if the store forgot it, or mark it lost."""
        try:
            found = await held.store.renew(held.device, held.holder, held.ttl)
            if found.broken:
                self._lose(held, None, "broken on purpose: otto lease break")
                return
            if not found.held and found.other is None and held.adopted:
                return  # the process that took it takes it again
            if not found.held and found.other is None:  # the store restarted, or we were frozen
                other = await held.store.take(held.device, held.holder, held.ttl)
                if other is None:
                    log.warning("otto leases: %s was gone from %s; taken again", held.device, held.store.url)
                    held.confirmed = time.monotonic()
                    return
                found = type(found)(held=False, other=other)
        except LeaseStoreError as exc:
            if time.monotonic() - held.confirmed <= held.ttl:
                log.warning("otto leases: cannot renew %s yet: %s", held.device, exc.cause)
                return
            self._lose(held, None, f"not renewed for {held.ttl:g}s (lease_ttl): {exc.cause}")
            return
        if found.held:
            held.confirmed = time.monotonic()
        else:
            self._lose(held, found.other, "")

    async def renew_now(self, held: _Held) -> None:
        """Confirm ``held`` at once (a guard found it stale)."""
        if held.lost is None:
            await self._renew(held)

    def _lose(self, held: _Held, other: Holder | None, why: str) -> None:
        hosts = self.devices[held.device]
        now = f"now held by {other.describe()}" if other is not None else (why or "now held by nobody")
        held.lost = LeaseLost(hosts[0], held.device, other, f"lease on host {hosts[0]} lost ({now})")
        self.report(f"otto leases: lost {held.device} ({_hosts_named(hosts)}): {now}")
        for host_id in hosts:
            self._fence(host_id)
            for callback in self._on_lost:
                callback(host_id, _lost_for(held.lost, host_id))

    def _fence(self, host_id: str) -> None:
        """Close the host's shells: a call waiting on the device ends now."""
        host = self._hosts.get(host_id)
        if host is not None:
            loop.get_loop().call_soon_threadsafe(_close_soon, host)

    async def _give_back(self) -> None:
        ours: list[_Held] = []
        for device in list(self._leases):
            held = self._leases.pop(device)
            held.users -= 1
            if held.adopted:
                continue
            if held.users == 0:
                _held.pop((held.store.url, device), None)
                ours.append(held)
            elif held.owner is self:
                held.owner = None  # a nested set still uses it: it stays, unrenewed, until that ends
        if ours:
            devices = [held.device for held in ours]
            try:
                await asyncio.wait_for(ours[0].store.release_many(devices, self.holder), RELEASE_STEP)
            except LeaseStoreError as exc:  # they expire by themselves
                log.warning("otto leases: cannot release %s: %s", ", ".join(devices), exc.cause)
            except TimeoutError:
                log.warning(
                    "otto leases: cannot release %s: no answer from %s within %gs",
                    ", ".join(devices),
                    ours[0].store.url,
                    RELEASE_STEP,
                )

    async def _release(self) -> None:
        self._released = True
        if self._renewal is not None:
            # Bounded: a store client can swallow a cancel (seen once: a release that
            # waited for ever while its renewal went on); the flag ends it then.
            self._renewal.cancel()
            await asyncio.wait([self._renewal], timeout=RELEASE_STEP)
            self._renewal = None
        for device in self._leases:
            for host_id in self.devices[device]:
                host = self._hosts.get(host_id)
                if host is not None:
                    host.lease_guard = None
        await self._give_back()
        if self._store is not None:
            store, self._store = self._store, None
            try:
                await asyncio.wait_for(store.close(), RELEASE_STEP)
            except TimeoutError:
                log.warning("otto leases: closing %s took over %gs; left behind", store.url, RELEASE_STEP)


#: Closings of fenced hosts in flight (a task must be referenced until it ends).
_closing: set[asyncio.Task[None]] = set()


def _close_soon(host: Host) -> None:
    task = asyncio.ensure_future(host._close(silently=True))  # no logout: the device is not ours
    _closing.add(task)
    task.add_done_callback(_closing.discard)


def _lost_for(error: LeaseLost, host_id: str) -> LeaseLost:
    if error.host_id == host_id:
        return error
    cause = error.cause.replace(f"host {error.host_id} ", f"host {host_id} ", 1)
    return LeaseLost(host_id, error.device, error.holder, cause)


async def _check(held: _Held, host_id: str) -> None:
    """A host's guard: raise `LeaseLost` instead of letting a call reach a lost device."""
    if held.lost is None and held.stale() and held.owner is not None:
        await thread.call(held.owner.renew_now(held))
    if held.lost is not None:
        raise _lost_for(held.lost, host_id)


def _secs(since: float) -> str:
    return f"{time.monotonic() - since:.1f}s"
