"""asyncssh, imported with the warnings of its own import ignored.

Importing asyncssh 2.24 with cryptography >= 48 warns ``CryptographyDeprecationWarning``
(DSA) from asyncssh's own module bodies. Under ``python -W error`` or ``pytest -W error``
that warning would become an exception in whatever imported us (for pytest: an
INTERNALERROR while loading the lab). It says nothing about the caller's code, so it
is ignored while asyncssh is imported, and only then: warnings raised later, when a
deprecated algorithm is really used, still reach the user. Every pytest-otto module
takes asyncssh from here.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", module=r"asyncssh(\.|$)")
    import asyncssh

__all__ = ["asyncssh"]
