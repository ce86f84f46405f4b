"""The lab file's lease keys, and the device each host is leased as.

``[lab]`` has ``leases`` (where leases live: ``"file"``, ``"file:///DIR"``,
``"redis://..."``, ``"off"``, or ``{ url = ..., password = { env = ... } }``),
``lease_ttl`` and ``lease_wait``; ``[hosts.X]`` (or ``[defaults]``) has ``lease``
(a device name shared by the hosts that give it, or ``false``). ``$OTTO_LEASES``
overrides ``leases``: a CI runner says where its leases live, the lab file stays
the same everywhere.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import HostConfig, LabConfig, LabError, Secret

__all__ = [
    "DEFAULT_STORE",
    "DEFAULT_TTL",
    "DEFAULT_WAIT",
    "LAB_KEYS",
    "LEASE_WAIT_HELP",
    "OTTO_LEASES_ENV",
    "LeaseSettings",
    "device_of",
    "lease_settings",
    "parse_lease",
]

DEFAULT_STORE = "file"
DEFAULT_TTL = 60.0
DEFAULT_WAIT = 600.0
OTTO_LEASES_ENV = "OTTO_LEASES"
#: The first sentence of ``--lease-wait``'s help, in pytest and ``otto`` alike.
LEASE_WAIT_HELP = (
    f"Wait at most SECONDS for busy devices (default: the lab's lease_wait, else {DEFAULT_WAIT:g})"
)
#: The ``[lab]`` keys this package reads.
LAB_KEYS = ("leases", "lease_ttl", "lease_wait")


@dataclass(frozen=True)
class LeaseSettings:
    """Where leases live and how long they last and are waited for."""

    store: str = DEFAULT_STORE  #: a store URL, or "off"
    password: Secret | None = None
    ttl: float = DEFAULT_TTL
    wait: float = DEFAULT_WAIT

    @property
    def off(self) -> bool:
        """No leasing (a private bench)."""
        return self.store == "off"


def lease_settings(config: LabConfig | None, env: Mapping[str, str] | None = None) -> LeaseSettings:
    """The lease settings of a lab file (`LabError` naming file and key on a mistake)."""
    env = os.environ if env is None else env
    table: Mapping[str, Any] = config.lab_table if config is not None else {}
    path = config.path if config is not None else None
    store, password = _store(table.get("leases", DEFAULT_STORE), path)
    if env.get(OTTO_LEASES_ENV):
        store = env[OTTO_LEASES_ENV]
    ttl = _seconds(table, "lease_ttl", DEFAULT_TTL, path, low=1.0)
    wait = _seconds(table, "lease_wait", DEFAULT_WAIT, path, low=0.0)
    return LeaseSettings(store=store, password=password, ttl=ttl, wait=wait)


def _store(value: object, path: Path | None) -> tuple[str, Secret | None]:
    if isinstance(value, str) and value:
        return value, None
    if isinstance(value, dict):
        unknown = set(value) - {"url", "password"}
        if unknown:
            raise LabError(
                f"unknown key {sorted(unknown)[0]!r} in the leases table (url, password)",
                path=path,
                key="leases",
            )
        url, password = value.get("url"), value.get("password")
        if not isinstance(url, str) or not url:
            raise LabError('the leases table needs url = "redis://HOST:6379/0"', path=path, key="leases")
        if password is None:
            return url, None
        if isinstance(password, dict) and set(password) == {"env"} and isinstance(password["env"], str):
            return url, Secret(env=password["env"], path=path)
        raise LabError(
            'leases password must be { env = "VARIABLE" }, never the password itself', path=path, key="leases"
        )
    raise LabError(
        'expected "file", "file:///DIR", "redis://HOST:PORT/DB", "off" '
        "or { url = ..., password = { env = ... } }",
        path=path,
        key="leases",
    )


def _seconds(table: Mapping[str, Any], key: str, default: float, path: Path | None, low: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < low:
        raise LabError(f"expected a number of seconds >= {low:g}, got {value!r}", path=path, key=key)
    return float(value)


def parse_lease(value: object) -> str | bool:
    """A host's ``lease`` key: a device name, or ``false`` (``true``: its endpoint, as unset)."""
    if isinstance(value, bool) or (isinstance(value, str) and value):
        return value
    raise ValueError(f"expected a device name or false, got {value!r}")


def device_of(config: HostConfig) -> str | None:
    """The device a host is leased as; None when it is not leased.

    ``lease = "name"`` names it (hosts giving one name share one lease);
    ``lease = false`` takes the host out. Otherwise ssh, telnet and tcp hosts are their
    ``address:port`` and serial hosts their device's real path (so two names of one
    tty are one device). Local hosts have no device unless they name one (a relay or
    a USB device driven by local tools).
    """
    lease = config.sections.get("lease")
    if lease is False:
        return None
    if isinstance(lease, str):
        return lease
    address, device = getattr(config, "address", None), getattr(config, "device", None)
    if config.transport in ("ssh", "telnet", "tcp") and address:
        return f"{address}:{getattr(config, 'port', None)}"
    if config.transport == "serial" and device is not None:
        return str(os.path.realpath(device))
    return None
