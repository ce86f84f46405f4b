"""Host classes: the public face of every kind of machine pytest-otto reaches.

`RemoteHost`, `TelnetHost` and `SerialHost` are imported on first use (see
`pytest_otto.__getattr__`): asyncssh is only loaded when an SSH host is needed.
"""

import importlib
from typing import TYPE_CHECKING, Any

from .base import Host, Session
from .local import LocalHost

if TYPE_CHECKING:
    from .console import SerialHost, TelnetHost
    from .ssh import RemoteHost

__all__ = ["Host", "LocalHost", "RemoteHost", "SerialHost", "Session", "TelnetHost"]

_LAZY = {"RemoteHost": ".ssh", "TelnetHost": ".console", "SerialHost": ".console"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_otto.hosts' has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
