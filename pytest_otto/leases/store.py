"""The lease store interface, and how a ``leases = "..."`` URL picks one.

A store keeps one lease per device name. It is small on purpose: another store
(etcd, PostgreSQL) is one module with these five coroutines and one
`register_store` line. Every coroutine runs on the lease thread's event loop.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .errors import LeaseStoreError
from .holder import Holder

if TYPE_CHECKING:
    from ..config import Secret

__all__ = ["LeaseInfo", "LeaseStore", "Renewal", "open_store", "register_store", "shown_url"]


@dataclass(frozen=True)
class Renewal:
    """What renewing found: still ours (``held``), or held by ``other``, or gone.

    Gone because it was ``broken`` on purpose (`LeaseStore.break_lease`), or because
    the store forgot it (a restarted Redis): then it may be taken again.
    """

    held: bool
    other: Holder | None = None
    broken: bool = False


@dataclass(frozen=True)
class LeaseInfo:
    """One held lease, as `pytest_otto.Lab.leases` lists it."""

    device: str
    holder: Holder
    #: Seconds until the lease expires unless renewed; None for a lease that ends with its process.
    expires_in: float | None = None

    def describe(self) -> str:
        """``device  held by alice@bench-pc pid 4242 since ...``, one line."""
        ttl = "" if self.expires_in is None else f" (expires in {self.expires_in:.0f}s unless renewed)"
        return f"{self.device}: {self.holder.describe()}{ttl}"


class LeaseStore(Protocol):
    """Where leases live: one entry per device, holding its `Holder`."""

    #: The store's URL without a password, for messages.
    url: str
    #: Leases expire unless renewed (Redis) rather than end with their process (file).
    expires: bool

    async def take(self, device: str, holder: Holder, ttl: float) -> Holder | None:
        """Take ``device`` for ``holder``: None when taken, else whoever holds it."""

    async def take_many(self, devices: list[str], holder: Holder, ttl: float) -> dict[str, Holder | None]:
        """One try at each of ``devices`` (in one round trip where the store can): `take`'s answers."""

    async def release_many(self, devices: list[str], holder: Holder) -> None:
        """`release` each of ``devices`` (in one round trip where the store can)."""

    async def renew(self, device: str, holder: Holder, ttl: float) -> Renewal:
        """Extend ``holder``'s lease; report it gone or held by another."""

    async def release(self, device: str, holder: Holder) -> None:
        """Give the lease back, only if it is still ``holder``'s."""

    async def holders(self) -> list[LeaseInfo]:
        """Every lease held now, sorted by device."""

    async def break_lease(self, device: str) -> Holder | None:
        """Remove ``device``'s lease, whoever holds it; return that holder (None: none)."""

    async def close(self) -> None:
        """Drop connections (leases this process holds are released before)."""


#: URL scheme -> (module, factory name); modules import on first use (redis is optional).
StoreFactory = Callable[[str, "Secret | None"], LeaseStore]
_STORES: dict[str, tuple[str, str]] = {
    "file": ("pytest_otto.leases.filestore", "FileStore"),
    "redis": ("pytest_otto.leases.redisstore", "RedisStore"),
    "rediss": ("pytest_otto.leases.redisstore", "RedisStore"),
}


def register_store(scheme: str, module: str, factory: str) -> None:
    """Make ``leases = "scheme://..."`` use ``module.factory(url, password)``."""
    _STORES[scheme] = (module, factory)


def schemes() -> list[str]:
    """The URL schemes a store is registered for."""
    return sorted(_STORES)


def open_store(url: str, password: Secret | None = None) -> LeaseStore:
    """The store for ``url`` (``file``, ``file:///DIR``, ``redis://...``); nothing connects yet."""
    scheme = url.split(":", 1)[0] if ":" in url else url
    entry = _STORES.get(scheme)
    if entry is None:
        raise LeaseStoreError(
            None, None, None, f"unknown lease store {shown_url(url)!r}; one of {', '.join(schemes())}, off"
        )
    module = importlib.import_module(entry[0])
    factory: StoreFactory = getattr(module, entry[1])
    return factory(url, password)


def shown_url(url: str) -> str:
    """``url`` with any password in it masked (``redis://:***@host``)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
