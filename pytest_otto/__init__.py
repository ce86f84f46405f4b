"""pytest-otto: hardware-in-the-loop testing from pytest.

Hosts (local, SSH, telnet, serial) share one API: ``run`` on a persistent shell,
``oneshot`` in a fresh process, named sessions, ``send``/``expect``, ``put``/``get``.
Every coroutine has a blocking twin named ``<name>_sync``.

Comments cite the behaviour contract by number ("B13", "pitfall 12"): the statements
and pitfalls are in docs/behaviour.md.
"""

import importlib
import logging
from typing import TYPE_CHECKING, Any

from . import registry
from .errors import (
    CommandFailed,
    ExpectTimeout,
    HostConnectionError,
    LabError,
    LineHeld,
    OttoError,
    OttoTimeout,
    SendTimeout,
    ShellResetWarning,
    TransferFailed,
)
from .hosts.base import Host, Session
from .hosts.local import LocalHost
from .lab import (
    Lab,
    all_hosts,
    do_for_all_hosts,
    do_for_all_hosts_sync,
    get_host,
    load_lab,
    run_on_all_hosts,
    run_on_all_hosts_sync,
)
from .result import CommandStatus, RunResult, Status, TransferResult
from .timeouts import DEFAULT
from .transcript import Transcript, TranscriptEntry

__all__ = [
    "DEFAULT",
    "CommandFailed",
    "CommandStatus",
    "ExpectTimeout",
    "Host",
    "HostConnectionError",
    "Lab",
    "LabError",
    "LineHeld",
    "LocalHost",
    "OttoError",
    "OttoTimeout",
    "RemoteHost",
    "RunResult",
    "SendTimeout",
    "SerialHost",
    "Session",
    "ShellResetWarning",
    "Status",
    "TcpHost",
    "TelnetHost",
    "Transcript",
    "TranscriptEntry",
    "TransferFailed",
    "TransferResult",
    "all_hosts",
    "do_for_all_hosts",
    "do_for_all_hosts_sync",
    "get_host",
    "load_lab",
    "run_on_all_hosts",
    "run_on_all_hosts_sync",
]

if TYPE_CHECKING:
    from .hosts.console import SerialHost, TcpHost, TelnetHost
    from .hosts.ssh import RemoteHost


def __getattr__(name: str) -> Any:
    # Host classes whose modules pull in asyncssh or console code are imported on first
    # use (their modules are named in the transport registry), so loading the pytest
    # plugin (and a lab of local hosts) does not pay ~150 ms for asyncssh.
    module = registry.host_class_module(name)
    if module is None:
        raise AttributeError(f"module 'pytest_otto' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

logging.getLogger("pytest_otto").addHandler(logging.NullHandler())
