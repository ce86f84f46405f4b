"""The documented setup under ``-W error``, with the newest pytest and plugins (issue 21.1, 21.3).

A new user installs pytest-otto into a fresh environment and writes no configuration:
warnings that pytest-otto causes, or that a dependency gives on its own, must not turn
``pytest -W error`` into errors. Each run is a real pytest subprocess (pytester) on the
local host or on the test lab's sshd servers.
"""

from __future__ import annotations

import shutil

import pytest
from test_plugin import ALL_PLUGINS, ROOT, run, ssh_lab_file

from testlab.sshd import SshLab


def test_examples_run_clean_under_w_error(pytester: pytest.Pytester) -> None:
    """examples/test_demo.py with no ini file and ``-W error``: every test passes and no
    warning is printed (no PytestRemovedIn10Warning for the fixtures, no pytest-asyncio
    loop scope warning)."""
    shutil.copy(ROOT / "examples" / "test_demo.py", pytester.path / "test_demo.py")
    strict = run(pytester, "-W", "error", "-v", base=ALL_PLUGINS)
    strict.assert_outcomes(passed=3)
    relaxed = run(pytester, "-v", base=ALL_PLUGINS)
    relaxed.assert_outcomes(passed=3, warnings=0)
    assert "Warning" not in relaxed.stdout.str() + relaxed.stderr.str()
    usage = run(pytester, "--host-pattern", "(", base=ALL_PLUGINS)  # a usage error says only that
    assert usage.ret == pytest.ExitCode.USAGE_ERROR
    assert usage.stderr.lines == [
        "ERROR: pytest-otto: --host-pattern '(' is not a valid regular expression (missing ), "
        "unterminated subpattern at position 0); the hosts of lab 'local' are: local",
        "",
    ]


SSH_TEST = """
async def test_state(host):
    await host.run("export OTTO_W=kept")
    assert (await host.run("echo $OTTO_W")).only.output == "kept"

def test_sync(host):
    assert host.run_sync("echo $SSH_CONNECTION").only.output.split()[2] == host.address
"""


def test_ssh_host_under_w_error(pytester: pytest.Pytester, ssh_lab: SshLab) -> None:
    """A lab of real sshd hosts under ``-W error``: asyncssh's import warns (cryptography's
    DSA deprecation), which must not become an INTERNALERROR; the tests pass."""
    lab = ssh_lab_file(pytester.path / "lab.toml", ssh_lab)
    pytester.makepyfile(test_ssh=SSH_TEST)
    result = run(pytester, f"--lab={lab}", "--host-pattern", "^ssh[12]$", "-W", "error", base=ALL_PLUGINS)
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=4)
    assert result.ret == pytest.ExitCode.OK


ASYNC_FIXTURE = """
import pytest_asyncio

@pytest_asyncio.fixture
async def answer():
    return 42

async def test_answer(answer):
    assert answer == 42

def test_host(host):
    assert host.run_sync("echo ok").only.output == "ok"
"""


def test_loop_scope_warning_reaches_users_of_async_fixtures(pytester: pytest.Pytester) -> None:
    """pytest-asyncio's run-wide warning about ``asyncio_default_fixture_loop_scope`` is
    given again at the one test it concerns (an async fixture with no loop scope): under
    ``-W error`` that test errors and the others pass; set the option and it is gone."""
    pytester.makepyfile(test_fx=ASYNC_FIXTURE)
    relaxed = run(pytester, base=ALL_PLUGINS)
    relaxed.assert_outcomes(passed=2, warnings=1)
    relaxed.stdout.fnmatch_lines(["*async fixture(s) answer have no loop_scope*"])
    strict = run(pytester, "-W", "error", base=ALL_PLUGINS)
    strict.assert_outcomes(passed=1, errors=1)
    strict.stdout.fnmatch_lines(["ERROR test_fx.py::test_answer - pytest.PytestDeprecationWarning*"])
    option = "asyncio_default_fixture_loop_scope=function"
    scoped = run(pytester, "-W", "error", "-o", option, base=ALL_PLUGINS)
    scoped.assert_outcomes(passed=2)
