"""Real servers on loopback for pytest-otto's tests and benchmarks.

- :class:`SshServer` / :class:`SshLab`: OpenSSH ``sshd`` on 127.0.0.x.
- :class:`TelnetServer`: BusyBox ``telnetd`` with ``/bin/login`` or a ready shell.
- :class:`RedisServer`: ``redis-server`` on 127.0.0.1 (lease tests).
- :class:`SerialConsole`: a pty "serial line" with a respawning getty/login or shell.
- :func:`write_lab_toml`: describe running servers in a ``lab.toml``.

Fixtures for pytest: ``pytest_plugins = ["testlab.pytest_fixtures"]``.
This package imports ``pytest_otto`` only for the virtual boards' QMP client
(`testlab.boards.Board.qmp`), which is the library's own.
"""

from testlab._util import NOPASSWD_USER, PASSWORD, PASSWORD_USER, LabError, ensure_password_user
from testlab.labfile import host_entry, lab_dict, write_lab_toml
from testlab.redis import RedisServer
from testlab.serial import SerialConsole
from testlab.sshd import SshLab, SshServer, generate_keypair
from testlab.telnetd import TelnetServer

__all__ = [
    "NOPASSWD_USER",
    "PASSWORD",
    "PASSWORD_USER",
    "LabError",
    "RedisServer",
    "SerialConsole",
    "SshLab",
    "SshServer",
    "TelnetServer",
    "ensure_password_user",
    "generate_keypair",
    "host_entry",
    "lab_dict",
    "write_lab_toml",
]
