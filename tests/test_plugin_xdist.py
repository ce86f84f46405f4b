"""``-n 2``: the tests of one host run on one worker, in one shell (issue 21.2).

With pytest >= 9.2 pytest-xdist's ``loadgroup`` no longer groups (it writes the group
into the test id, which pytest ignores), so pytest-otto schedules with its own
scheduler. These runs are real: pytest-xdist workers, the test lab's sshd servers and
local shells; each test relies on the shell state the previous test of the same host
left behind, across several files, so a host split over two workers fails.
"""

from __future__ import annotations

import sys

import pytest
from test_plugin import run, ssh_lab_file

from testlab.sshd import SshLab

#: Three files; test k of a host checks the step test k-1 left in the host's shell.
STEPS = 6


def chained_test(step: int) -> str:
    """Test ``step`` of the chain: the shell must still hold step-1, in the same folder."""
    check = (
        "assert host.run_sync('echo $OTTO_STEP $PWD').only.output == f'{step - 1} {folder}', host.id"
        if step > 1
        else "host.run_sync(f'mkdir -p {folder} && cd {folder}')"
    )
    return f"""
def test_step{step}(host):
    step = {step}
    folder = f"/tmp/otto-xdist-{{host.id}}-{{os.environ['OTTO_XDIST_RUN']}}"
    {check}
    host.run_sync(f"export OTTO_STEP={{step}}")
"""


def write_chain(pytester: pytest.Pytester) -> None:
    """The chain of STEPS tests over three files (two steps a file)."""
    for first in range(1, STEPS + 1, 2):
        body = "import os\n" + chained_test(first) + chained_test(first + 1)
        pytester.makepyfile(**{f"test_chain{first:02d}": body})


@pytest.fixture
def chain_lab(pytester: pytest.Pytester, ssh_lab: SshLab, monkeypatch: pytest.MonkeyPatch) -> str:
    """A lab of three real sshd hosts and two local hosts; the chain tests written."""
    monkeypatch.setenv("OTTO_XDIST_RUN", pytester.path.name)
    extra: dict[str, dict[str, object]] = {"loc1": {"transport": "local"}, "loc2": {"transport": "local"}}
    lab = ssh_lab_file(pytester.path / "lab.toml", ssh_lab, extra_hosts=extra)
    write_chain(pytester)
    return f"--lab={lab}"


def test_each_host_keeps_its_shell_state_with_n_2(pytester: pytest.Pytester, chain_lab: str) -> None:
    """-n 2 with no --dist: each host's chain of tests passes (one worker, one shell per
    host), both workers are used, and the end of the run confirms the grouping."""
    result = run(pytester, chain_lab, "-n", "2", "-p", "no:randomly", "--host-pattern", "^(ssh1|ssh2|loc)")
    result.assert_outcomes(passed=STEPS * 4)
    result.stdout.fnmatch_lines(
        [
            "otto xdist: pytest-otto schedules the tests of one host on one worker (checked at the end)",
            "otto xdist: each of 4 host group(s) ran on one worker (2 worker(s) used)",
        ]
    )


def test_dist_loadgroup_uses_the_same_grouping(pytester: pytest.Pytester, chain_lab: str) -> None:
    """--dist loadgroup (broken in pytest-xdist with pytest >= 9.2) is grouped by pytest-otto;
    a user's xdist_group mark still puts its tests on one worker."""
    pytester.makepyfile(
        test_marked="""
        import os, pytest

        @pytest.mark.xdist_group("mine")
        def test_first():
            os.environ["OTTO_MINE"] = "set"

        @pytest.mark.xdist_group("mine")
        def test_second():
            assert os.environ.get("OTTO_MINE") == "set"
        """
    )
    result = run(pytester, chain_lab, "-n", "2", "--dist", "loadgroup", "--host-pattern", "^(ssh2|loc1)$")
    result.assert_outcomes(passed=STEPS * 2 + 2)
    result.stdout.fnmatch_lines(["otto xdist: each of 3 host group(s) ran on one worker (2 worker(s) used)"])


def test_another_dist_is_left_alone_and_said(pytester: pytest.Pytester) -> None:
    """--dist load chosen by the user: pytest-otto does not group, and the header says so."""
    pytester.makepyfile(test_x="def test_x(host):\n    assert host.run_sync('true')\n")
    result = run(pytester, "-n", "2", "--dist", "load")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["otto xdist: --dist load: the tests of one host may run on several workers"])
    assert "schedules the tests of one host" not in result.stdout.str()


def test_a_missing_group_table_is_said_and_stays_safe(pytester: pytest.Pytester, chain_lab: str) -> None:
    """A worker that leaves no group table (here a conftest hides the directory from it):
    every test goes to one worker, so the chains still pass, and the run says it was
    not grouped instead of claiming it was."""
    pytester.makeconftest(
        """
        def pytest_configure(config):
            if hasattr(config, "workerinput"):
                config.workerinput.pop("otto_groups_dir", None)
        """
    )
    result = run(pytester, chain_lab, "-n", "2", "--host-pattern", "^(ssh1|loc1)$")
    result.assert_outcomes(passed=STEPS * 2)
    result.stdout.fnmatch_lines(
        ["otto xdist: NOT grouped: no group table from worker gw* (*); all tests on one worker"]
    )


def test_a_worker_on_another_machine_is_said_and_stays_safe(
    pytester: pytest.Pytester, chain_lab: str, ssh_lab: SshLab
) -> None:
    """Workers over SSH (``--tx ssh=...``, here two real ones through the lab's sshd)
    cannot leave their group tables in the controller's directory on another machine
    (here the conftest points them at one that does not exist, as there). The run does
    not break: every test goes to one worker, the chains pass, and the end of the run
    names the worker's machine as the reason it was not grouped."""
    pytester.makeconftest(
        """
        def pytest_configure(config):
            if hasattr(config, "workerinput"):
                config.workerinput["otto_groups_dir"] = "/nonexistent/on/the/worker's/machine"
        """
    )
    server = ssh_lab[0]
    ssh = f"-i {ssh_lab.client_key_path} -p {server.port} -o StrictHostKeyChecking=no"
    ssh += " -o UserKnownHostsFile=/dev/null -o SendEnv=OTTO_* -o BatchMode=yes"
    spec = f"ssh={ssh} root@{server.address}//python={sys.executable}//chdir={pytester.path}"
    hosts = "^(ssh1|ssh2|loc)"
    result = run(
        pytester, chain_lab, "--dist", "loadgroup", "--tx", spec, "--tx", spec, "--host-pattern", hosts
    )
    result.assert_outcomes(passed=STEPS * 4)
    result.stdout.fnmatch_lines(
        [
            f"otto xdist: NOT grouped: no group table from worker gw* (it runs on ssh root@{server.address},"
            " and the tables go through a directory on this machine); all tests on one worker"
        ]
    )
