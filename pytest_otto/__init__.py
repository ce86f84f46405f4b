"""pytest-otto: hardware-in-the-loop testing from pytest.

Hosts (local, SSH, telnet, serial) share one API: ``run`` on a persistent shell,
``oneshot`` in a fresh process, named sessions, ``send``/``expect``, ``put``/``get``.
Every coroutine has a blocking twin named ``<name>_sync``.
"""

import importlib
import logging
from typing import TYPE_CHECKING, Any

from .errors import HostConnectionError, OttoError, ShellResetWarning
from .hosts.base import Host, Session
from .hosts.local import LocalHost
from .lab import Lab, LabError, all_hosts, do_for_all_hosts, get_host, load_lab, run_on_all_hosts
from .result import CommandStatus, RunResult, Status, TransferResult
from .session import DEFAULT, ExpectTimeout
from .transcript import Transcript, TranscriptEntry

__all__ = [
    "DEFAULT",
    "CommandStatus",
    "ExpectTimeout",
    "Host",
    "HostConnectionError",
    "Lab",
    "LabError",
    "LocalHost",
    "OttoError",
    "RemoteHost",
    "RunResult",
    "SerialHost",
    "Session",
    "ShellResetWarning",
    "Status",
    "TelnetHost",
    "Transcript",
    "TranscriptEntry",
    "TransferResult",
    "all_hosts",
    "do_for_all_hosts",
    "get_host",
    "load_lab",
    "run_on_all_hosts",
]

if TYPE_CHECKING:
    from .hosts.console import SerialHost, TelnetHost
    from .hosts.ssh import RemoteHost

#: Hosts whose modules pull in asyncssh or console code: imported on first use, so
#: loading the pytest plugin (and a lab of local hosts) does not pay ~150 ms for asyncssh.
_LAZY = {
    "RemoteHost": "pytest_otto.hosts.ssh",
    "TelnetHost": "pytest_otto.hosts.console",
    "SerialHost": "pytest_otto.hosts.console",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_otto' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

logging.getLogger("pytest_otto").addHandler(logging.NullHandler())
