"""Host classes: the public face of every kind of machine pytest-otto reaches."""

from .base import Host, Session
from .local import LocalHost

__all__ = ["Host", "LocalHost", "Session"]
