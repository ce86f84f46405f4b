"""Host classes: the public face of every kind of machine pytest-otto reaches.

A package rather than the architecture sketch's single ``host.py``: the API every
host shares is `base.Host`; each kind adds only how it reaches its shell and how it
runs a oneshot and a transfer (SSH exec channels and SFTP, a fresh console login and
in-band base64, a local process), one module each like the transports below them.

`RemoteHost`, `TelnetHost` and `SerialHost` are imported on first use, from the
modules the transport registry names (`pytest_otto.registry`): asyncssh is only
loaded when an SSH host is needed.
"""

import importlib
from typing import TYPE_CHECKING, Any

from .. import registry
from .base import Host, Session
from .local import LocalHost

if TYPE_CHECKING:
    from .console import SerialHost, TcpHost, TelnetHost
    from .ssh import RemoteHost

__all__ = ["Host", "LocalHost", "RemoteHost", "SerialHost", "Session", "TcpHost", "TelnetHost"]


def __getattr__(name: str) -> Any:
    module = registry.host_class_module(name)
    if module is None:
        raise AttributeError(f"module 'pytest_otto.hosts' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
