"""The ``needs_root`` marker: tests whose servers only root can run are skipped for others."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: pytest in a subprocess, with ``os.geteuid`` answering as an ordinary user would.
AS_USER = "import os, sys, pytest; os.geteuid = lambda: 1000; sys.exit(pytest.main(sys.argv[1:]))"


def run_pytest(*args: str, as_user: bool = False) -> str:
    code = AS_USER if as_user else "import sys, pytest; sys.exit(pytest.main(sys.argv[1:]))"
    command = [sys.executable, "-c", code, "-p", "no:xdist", "-p", "no:randomly", *args]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    return done.stdout + done.stderr


def test_the_marker_selects_the_kinds_and_fixtures_that_need_root() -> None:
    out = run_pytest("--co", "-q", "-m", "needs_root", "tests/test_behaviour.py", "tests/test_lab.py")
    selected = [line for line in out.splitlines() if "::" in line]
    assert any("[ssh-pty]" in line for line in selected)
    assert any("[telnet-login]" in line for line in selected)
    assert not any("[local-" in line for line in selected), selected
    assert "tests/test_lab.py::test_fan_out_across_real_sshd_hosts_one_unreachable" in selected  # ssh_lab
    assert not any("test_run_on_all_local_hosts" in line for line in selected)


def test_an_ordinary_user_runs_the_rest_and_skips_what_needs_root() -> None:
    out = run_pytest("-q", "-rs", "tests/test_behaviour.py", "-k", "test_exit_codes_b5", as_user=True)
    assert "2 passed" in out and "skipped" in out, out
    assert "needs root: its test servers (sshd, login, getty) run as root" in out
