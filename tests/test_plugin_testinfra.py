"""pytest-otto beside pytest-testinfra in one environment (issue 21.4, docs/testinfra.md).

Both plugins have a ``host`` fixture. The rule: with a lab, ``host`` is pytest-otto's;
with testinfra's ``--hosts`` and no lab it is testinfra's; a module that sets
``testinfra_hosts`` gets testinfra's; both a lab and ``--hosts`` is a usage error.
Real pytest-testinfra, talking to the test lab's sshd servers through its ``ssh``
backend (the OpenSSH client), in pytester subprocesses with every installed plugin.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_plugin import ALL_PLUGINS, run, ssh_lab_file

from testlab.sshd import SshLab

pytest.importorskip("testinfra", reason="pytest-testinfra is in the test extra")


TESTINFRA_TESTS = """
def test_os_release(host):
    assert host.file("/etc/os-release").exists

def test_on_its_sshd(host):
    # "client port server port": the command ran on the sshd the ssh_config names
    server = host.run("echo $SSH_CONNECTION").stdout.split()[2]
    assert server == {"ssh://ti1": "ADDR1", "ssh://ti2": "ADDR2"}[host.backend.get_pytest_id()]
"""

OTTO_TESTS = """
def test_local_machine(local_host):
    assert local_host.run_sync("echo otto").only.output == "otto"
"""


def ssh_config(path: Path, ssh_lab: SshLab) -> Path:
    """An OpenSSH client config naming two of the test lab's sshd servers ti1 and ti2."""
    blocks = [
        f"Host ti{i + 1}\n  HostName {server.address}\n  Port {server.port}\n  User root\n"
        f"  IdentityFile {ssh_lab.client_key_path}\n  IdentitiesOnly yes\n"
        "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n"
        "  BatchMode yes\n"
        for i, server in enumerate(list(ssh_lab)[:2])
    ]
    path.write_text("\n".join(blocks))
    return path


def write_testinfra_tests(pytester: pytest.Pytester, ssh_lab: SshLab) -> None:
    """test_ti.py: testinfra tests that check they ran on the sshd their host id names."""
    body = TESTINFRA_TESTS.replace("ADDR1", ssh_lab[0].address).replace("ADDR2", ssh_lab[1].address)
    pytester.makepyfile(test_ti=body)


def test_hosts_option_without_lab_gives_testinfra_its_host(
    pytester: pytest.Pytester, ssh_lab: SshLab
) -> None:
    """``--hosts`` and no lab: the testinfra suite runs on its sshd hosts (node ids
    ``[ssh://ti1]``), pytest-otto's other fixtures still work in the same run, and
    the header says whose ``host`` it is."""
    config = ssh_config(pytester.path / "ssh_config", ssh_lab)
    write_testinfra_tests(pytester, ssh_lab)
    pytester.makepyfile(test_otto=OTTO_TESTS)
    result = run(pytester, "-v", "--hosts=ssh://ti1,ssh://ti2", f"--ssh-config={config}", base=ALL_PLUGINS)
    result.assert_outcomes(passed=2 * 2 + 1)
    result.stdout.fnmatch_lines(
        [
            "otto host fixture: pytest-testinfra's (--hosts given, no lab); lab, hosts: ours",
            "*test_ti.py::test_os_release[[]ssh://ti1[]] PASSED*",
            "*test_ti.py::test_on_its_sshd[[]ssh://ti2[]] PASSED*",
        ]
    )


def test_testinfra_module_beside_otto_tests(pytester: pytest.Pytester, ssh_lab: SshLab) -> None:
    """No ``--hosts``: a module with ``testinfra_hosts`` gets testinfra's ``host`` (on
    its sshd host), while the pytest-otto tests of the same run get pytest-otto's."""
    config = ssh_config(pytester.path / "ssh_config", ssh_lab)
    write_testinfra_tests(pytester, ssh_lab)
    (pytester.path / "test_ti.py").write_text(
        'testinfra_hosts = ["ssh://ti1"]\n' + (pytester.path / "test_ti.py").read_text()
    )
    pytester.makepyfile(
        test_mine="def test_otto(host):\n    assert host.run_sync('echo $((6*7))').only.output == '42'\n"
    )
    result = run(pytester, "-v", f"--ssh-config={config}", base=ALL_PLUGINS)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "*test_mine.py::test_otto[[]local[]] PASSED*",
            "*test_ti.py::test_on_its_sshd[[]ssh://ti1[]] PASSED*",
        ]
    )


def test_lab_and_hosts_together_is_a_usage_error(pytester: pytest.Pytester, ssh_lab: SshLab) -> None:
    """A lab and ``--hosts``: one of them would be silently ignored, so neither runs."""
    lab = ssh_lab_file(pytester.path / "lab.toml", ssh_lab)
    write_testinfra_tests(pytester, ssh_lab)
    result = run(pytester, f"--lab={lab}", "--hosts=ssh://ti1", base=ALL_PLUGINS)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: pytest-otto: both a lab (*lab.toml, from --lab) and pytest-testinfra's --hosts=ssh://ti1 *"]
    )


def test_lab_runs_otto_host_with_testinfra_installed(pytester: pytest.Pytester, ssh_lab: SshLab) -> None:
    """A lab and no ``--hosts``: ``host`` is pytest-otto's, on the lab's sshd hosts."""
    lab = ssh_lab_file(pytester.path / "lab.toml", ssh_lab)
    check = "host.run_sync('echo $SSH_CONNECTION').only.output.split()[2] == host.address"
    pytester.makepyfile(test_lab=f"def test_ssh(host):\n    assert {check}\n")
    result = run(pytester, f"--lab={lab}", "--host-pattern", "^ssh[12]$", "-v", base=ALL_PLUGINS)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_lab.py::test_ssh[[]ssh1[]] PASSED*"])
