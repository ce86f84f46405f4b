"""Root conftest: makes the real test servers of `testlab` available as fixtures.

The servers (OpenSSH sshd, busybox telnetd, pty serial consoles) are started by
the session-scoped fixtures that need them, on loopback addresses, and stopped at
the end (see testlab/README.md).
"""

pytest_plugins = ["pytester", "testlab.pytest_fixtures", "testlab.board_fixtures"]
