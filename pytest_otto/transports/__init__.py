"""Transports: each moves bytes to and from one shell and logs in; nothing more."""

from .base import ByteSink, Transport

__all__ = ["ByteSink", "Transport"]
