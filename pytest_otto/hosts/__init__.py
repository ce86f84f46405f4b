"""Host classes: the public face of every kind of machine pytest-otto reaches."""

from .base import Host, Session
from .console import SerialHost, TelnetHost
from .local import LocalHost
from .ssh import RemoteHost

__all__ = ["Host", "LocalHost", "RemoteHost", "SerialHost", "Session", "TelnetHost"]
