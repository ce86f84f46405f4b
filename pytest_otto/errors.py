"""Exceptions and warnings of pytest-otto."""

from __future__ import annotations

__all__ = ["HostConnectionError", "OttoError", "ShellResetWarning"]


class OttoError(Exception):
    """Base class of pytest-otto's own errors."""


class HostConnectionError(ConnectionError, OttoError):
    """A host could not be reached, logged into, or its connection was lost.

    A ``ConnectionError`` so callers can catch the builtin; the message always
    starts with the host id.
    """

    def __init__(self, host_id: str, cause: str) -> None:
        super().__init__(f"{host_id}: {cause}")
        self.host_id = host_id
        self.cause = cause


class ShellResetWarning(UserWarning):
    """A persistent shell died or could not be recovered and was replaced.

    Anything the earlier shell held (cwd, exported variables, functions) is gone.
    """
