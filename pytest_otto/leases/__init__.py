"""Device leases: one run at a time drives a device, and a dead run gives it back.

The user guide is ``docs/leases.md``. A lease is
taken on a device (a host's endpoint, or its ``lease = "name"``) in a store
(`FileStore`: ``flock`` in a directory; `RedisStore`: keys with a TTL) by a
`LeaseSet`, which `pytest_otto.Lab.lease` makes for scripts and the pytest
plugin makes for a run. `lab_leases` / `break_lease` serve ``otto lease list|break``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from . import thread
from .errors import LeaseError, LeaseLost, LeaseStoreError
from .holder import Holder, ci_job_url, this_holder
from .leaseset import LeaseSet, Report
from .settings import OTTO_LEASES_ENV, LeaseSettings, device_of, lease_settings
from .store import LeaseInfo, LeaseStore, open_store, register_store

if TYPE_CHECKING:
    from ..hosts.base import Host
    from ..lab import Lab

__all__ = [
    "OTTO_LEASES_ENV",
    "Holder",
    "LeaseError",
    "LeaseInfo",
    "LeaseLost",
    "LeaseSet",
    "LeaseSettings",
    "LeaseStore",
    "LeaseStoreError",
    "break_lease",
    "ci_job_url",
    "device_of",
    "host_devices",
    "lab_leases",
    "lease_settings",
    "lease_set",
    "open_store",
    "register_store",
    "this_holder",
]


def host_devices(lab: Lab, hosts: Iterable[Host | str] | None = None) -> dict[str, str | None]:
    """``{host id: device or None}`` for ``hosts`` (default: all of ``lab``'s), in lab order."""
    chosen = lab.hosts if hosts is None else [lab[h] if isinstance(h, str) else h for h in hosts]
    configs = {cfg.id: cfg for cfg in lab.config.hosts} if lab.config is not None else {}
    return {h.id: device_of(configs[h.id]) if h.id in configs else None for h in chosen}


def lease_set(
    lab: Lab,
    hosts: Iterable[Host | str] | None = None,
    *,
    wait: float | None = None,
    any: int | None = None,
    partial: bool = False,
    report: Report | None = None,
) -> LeaseSet:
    """A `LeaseSet` for ``hosts`` of ``lab`` with the lab file's settings (not yet taken)."""
    chosen = lab.hosts if hosts is None else [lab[h] if isinstance(h, str) else h for h in hosts]
    return LeaseSet(
        host_devices(lab, chosen),
        lease_settings(lab.config),
        wait=wait,
        any=any,
        partial=partial,
        report=report,
        hosts=chosen,
    )


async def _listing(settings: LeaseSettings) -> list[LeaseInfo]:
    if settings.off:
        return []
    store = open_store(settings.store, settings.password)
    try:
        return await store.holders()
    finally:
        await store.close()


async def _breaking(settings: LeaseSettings, device: str) -> Holder | None:
    if settings.off:
        raise LeaseStoreError(None, device, None, "leases are off for this lab; there is nothing to break")
    store = open_store(settings.store, settings.password)
    try:
        return await store.break_lease(device)
    finally:
        await store.close()


async def lab_leases(lab: Lab) -> list[LeaseInfo]:
    """Every lease held now in ``lab``'s store (by anyone), sorted by device."""
    return await thread.call(_listing(lease_settings(lab.config)))


async def break_lease(lab: Lab, device: str) -> Holder | None:
    """Remove ``device``'s lease in ``lab``'s store, whoever holds it; the holder (None: none).

    The previous holder finds its lease gone at its next renewal and stops using
    the device (a lost lease). For a lease left by a job that is gone.
    """
    return await thread.call(_breaking(lease_settings(lab.config), device))
