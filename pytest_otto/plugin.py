"""pytest plugin entry point (fixtures and options arrive with the plugin work)."""

from __future__ import annotations
