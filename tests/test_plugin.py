"""The pytest plugin, run for real: pytester starts pytest in a subprocess on test files.

Subprocess runs (not in-process) because the otto loop thread and pytest-xdist
workers belong to a process of their own. The inner runs have no ini file unless a
test writes one, so pytest-asyncio is in its default strict mode: exactly what a new
user has.
"""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

#: Options of every inner run: no cache dir, and no other plugin's ``host`` fixture in doubt.
BASE_ARGS = ("-p", "no:cacheprovider")

ROOT = Path(__file__).resolve().parent.parent


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run pytest on the pytester directory in a subprocess, bounded."""
    return pytester.runpytest_subprocess(*BASE_ARGS, *args, timeout=120)


SYNC_ASYNC = """
import asyncio

def test_sync(host):
    assert host.run_sync("echo sync-$((1+1))").only.output == "sync-2"

async def test_async(host):
    asyncio.get_running_loop()  # really runs on an event loop
    assert (await host.run("echo async-$((2+2))")).only.output == "async-4"

def test_plain():
    pass
"""


def test_no_lab_runs_on_local_host_sync_and_async(pytester: pytest.Pytester) -> None:
    """B29 with no --lab: one node per test using host, id [local]; async needs no decorator."""
    pytester.makepyfile(test_x=SYNC_ASYNC)
    result = run(pytester, "-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "otto lab: local (no --lab*the local machine)",
            "otto hosts (1 of 1): local",
            "*test_x.py::test_sync[[]local[]] PASSED*",
            "*test_x.py::test_async[[]local[]] PASSED*",
            "*test_x.py::test_plain PASSED*",
        ]
    )


def test_user_asyncio_configuration_is_respected(pytester: pytest.Pytester) -> None:
    """Users who configure pytest-asyncio keep their mode and their marker's loop scope."""
    pytester.makeini("[pytest]\nasyncio_mode = auto\n")
    pytester.makepyfile(
        test_scoped="""
        import asyncio
        import pytest

        pytestmark = pytest.mark.asyncio(loop_scope="module")
        loops = []

        async def test_first(host):
            loops.append(asyncio.get_running_loop())
            assert (await host.run("echo one")).only.output == "one"

        async def test_second(host):
            loops.append(asyncio.get_running_loop())
            assert loops[0] is loops[1], "the module loop scope was overridden"
        """
    )
    run(pytester).assert_outcomes(passed=2)


def test_shell_opens_once_per_run(pytester: pytest.Pytester) -> None:
    """The host's shell lives for the session: state set by one test is seen by the next."""
    pytester.makepyfile(
        test_a="""
        def test_set(host):
            host.run_sync("export OTTO_SEEN=$$")
        """,
        test_b="""
        async def test_seen(host):
            result = await host.run('test "$OTTO_SEEN" = "$$" && echo same-shell')
            assert result.only.output == "same-shell"
        """,
    )
    run(pytester).assert_outcomes(passed=2)


FAILING = """
def test_fails(host, local_host):
    host.run_sync("echo transcript-$((40+2))")
    assert False, "boom"

def test_passes(host):
    host.run_sync("printf 'passed-output'")
"""


def test_transcript_in_failure_report_and_with_rA(pytester: pytest.Pytester) -> None:
    """Each host's commands (command, status, exit code, duration, output) are a report section."""
    pytester.makepyfile(test_t=FAILING)
    result = run(pytester, "-rA")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    failures = out[out.index("= FAILURES =") : out.index("= PASSES =")]
    assert "otto transcript local call" in failures
    assert "[local:default] run 'echo transcript-$((40+2))' -> Success (exit 0," in failures
    assert "transcript-42" in failures
    passes = out[out.index("= PASSES =") :]
    assert "[local:default] run \"printf 'passed-output'\" -> Success (exit 0," in passes
    assert "passed-output" in passes
    # Without -rA a passing test shows nothing.
    quiet = run(pytester).stdout.str()
    assert "passed-output" not in quiet and "transcript-42" in quiet


def test_junit_xml_has_host_property(pytester: pytest.Pytester) -> None:
    """Each test case of a host test carries its host id as the property otto_host."""
    pytester.makepyfile(test_j=SYNC_ASYNC)
    run(pytester, "--junitxml=out.xml").assert_outcomes(passed=3)
    cases = {c.get("name"): c for c in ET.parse(pytester.path / "out.xml").getroot().iter("testcase")}
    assert set(cases) == {"test_sync[local]", "test_async[local]", "test_plain"}
    for name in ("test_sync[local]", "test_async[local]"):
        props = [(p.get("name"), p.get("value")) for p in cases[name].iter("property")]
        assert props == [("otto_host", "local")]
    assert list(cases["test_plain"].iter("property")) == []


def test_marker_filters_nodes_at_collection(pytester: pytest.Pytester) -> None:
    """otto_hosts(pattern=...) keeps matching hosts; a test no host matches is skipped with why."""
    pytester.makepyfile(
        test_m="""
        import pytest

        @pytest.mark.otto_hosts(pattern="^loc")
        def test_kept(host):
            assert host.id == "local"

        @pytest.mark.otto_hosts(pattern="router")
        def test_dropped(host):
            raise AssertionError("must not run")

        @pytest.mark.otto_hosts(tags=["dut"])
        def test_dropped_by_tag(hosts):
            raise AssertionError("must not run")
        """
    )
    result = run(pytester, "-rs", "-v")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*test_kept[[]local[]] PASSED*", "*test_dropped[[]no-host[]] SKIPPED*"])
    out = result.stdout.str()
    assert "no selected host of lab 'local' matches otto_hosts(pattern='router', tags=None)" in out
    assert "no selected host of lab 'local' matches otto_hosts(pattern=None, tags=['dut'])" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--host-pattern", "x["),
            "*--host-pattern 'x[[]' is not a valid regular expression*hosts of*: local",
        ),
        (("--host-pattern", "nothing"), "*--host-pattern 'nothing' selects no host; the hosts of*: local"),
        (("--lab", "missing.toml"), "*lab file '*missing.toml' (from --lab) does not exist"),
    ],
)
def test_usage_errors_exit_4_before_tests(
    pytester: pytest.Pytester, args: tuple[str, ...], message: str
) -> None:
    """B28: mistakes in the options stop the run with exit code 4 before any test runs."""
    pytester.makepyfile(test_u="def test_u(host):\n    open('ran', 'w').close()\n")
    result = run(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert not (pytester.path / "ran").exists()


def test_xdist_runs_local_host(pytester: pytest.Pytester) -> None:
    """-n 2 without --dist: switched to loadgroup, every host test passes on its worker."""
    pytester.makepyfile(test_x=SYNC_ASYNC)
    result = run(pytester, "-n", "2")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["otto xdist: --dist loadgroup, the tests of one host run on one worker"])


def test_example_runs_out_of_the_box(pytester: pytest.Pytester) -> None:
    """examples/test_demo.py passes on the local host with no lab and no configuration."""
    shutil.copy(ROOT / "examples" / "test_demo.py", pytester.path / "test_demo.py")
    result = run(pytester, "-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*test_kernel_is_linux[[]local[]] PASSED*"])
