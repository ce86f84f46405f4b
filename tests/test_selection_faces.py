"""pytest's ``--host-pattern``/``--tags`` and ``otto``'s ``-p``/``--tags``: one lab selection.

Both faces call `pytest_otto.selection.select_hosts` with the same help text, so the
same words pick the same hosts, and the same mistake gets the same message and exit
code 4. Shown with real processes: a pytest run (pytester, in a subprocess) whose
tests run a command on each selected host (sshd on loopback and the local machine),
and the installed ``otto`` against the same lab file.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_otto.selection import HOST_PATTERN_HELP, TAGS_HELP
from testlab import SshLab
from tests.test_cli import SLOW, env_for, otto_argv, ssh_table

BASE_ARGS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark")

TESTS = """
def test_where(host):
    assert host.run_sync("echo here").only.output == "here"
"""


@pytest.fixture
def tagged_lab(pytester: pytest.Pytester, ssh_lab: SshLab) -> Path:
    """ssh1 (sshd: linux, remote), me (local: linux), rtr (local standing in for a router)."""
    path = pytester.path / "lab.toml"
    path.write_text(
        f"""
[lab]
name = "tagged"
leases = "off"
{ssh_table(ssh_lab, "ssh1", ["linux", "remote"])}
[hosts.me]
transport = "local"
tags = ["linux"]

[hosts.rtr]
transport = "local"
tags = ["router"]
"""
    )
    pytester.makepyfile(test_where=TESTS)
    return path


def pytest_hosts(pytester: pytest.Pytester, lab: Path, *selection: str) -> tuple[list[str], str]:
    """The hosts a pytest run with ``selection`` tested (all passed), and its header line."""
    result = pytester.runpytest_subprocess(*BASE_ARGS, f"--lab={lab}", "-v", *selection, timeout=SLOW * 2)
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    out = result.stdout.str()
    header = next(line for line in out.splitlines() if line.startswith("otto hosts ("))
    return re.findall(r"test_where\[(\S+)\] PASSED", out), header


def otto_hosts(lab: Path, *selection: str) -> list[str]:
    """The hosts ``otto check`` with the same words checked (all ok)."""
    result = subprocess.run(
        [*otto_argv(), "--json", "check", *selection],
        capture_output=True,
        text=True,
        env=env_for(lab),
        timeout=SLOW * 2,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return [h["id"] for h in json.loads(result.stdout)["hosts"]]


@pytest.mark.parametrize(
    ("selection", "hosts", "shown"),
    [
        (["--tags", "linux"], ["ssh1", "me"], "--tags 'linux'"),
        (["--tags", "linux, remote"], ["ssh1"], "--tags 'linux,remote'"),
        (["--tags", "linux", "--tags", "remote"], ["ssh1"], "--tags 'linux,remote'"),
        (
            ["--host-pattern", "^(me|rtr)$", "--tags", "linux"],
            ["me"],
            "--host-pattern '^(me|rtr)$' --tags 'linux'",
        ),
    ],
)
def test_pytest_and_otto_select_the_same_hosts_by_tags(
    pytester: pytest.Pytester, tagged_lab: Path, selection: list[str], hosts: list[str], shown: str
) -> None:
    tested, header = pytest_hosts(pytester, tagged_lab, *selection)
    assert sorted(tested) == sorted(hosts)
    assert header == f"otto hosts ({len(hosts)} of 3, {shown}): {', '.join(hosts)}"
    assert otto_hosts(tagged_lab, *selection) == hosts


def test_a_tag_no_host_has_is_the_same_usage_error_in_both(
    pytester: pytest.Pytester, tagged_lab: Path
) -> None:
    expected = (
        f"--host-pattern 'me' with --tags 'router' selects no host; the hosts of lab 'tagged' ({tagged_lab}) "
        "are: ssh1, me, rtr; their tags: linux, remote, router"
    )
    result = pytester.runpytest_subprocess(
        *BASE_ARGS, f"--lab={tagged_lab}", "--host-pattern", "me", "--tags", "router", timeout=SLOW * 2
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"pytest-otto: {expected}" in result.stderr.str()
    otto = subprocess.run(
        [*otto_argv(), "check", "-p", "me", "--tags", "router"],
        capture_output=True,
        text=True,
        env=env_for(tagged_lab),
        timeout=SLOW,
        check=False,
    )
    assert otto.returncode == 4 and f"otto: {expected}" in otto.stderr, otto.stderr


def test_a_test_that_pins_its_host_meets_the_tags(pytester: pytest.Pytester, tagged_lab: Path) -> None:
    pytester.makepyfile(
        test_pin="""
        import pytest

        @pytest.mark.parametrize("host", ["rtr"], indirect=True)
        def test_pinned(host):
            pass
        """
    )
    result = pytester.runpytest_subprocess(
        *BASE_ARGS, f"--lab={tagged_lab}", "--tags", "linux", "-rs", "test_pin.py", timeout=SLOW * 2
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*host 'rtr' is not selected by --tags 'linux'*"])


def test_both_faces_have_one_help_text(pytester: pytest.Pytester) -> None:
    def squeezed(text: str) -> str:
        return "".join(text.split())

    helped = subprocess.run(
        [sys.executable, "-m", "pytest", "--help", *BASE_ARGS],
        capture_output=True,
        text=True,
        cwd=pytester.path,
        timeout=SLOW,
        check=False,
    )
    otto = subprocess.run([*otto_argv(), "--help"], capture_output=True, text=True, timeout=SLOW, check=False)
    for help_text in (HOST_PATTERN_HELP, TAGS_HELP):
        assert squeezed(help_text) in squeezed(helped.stdout), help_text
        assert squeezed(help_text) in squeezed(otto.stdout), help_text
