"""`LeaseError`: a device could not be leased, or a held lease was lost."""

from __future__ import annotations

from ..errors import OttoError
from .holder import Holder

__all__ = ["LeaseError", "LeaseLost", "LeaseStoreError"]


class LeaseError(OttoError):
    """A device is leased by someone else (or its lease was lost).

    The message leads with the host id and names the device and its holder;
    ``host_id``, ``device`` and ``holder`` carry them for code (the holder is None
    when nobody is known to hold it). ``cause`` is the message without the host id.
    """

    #: How the pytest plugin says why a host's tests cannot run ("host 'X' is ...").
    verdict = "leased by another run"

    def __init__(self, host_id: str | None, device: str | None, holder: Holder | None, cause: str) -> None:
        self.host_id = host_id
        self.device = device
        self.holder = holder
        self.cause = cause
        super().__init__(f"{host_id}: {cause}" if host_id else cause)


class LeaseLost(LeaseError):
    """A lease this run held is gone: expired, broken, or taken by another run.

    Nothing more is sent to the device; the test using it fails with this.
    """

    verdict = "no longer leased by this run"


class LeaseStoreError(LeaseError):
    """The lease store (a Redis server, a lock directory) cannot be used; the URL is named."""
