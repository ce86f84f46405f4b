"""pytest-otto: hardware-in-the-loop testing from pytest.

Hosts (local, SSH, telnet, serial) share one API: ``run`` on a persistent shell,
``oneshot`` in a fresh process, named sessions, ``send``/``expect``, ``put``/``get``.
Every coroutine has a blocking twin named ``<name>_sync``.
"""

import logging

from .errors import HostConnectionError, OttoError, ShellResetWarning
from .hosts.base import Host, Session
from .hosts.console import SerialHost, TelnetHost
from .hosts.local import LocalHost
from .hosts.ssh import RemoteHost
from .lab import Lab, LabError, all_hosts, do_for_all_hosts, get_host, load_lab, run_on_all_hosts
from .result import CommandStatus, RunResult, Status
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
    "all_hosts",
    "do_for_all_hosts",
    "get_host",
    "load_lab",
    "run_on_all_hosts",
]

__version__ = "0.1.0"

logging.getLogger("pytest_otto").addHandler(logging.NullHandler())
